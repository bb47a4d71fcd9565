"""The structure of a design file as pydantic models: what its JSON Schema (doe_cli.design.schema) is
generated from.

The models hold what a JSON Schema can say, so that the schema checks what they check: keys, types, defaults,
names. `doe design-validate` (doe_cli.design.validate) checks the same and more (host types and roles that
exist, includes, factors, one command per host) with messages that name the file, line and YAML path; a unit
test keeps the models, the schema and the validation in agreement over the example designs. Imported only for
the schema: loading a design does not pay for pydantic.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from doe_cli.design.validate import (
    ETL,
    EXPERIMENT_NAME,
    FOLDER_NAME,
    MAX_NAME_LENGTH,
    NOT_HOST_TYPES,
    RESERVED_NAMES,
    SUITE_VARS,
)


def _not_one_of(names: list[str]) -> str:
    """A regex lookahead that refuses exactly these names."""
    return "(?!(?:" + "|".join(re.escape(name) for name in sorted(names)) + ")$)"


# Names as regexes: pydantic checks them and the schema carries them (lookaheads: Python's re, not pydantic's
# default engine).
EXPERIMENT_NAME_PATTERN = (
    "^" + _not_one_of(sorted(RESERVED_NAMES)) + f"(?=.{{1,{MAX_NAME_LENGTH}}}$)" + EXPERIMENT_NAME.pattern[1:]
)
# A folder of group_vars/ that is a host type: no path out of it, and none of the settings folders.
HOST_TYPE_NAME_PATTERN = "^" + _not_one_of(list(NOT_HOST_TYPES)) + r"(?!.*\.\.)" + FOLDER_NAME.pattern[1:]
# Any non-blank text: a command string.
CommandText = Annotated[str, StringConstraints(pattern=r"\S")]
Name = Annotated[str, StringConstraints(min_length=1)]
Roles = Annotated[
    Name | list[Name] | None, Field(description="A role name or a list of role names (folders in roles/).")
]
Include = Annotated[
    str | list[str],
    Field(description="File(s) in designs/design_vars/ merged here without overwriting keys."),
]


class _Spec(BaseModel):
    # Strict: YAML's types are the design's (no "5" for 5, no true for 1), as in doe_cli.design.validate.
    model_config = ConfigDict(extra="forbid", strict=True, regex_engine="python-re")


class CommandMapping(_Spec):
    """`main` is the job's command; other keys name background commands that run beside it and are stopped
    when it ends."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, CommandText] = Field(init=False)  # the background commands

    main: CommandText


Command = CommandText | CommandMapping


class HostTypeSpec(_Spec):
    n: int = Field(1, ge=1, description="Hosts of this type.")
    check_status: bool = Field(
        True, description="false: the job is not polled (e.g. a server stopped at the end)."
    )
    init_roles: Roles = []
    cmd: Command | Annotated[
        list[Command], Field(min_length=1, description="One entry per host (length n).")
    ] = Field(
        # Aliases are literals (type checkers read them so); a unit test compares the keys with validate's.
        alias="$CMD$",
        description="The command(s) of each job on this host type; may use [% my_run.x %], [% run %] and "
        "[% exp_host_lst | ... %].",
    )


class BaseExperimentSpec(_Spec):
    """The run config template: constants, `key: {$FACTOR$: [levels]}` (cross product) and `key: $FACTOR$`
    (levels from factor_levels)."""

    model_config = ConfigDict(extra="allow", json_schema_extra=lambda schema: _refuse_keys(schema, "run"))

    include_vars: Include | None = Field(None, alias="$INCLUDE_VARS$")

    @model_validator(mode="after")
    def _no_run(self) -> BaseExperimentSpec:
        # `run` is the run index in [% %] templates: no variable of that name.
        if "run" in (self.__pydantic_extra__ or {}):
            raise ValueError("'run' is reserved (the run index in [% %] templates)")
        return self


def _refuse_keys(schema: dict[str, Any], *names: str) -> None:
    schema["properties"].update(dict.fromkeys(names, False))


HostTypeName = Annotated[str, StringConstraints(pattern=HOST_TYPE_NAME_PATTERN)]


class TableMetricSpec(_Spec):
    file: Annotated[str, StringConstraints(pattern=r"^(?!/)(?!.*(^|/)\.\.(/|$)).*\.(csv|tsv)$")]
    column: Name


class MappingMetricSpec(_Spec):
    file: Annotated[str, StringConstraints(pattern=r"^(?!/)(?!.*(^|/)\.\.(/|$)).*\.(yaml|yml|json)$")]
    key: Name


