"""What the steps are and take, read from their pydantic models: `doe etl-steps` and the `$ETL$` part of
`doe schema`."""

from __future__ import annotations

import inspect
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from etl.errors import EtlConfigError
from etl.registry import load_registry
from etl.steps.base import Step, step_kind

KINDS = ("extractor", "transformer", "loader")
DATAFRAME_METHOD = "df.<method>"
DATAFRAME_METHOD_SUMMARY = (
    "Calls a public pandas DataFrame method, e.g. `{df.sort_values: {by: [lat]}}`; "
    "its options are the method's keyword arguments (inplace is not allowed)."
)
# `[% var %]` of $ETL_VARS$ may stand for any option value.
ETL_VAR = {"type": "string", "pattern": r"^\s*\[%.*%\]\s*$"}


@dataclass(frozen=True)
class StepOption:
    name: str
    type: str
    default: str | None  # None: required
    description: str


@dataclass(frozen=True)
class StepDoc:
    name: str
    kind: str
    origin: str  # "built-in" or the custom module's name
    summary: str
    options: tuple[StepOption, ...]

    def lines(self) -> list[str]:
        head = f"{self.name} ({self.kind}, {self.origin})"
        lines = [f"{head}: {self.summary}" if self.summary else head]
        for option in self.options:
            default = "required" if option.default is None else f"default {option.default}"
            text = f"  {option.name}: {option.type} ({default})"
            lines.append(f"{text}  {option.description}" if option.description else text)
        return lines


@dataclass(frozen=True)
class StepCatalog:
    steps: tuple[StepDoc, ...]
    # Custom module -> why it cannot be imported.
    broken: dict[str, str]

    def lines(self) -> list[str]:
        lines: list[str] = []
        for kind in KINDS:
            docs = [doc for doc in self.steps if doc.kind == kind]
            if docs:
                lines.append(f"{kind}s:")
                lines.extend(f"  {line}" for doc in docs for line in doc.lines())
        if self.broken:
            lines.append("custom ETL modules that cannot be imported:")
            lines.extend(f"  {module}: {problem}" for module, problem in self.broken.items())
        return lines


def step_catalog(config_dir: Path | str | None, name: str | None = None) -> StepCatalog:
    """Every built-in and custom step (importing every custom module), or only the one called `name`; an
    EtlConfigError for a name no step has."""
    registry = load_registry(config_dir)
    steps, broken = registry.all_steps()
    dataframe_method = StepDoc(DATAFRAME_METHOD, "transformer", "built-in", DATAFRAME_METHOD_SUMMARY, ())
    if name is None:
        docs = [describe(n, cls) for n, cls in sorted(steps.items())]
        return StepCatalog((*docs, dataframe_method), broken)
    if name == DATAFRAME_METHOD or name.startswith("df."):
        return StepCatalog((dataframe_method,), {})
    if name in steps:
        return StepCatalog((describe(name, steps[name]),), {})
    defining = [m.name for m in registry.modules if m.name in broken and name in (m.classes or ())]
    if defining:
        raise EtlConfigError(f"step {name} is defined in custom ETL module {defining[0]}, which cannot be "
                             f"imported: {broken[defining[0]]}", path="NAME")
    raise EtlConfigError(f"no step {name}; steps: {', '.join(sorted(steps))}, {DATAFRAME_METHOD}", path="NAME")


def describe(name: str, cls: type[Step]) -> StepDoc:
    options = tuple(
        StepOption(
            field_name,
            type_name(field.annotation),
            None if field.is_required() else _shown(field.get_default(call_default_factory=True)),
            " ".join((field.description or "").split()),
        )
        for field_name, field in cls.model_fields.items()
    )
    # Custom packages are never called etl (see etl.registry).
    origin = "built-in" if cls.__module__.startswith("etl.") else cls.__module__
    return StepDoc(name, step_kind(cls), origin, _summary(cls), options)


def _summary(cls: type) -> str:
    """The class's own docstring (not one inherited from a base), as one line."""
    doc = inspect.cleandoc(cls.__dict__.get("__doc__") or "")
    return " ".join(doc.split())


def _shown(value: Any) -> str:
    return repr(list(value) if isinstance(value, tuple) else value)


def type_name(annotation: Any) -> str:
    """`str | None`, `list[str]`, `'bar' | 'box'`: as a design's author reads them."""
    if annotation is type(None):
        return "None"
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is None:
        return annotation.__name__ if isinstance(annotation, type) else str(annotation).replace("typing.", "")
    if origin in (Union, types.UnionType):
        return " | ".join(type_name(arg) for arg in args)
    if origin is Literal:
        return " | ".join(repr(arg) for arg in args)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return f"list[{type_name(args[0])}]"  # a YAML list
    return f"{getattr(origin, '__name__', str(origin))}[{', '.join(type_name(arg) for arg in args)}]"


def steps_json_schema() -> tuple[dict[str, dict], dict[str, Any]]:
    """JSON Schemas of a pipeline's `extractors`, `transformers` and `loaders` with the built-in steps typed
    (custom steps: any mapping), and the `$defs` they refer to (to be put at the document's root)."""
    defs: dict[str, Any] = {}
    by_kind: dict[str, dict[str, dict]] = {kind: {} for kind in KINDS}
    builtins, _ = load_registry(None).all_steps()
    for name, cls in sorted(builtins.items()):
        by_kind[step_kind(cls)][name] = _model_schema(name, cls, defs)
    include = {"$INCLUDE_STEPS$": {"description": "Steps copied from {suite|template|config: NAME, pipeline: P}."}}

    def named(kind: str) -> dict:
        return {
            "type": ["object", "null"],
            "properties": {**include, **{n: {"anyOf": [{"type": "null"}, s]} for n, s in by_kind[kind].items()}},
            "additionalProperties": {"type": ["object", "null"], "description": "A custom step's options."},
        }

    transformer_cases = [
        {
            "if": {"properties": {"name": {"const": name}}, "required": ["name"]},
            "then": {**schema, "properties": {"name": {"const": name}, **schema.get("properties", {})}},
        }
        for name, schema in by_kind["transformer"].items()
    ]
    transformers = {
        "type": ["array", "null"],
        "items": {
            "type": "object",
            "description": "{name: Step, options...}, {df.<method>: {kwargs}} or {$INCLUDE_STEPS$: source}.",
            "allOf": transformer_cases,
        },
    }
    return {"extractors": named("extractor"), "transformers": transformers, "loaders": named("loader")}, defs


def _model_schema(name: str, cls: type[Step], defs: dict[str, Any]) -> dict:
    schema = cls.model_json_schema(ref_template=f"#/$defs/{name}.{{model}}")
    defs.update({f"{name}.{model}": sub for model, sub in schema.pop("$defs", {}).items()})
    properties = schema.get("properties", {})
    if "file_regex" in properties:  # one regex may be given as a string
        properties["file_regex"] = {"anyOf": [{"type": "string"}, properties["file_regex"]]}
    schema["properties"] = {key: {"anyOf": [value, ETL_VAR]} for key, value in properties.items()}
    return schema
