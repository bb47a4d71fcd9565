"""Expand a design's `$ETL$` section into the explicit form stored in suite_design.yml.

Expanded pipeline: `experiments` first as an explicit list ("*" expanded), `$INCLUDE_PIPELINE$` and
`$INCLUDE_STEPS$` inlined, `[% var %]` replaced from `$ETL_VARS$`, every step with the options doe-suite's
step has, defaults filled in (extractors: an explicit `file_regex` list), `transformers: []` and `loaders: {}`
when empty. Every step is validated.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from etl.errors import EtlConfigError
from etl.pipeline import build_pipeline, normalize_file_regex
from etl.registry import Registry, load_registry
from etl.steps.base import Extractor, suite_design_options

INCLUDE_PIPELINE = "$INCLUDE_PIPELINE$"
INCLUDE_STEPS = "$INCLUDE_STEPS$"
ETL_VARS = "$ETL_VARS$"
PIPELINE_KEYS = ("experiments", "extractors", "transformers", "loaders", INCLUDE_PIPELINE, ETL_VARS)
SOURCE_KINDS = ("suite", "template", "config")

DesignLoader = Callable[[str], dict]


@dataclass
class _Context:
    config_dir: Path | None
    design_loader: DesignLoader | None
    stack: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass
class _Steps:
    extractors: dict[str, Any]
    transformers: list[Any]
    loaders: dict[str, Any]
    variables: dict[str, Any]


def expand_etl_section(
    etl_section: Any,
    experiments: Iterable[str],
    *,
    config_dir: Path | str | None = None,
    design_loader: DesignLoader | None = None,
) -> dict:
    """Return the expanded `$ETL$` mapping; raise EtlConfigError on the first problem."""
    if etl_section is None:
        return {}
    if not isinstance(etl_section, dict):
        raise EtlConfigError("expected a mapping pipeline name → pipeline", path="$ETL$")
    experiment_names = list(experiments)
    ctx = _Context(Path(config_dir) if config_dir is not None else None, design_loader)
    registry = load_registry(ctx.config_dir)
    expanded: dict[str, dict] = {}
    for name, raw in etl_section.items():
        path = f"$ETL$.{name}"
        check_pipeline_keys(raw, path)
        selected = _experiment_list(raw.get("experiments"), experiment_names, f"{path}.experiments")
        expanded[name] = {"experiments": selected, **expand_steps(raw, path, ctx, registry)}
    return expanded


def check_pipeline_keys(raw: Any, path: str) -> None:
    if not isinstance(raw, dict):
        raise EtlConfigError("a pipeline must be a mapping", path=path)
    unknown = [key for key in raw if key not in PIPELINE_KEYS]
    if unknown:
        raise EtlConfigError(f"unknown keys {unknown}; expected {', '.join(PIPELINE_KEYS)}", path=path)
    if "experiments" not in raw:
        raise EtlConfigError('missing `experiments` ("*" or a list of experiment names)', path=path)


def expand_steps(raw: dict, path: str, ctx: _Context, registry: Registry) -> dict:
    """Inline includes, substitute variables, validate the steps and fill in their defaults."""
    steps = _resolve_steps(raw, path, ctx)
    extractors = {}
    for step_name, options in steps.extractors.items():
        options = _substitute(options or {}, steps.variables, f"{path}.extractors.{step_name}")
        if not isinstance(options, dict):
            raise EtlConfigError("extractor options must be a mapping", path=f"{path}.extractors.{step_name}")
        regex = options.get("file_regex")
        if regex is None:
            step_path = f"{path}.extractors.{step_name}"
            cls = registry.step(step_name, "extractor", step_path)
            regex = cls.default_file_regex() if issubclass(cls, Extractor) else []
        extractors[step_name] = {
            "file_regex": normalize_file_regex(regex, f"{path}.extractors.{step_name}.file_regex"),
            **{k: v for k, v in options.items() if k != "file_regex"},
        }
    transformers = [
        _substitute(item, steps.variables, f"{path}.transformers[{i}]")
        for i, item in enumerate(steps.transformers)
    ]
    loaders = {
        step_name: _substitute(
            options if options is not None else {}, steps.variables, f"{path}.loaders.{step_name}"
        )
        for step_name, options in steps.loaders.items()
    }
    result = {"extractors": extractors, "transformers": transformers, "loaders": loaders}
    prefix, _, name = path.rpartition(".")
    pipeline = build_pipeline(name, result, registry, prefix=prefix)
    return {
        "extractors": {spec.name: suite_design_options(type(spec.step), spec.options) for spec in pipeline.extractors},
        "transformers": [
            {"name": item["name"], **suite_design_options(type(spec.step), spec.options)} if "name" in item else item
            for item, spec in zip(transformers, pipeline.transformers, strict=True)
        ],
        "loaders": {spec.name: suite_design_options(type(spec.step), spec.options) for spec in pipeline.loaders},
    }


def _experiment_list(value: Any, experiments: list[str], path: str) -> list[str]:
    if value == "*":
        return list(experiments)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise EtlConfigError(f'expected "*" or a list of experiment names, got {value!r}', path=path)
    unknown = [item for item in value if item not in experiments]
    if unknown:
        raise EtlConfigError(f"unknown experiments {unknown}; the design has {experiments}", path=path)
    return list(dict.fromkeys(value))


def _resolve_steps(raw: dict, path: str, ctx: _Context) -> _Steps:
    variables = raw.get(ETL_VARS) or {}
    if not isinstance(variables, dict):
        raise EtlConfigError("$ETL_VARS$ must be a mapping", path=f"{path}.{ETL_VARS}")
    if INCLUDE_PIPELINE in raw:
        own = [key for key in ("extractors", "transformers", "loaders") if key in raw]
        if own:
            raise EtlConfigError(
                f"$INCLUDE_PIPELINE$ copies all steps; remove the pipeline's own {own}", path=path
            )
        included = _include(raw[INCLUDE_PIPELINE], f"{path}.{INCLUDE_PIPELINE}", ctx)
        return _Steps(
            included.extractors, included.transformers, included.loaders, {**included.variables, **variables}
        )
    merged_vars: dict[str, Any] = {}

    def named_steps(kind: str) -> dict[str, Any]:
        """Extractors or loaders: a mapping name -> options where $INCLUDE_STEPS$ lists sources."""
        steps: dict[str, Any] = {}
        for key, options in _mapping(raw.get(kind), f"{path}.{kind}").items():
            if key == INCLUDE_STEPS:
                for i, source in enumerate(_source_list(options)):
                    included = _include(source, f"{path}.{kind}.{INCLUDE_STEPS}[{i}]", ctx)
                    merged_vars.update(included.variables)
                    _merge_unique(steps, getattr(included, kind), f"{path}.{kind}")
            else:
                _merge_unique(steps, {key: options}, f"{path}.{kind}")
        return steps

    extractors = named_steps("extractors")

    transformers: list[Any] = []
    items = raw.get("transformers") or []
    if not isinstance(items, list):
        raise EtlConfigError("transformers must be a list", path=f"{path}.transformers")
    for i, item in enumerate(items):
        if isinstance(item, dict) and INCLUDE_STEPS in item:
            if len(item) != 1:
                raise EtlConfigError(
                    "an $INCLUDE_STEPS$ item takes no other keys", path=f"{path}.transformers[{i}]"
                )
            included = _include(item[INCLUDE_STEPS], f"{path}.transformers[{i}].{INCLUDE_STEPS}", ctx)
            merged_vars.update(included.variables)
            transformers.extend(included.transformers)
        else:
            transformers.append(item)

    loaders = named_steps("loaders")
    return _Steps(extractors, transformers, loaders, {**merged_vars, **variables})


def _mapping(value: Any, path: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise EtlConfigError("expected a mapping StepName → options", path=path)
    return value


def _source_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _merge_unique(target: dict, new: dict, path: str) -> None:
    for key, value in new.items():
        if key in target:
            raise EtlConfigError(
                f"step {key} appears twice (directly and through $INCLUDE_STEPS$)", path=path
            )
        target[key] = value


def _include(source: Any, path: str, ctx: _Context) -> _Steps:
    kind, name, pipeline, etl = _load_source(source, path, ctx)
    marker = (kind, name, pipeline)
    if marker in ctx.stack:
        chain = " → ".join(f"{k} {n} pipeline {p}" for k, n, p in [*ctx.stack, marker])
        raise EtlConfigError(f"include cycle: {chain}", path=path)
    raw = etl[pipeline]
    if not isinstance(raw, dict):
        raise EtlConfigError(f"pipeline {pipeline} of {kind} {name} is not a mapping", path=path)
    ctx.stack.append(marker)
    try:
        return _resolve_steps(raw, f"{path}<{kind} {name}: {pipeline}>", ctx)
    finally:
        ctx.stack.pop()


def _load_source(source: Any, path: str, ctx: _Context) -> tuple[str, str, str, dict]:
    if not isinstance(source, dict):
        raise EtlConfigError(
            "an include source is a mapping {suite|template|config: NAME, pipeline: P}", path=path
        )
    kinds = [kind for kind in SOURCE_KINDS if kind in source]
    unknown = [key for key in source if key not in (*SOURCE_KINDS, "pipeline")]
    if len(kinds) != 1 or unknown or "pipeline" not in source:
        raise EtlConfigError(
            f"include source {source!r} must have exactly one of suite, template, config plus pipeline",
            path=path,
        )
    kind = kinds[0]
    name = str(source[kind])
    pipeline = source["pipeline"]
    if kind == "suite":
        document = _load_design(name, path, ctx)
    else:
        folder = "designs/etl_templates" if kind == "template" else "super_etl"
        document = _read_yaml(_config_file(ctx, folder, name, path), path)
    etl = (
        document.get("$ETL$", document if kind == "template" else None)
        if isinstance(document, dict)
        else None
    )
    if not isinstance(etl, dict):
        raise EtlConfigError(f"{kind} {name} has no $ETL$ mapping", path=path)
    if pipeline not in etl:
        raise EtlConfigError(f"{kind} {name} has no pipeline {pipeline!r}; it has {list(etl)}", path=path)
    return kind, name, pipeline, etl


def _load_design(suite: str, path: str, ctx: _Context) -> Any:
    if ctx.design_loader is not None:
        try:
            return ctx.design_loader(suite)
        except Exception as error:  # noqa: BLE001 - the loader belongs to the caller; report it in one line
            raise EtlConfigError(f"cannot load design {suite}: {error}", path=path) from None
    return _read_yaml(_config_file(ctx, "designs", suite, path), path)


def _config_file(ctx: _Context, folder: str, name: str, path: str) -> Path:
    if ctx.config_dir is None:
        raise EtlConfigError(f"cannot resolve {name}: no config dir given", path=path)
    base = ctx.config_dir / folder
    for candidate in (base / name, base / f"{name}.yml", base / f"{name}.yaml"):
        if candidate.is_file():
            return candidate
    raise EtlConfigError(f"{folder}/{name}(.yml) does not exist in the config dir", path=path)


def _read_yaml(file: Path, path: str) -> Any:
    try:
        return yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise EtlConfigError(
            f"{file.name} is not valid YAML: {' '.join(str(error).split())}", path=path
        ) from None


_WHOLE_VAR = re.compile(r"^\[%\s*([A-Za-z_][A-Za-z0-9_]*)\s*%\]$")


def _substitute(value: Any, variables: dict, path: str) -> Any:
    """Render `[% var %]` in strings (structurally: a value that is just one variable keeps its type)."""
    if isinstance(value, dict):
        return {_substitute(k, variables, path): _substitute(v, variables, path) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(item, variables, path) for item in value]
    if not isinstance(value, str) or "[%" not in value:
        return value
    whole = _WHOLE_VAR.match(value)
    if whole and whole.group(1) in variables:
        return variables[whole.group(1)]
    import jinja2  # only designs with `[% %]` in ETL steps need it

    try:
        return _jinja().from_string(value).render(variables)
    except jinja2.TemplateError as error:
        raise EtlConfigError(
            f"cannot render {value!r} with $ETL_VARS$ {sorted(variables)}: {error}", path=path
        ) from None


def expand_pipeline(
    name: str,
    raw: Any,
    *,
    prefix: str,
    config_dir: Path | str | None = None,
    design_loader: DesignLoader | None = None,
) -> dict:
    """Expand and validate one pipeline's steps (not its `experiments`, which the caller resolves)."""
    path = f"{prefix}.{name}"
    check_pipeline_keys(raw, path)
    ctx = _Context(Path(config_dir) if config_dir is not None else None, design_loader)
    return expand_steps(raw, path, ctx, load_registry(ctx.config_dir))


@functools.cache
def _jinja():
    import jinja2.sandbox

    # `[% var %]` as in the design's inner templating; blocks get delimiters that designs never use.
    return jinja2.sandbox.SandboxedEnvironment(
        variable_start_string="[%",
        variable_end_string="%]",
        block_start_string="[%%",
        block_end_string="%%]",
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
