"""A JSON Schema for design files, for editors (completion and inline checks).

It describes the structure (keys, types, defaults); checks that need the config dir (host types,
roles, include files) and the factor rules are done by `doe design-validate`.
"""

from __future__ import annotations

from doe_cli.design.validate import EXPERIMENT_NAME, MAX_NAME_LENGTH, RESERVED_NAMES

SCHEMA_ID = "https://doe.invalid/schemas/design.json"

_ROLES = {
    "description": "A role name or a list of role names (folders in roles/).",
    "oneOf": [{"type": "string", "minLength": 1},
              {"type": "array", "items": {"type": "string", "minLength": 1}}],
}

_COMMAND_MAPPING = {
    "type": "object",
    "description": "`main` is the job's command; other keys name background commands that run beside it "
                   "and are stopped when it ends.",
    "required": ["main"],
    "properties": {"main": {"type": "string", "minLength": 1}},
    "additionalProperties": {"type": "string", "minLength": 1},
}

_CMD = {
    "description": "The command(s) of each job on this host type; may use [% my_run.x %], [% run %] and "
                   "[% exp_host_lst | ... %].",
    "oneOf": [
        {"type": "string", "minLength": 1},
        _COMMAND_MAPPING,
        {"type": "array", "minItems": 1,
         "items": {"oneOf": [{"type": "string", "minLength": 1}, _COMMAND_MAPPING]},
         "description": "One entry per host (length n)."},
    ],
}

_HOST_TYPE = {
    "type": "object",
    "required": ["$CMD$"],
    "additionalProperties": False,
    "properties": {
        "n": {"type": "integer", "minimum": 1, "default": 1, "description": "Hosts of this type."},
        "check_status": {"type": "boolean", "default": True,
                         "description": "false: the job is not polled (e.g. a server stopped at the end)."},
        "init_roles": {**_ROLES, "default": []},
        "$CMD$": _CMD,
    },
}

_INCLUDE = {
    "description": "File(s) in designs/design_vars/ merged here without overwriting keys.",
    "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
}

_EXPERIMENT = {
    "type": "object",
    "required": ["host_types", "base_experiment"],
    "additionalProperties": False,
    "properties": {
        "n_repetitions": {"type": "integer", "minimum": 1, "default": 1},
        "common_roles": {**_ROLES, "default": []},
        "host_types": {
            "type": "object", "minProperties": 1,
            "description": "Host type (a folder in group_vars/) -> host-type spec.",
            "propertyNames": {"not": {"enum": ["all", "ansible_controller"]}},
            "additionalProperties": _HOST_TYPE,
        },
        "base_experiment": {
            "type": ["object", "null"],
            "description": "The run config template: constants, `key: {$FACTOR$: [levels]}` (cross product) "
                           "and `key: $FACTOR$` (levels from factor_levels).",
            "properties": {"$INCLUDE_VARS$": _INCLUDE, "run": False},
        },
        "factor_levels": {"type": "array", "minItems": 1, "items": {"type": "object"}, "default": [{}]},
        "except_filters": {"type": "array", "items": {"type": "object", "minProperties": 1}, "default": []},
        "job_timeout": {"type": "number", "exclusiveMinimum": 0,
                        "description": "Seconds a job may run before it is killed and recorded as timeout "
                                       "(--job-timeout overrides it; it overrides job_timeout in the "
                                       "inventory and group_vars)."},
    },
}


def design_schema() -> dict:
    """The JSON Schema (draft 2020-12) of a design file."""
    from etl.step_catalog import steps_json_schema

    steps, step_defs = steps_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "doe suite design",
        "description": "One suite: experiments as top-level keys, plus $SUITE_VARS$ and $ETL$.",
        "type": "object",
        "properties": {
            "$SUITE_VARS$": {"type": "object", "description": "Defaults merged into every base_experiment.",
                             "properties": {"$INCLUDE_VARS$": _INCLUDE}},
            "$ETL$": {"type": "object", "description": "Pipeline name -> ETL pipeline.",
                      "additionalProperties": {
                          "type": "object",
                          "properties": {
                              "experiments": {"oneOf": [{"const": "*"},
                                                        {"type": "array", "items": {"type": "string"}}]},
                              **steps,
                              "$INCLUDE_PIPELINE$": {},
                              "$ETL_VARS$": {"type": "object"},
                          },
                          "additionalProperties": False,
                      }},
        },
        "propertyNames": {
            "anyOf": [
                {"enum": ["$SUITE_VARS$", "$ETL$"]},
                {"pattern": EXPERIMENT_NAME.pattern, "maxLength": MAX_NAME_LENGTH,
                 "not": {"enum": sorted(RESERVED_NAMES)}},
            ],
        },
        "additionalProperties": _EXPERIMENT,
        "minProperties": 1,
        "$defs": step_defs,
    }