class RepetitionsSpec(_Spec):
    max: int = Field(ge=1, description="At most this many reps per run (>= n_repetitions).")
    metric: TableMetricSpec | MappingMetricSpec = Field(
        description="The value of a rep: a CSV column or a YAML/JSON key of a file in its host folder(s).")
    statistic: Literal["median", "mean"] = "median"
    target_ci: float = Field(gt=0, lt=1, description="Stop a run when CI half-width / estimate <= this.")
    confidence: float = Field(0.95, gt=0, lt=1)
    max_minutes: float | None = Field(None, gt=0, allow_inf_nan=False)


class ExperimentSpec(_Spec):
    n_repetitions: int = Field(1, ge=1)
    common_roles: Roles = []
    host_types: dict[HostTypeName, HostTypeSpec] = Field(
        min_length=1, description="Host type (a folder in group_vars/) -> host-type spec."
    )
    base_experiment: BaseExperimentSpec | None
    factor_levels: list[dict[str, Any]] = Field([{}], min_length=1)
    except_filters: list[Annotated[dict[str, Any], Field(min_length=1)]] | None = []
    job_timeout: float | None = Field(
        None,
        gt=0,
        allow_inf_nan=False,
        description="Seconds a job may run before it is killed and recorded as timeout (--job-timeout "
        "overrides it; it overrides job_timeout in the inventory and group_vars).",
    )
    order: Literal["sequential", "rmit"] = Field(
        "sequential", description="sequential: the reps of a run follow each other; rmit: rounds of one rep of "
        "every unfinished run, each round in a fresh seeded random order.")
    seed: int | None = Field(None, ge=0, description="Seed of the rmit order and of the adaptive bootstrap "
                             "(default: drawn when the suite starts, recorded in order.json).")
    repetitions: RepetitionsSpec | None = Field(
        None, description="Adaptive repetitions: n_repetitions is the minimum; more reps until each run's "
        "confidence interval meets target_ci, max, or max_minutes.")


class SuiteVarsSpec(_Spec):
    """Defaults merged into every base_experiment."""

    model_config = ConfigDict(extra="allow")

    include_vars: Include | None = Field(None, alias="$INCLUDE_VARS$")


class PipelineSpec(_Spec):
    """An ETL pipeline: the experiments it reads, its extractors, transformers and loaders."""

    # The steps are typed in the schema only (etl.step_catalog); etl checks them when it loads them.

    experiments: Literal["*"] | list[str] | None = None
    extractors: dict[str, Any] | None = None
    transformers: list[Any] | None = None
    loaders: dict[str, Any] | None = None
    include_pipeline: Any = Field(None, alias="$INCLUDE_PIPELINE$")
    etl_vars: dict[str, Any] | None = Field(None, alias="$ETL_VARS$")


def _design_names(schema: dict[str, Any]) -> None:
    """The top-level keys: experiment names besides $SUITE_VARS$ and $ETL$, at least one of them."""
    given = [SUITE_VARS, ETL]
    experiment = {"type": "string", "pattern": EXPERIMENT_NAME_PATTERN}
    schema["propertyNames"] = {"anyOf": [{"enum": given}, experiment]}
    schema["not"] = {"propertyNames": {"enum": given}}


class DesignSpec(_Spec):
    """One suite: experiments as top-level keys, plus $SUITE_VARS$ and $ETL$."""

    model_config = ConfigDict(extra="allow", title="doe suite design", json_schema_extra=_design_names)
    __pydantic_extra__: dict[str, ExperimentSpec] = Field(init=False)  # the experiments

    suite_vars: SuiteVarsSpec | None = Field(None, alias="$SUITE_VARS$")
    etl: dict[str, PipelineSpec] | None = Field(
        None, alias="$ETL$", description="Pipeline name -> ETL pipeline."
    )

    @model_validator(mode="after")
    def _experiment_names(self) -> DesignSpec:
        experiments = self.__pydantic_extra__ or {}
        if not experiments:
            raise ValueError("the design defines no experiment")
        for name in experiments:
            if not re.match(EXPERIMENT_NAME_PATTERN, name):
                raise ValueError(f"invalid experiment name {name!r}")
        return self


def spec_keys(model: type[BaseModel]) -> tuple[str, ...]:
    """The keys a model's mapping may have, as the design writes them."""
    return tuple(field.alias or name for name, field in model.model_fields.items())

