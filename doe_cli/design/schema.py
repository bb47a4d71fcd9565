"""A JSON Schema for design files, for editors (completion and inline checks).

Generated from the design's pydantic models (doe_cli.design.spec) with the ETL steps' own schemas
(etl.step_catalog). It describes the structure (keys, types, defaults, names); checks that need the config dir
(host types, roles, include files) and the factor rules are done by `doe design-validate`.
"""

from __future__ import annotations

from typing import Any

SCHEMA_ID = "https://doe.invalid/schemas/design.json"
_DEFS = "#/$defs/"


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
    defs = schema.pop("$defs")
    steps, step_defs = steps_json_schema()
    defs["PipelineSpec"]["properties"].update(steps)
    # The design's parts inline, where their keys are (an experiment's under additionalProperties, ...); $defs
    # keeps the steps' models only.
    schema = _inlined(schema, defs)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **schema,
        "$defs": step_defs,
    }


def _inlined(node: Any, defs: dict[str, Any]) -> Any:
    """`node` with each reference to one of `defs` replaced by a copy of what it refers to (the models of a
    design refer to none of their own: no cycles); references to others (the steps') stay."""
    if isinstance(node, list):
        return [_inlined(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    name = ref[len(_DEFS):] if isinstance(ref, str) and ref.startswith(_DEFS) else None
    if name in defs and len(node) == 1:
        return _inlined(defs[name], defs)
    return {key: _inlined(value, defs) for key, value in node.items()}


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
