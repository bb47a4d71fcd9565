"""A JSON Schema for design files, for editors (completion and inline checks).

Generated from the design's pydantic models (doe_cli.design.spec) with the ETL steps' own schemas
(etl.step_catalog). It describes the structure (keys, types, defaults, names); checks that need the config dir
(host types, roles, include files) and the factor rules are done by `doe design-validate`.
"""

from __future__ import annotations

from typing import Any

SCHEMA_ID = "https://doe.invalid/schemas/design.json"


def design_schema() -> dict:
    """The JSON Schema (draft 2020-12) of a design file."""
    from pydantic.json_schema import GenerateJsonSchema

    from doe_cli.design.spec import DesignSpec
    from etl.step_catalog import steps_json_schema

    class _Generator(GenerateJsonSchema):
        def field_title_should_be_set(self, schema: Any) -> bool:
            return False  # "N Repetitions" for n_repetitions: the key says it, descriptions say more

    schema = DesignSpec.model_json_schema(by_alias=True, schema_generator=_Generator)
    _tidy(schema)
    steps, step_defs = steps_json_schema()
    schema["$defs"]["PipelineSpec"]["properties"].update(steps)
    schema["$defs"].update(step_defs)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


def _tidy(node: Any) -> None:
    """What pydantic writes differently from what editors want, in place: a mapping whose keys must match a
    pattern (pydantic: patternProperties, which leaves other keys unchecked) refuses other keys; descriptions
    from docstrings on one line."""
    if isinstance(node, list):
        for item in node:
            _tidy(item)
        return
    if not isinstance(node, dict):
        return
    patterns = node.get("patternProperties")
    if isinstance(patterns, dict) and len(patterns) == 1 and "additionalProperties" not in node:
        ((pattern, values),) = patterns.items()
        del node["patternProperties"]
        node["propertyNames"] = {"pattern": pattern}
        node["additionalProperties"] = values
    if isinstance(node.get("description"), str):
        node["description"] = " ".join(node["description"].split())
    for value in node.values():
        _tidy(value)
