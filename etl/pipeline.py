"""A pipeline definition (expanded `$ETL$` entry) turned into validated step objects."""

from __future__ import annotations

import fnmatch
import re
import warnings
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar, overload

from pydantic import ValidationError

from etl.errors import EtlConfigError
from etl.registry import Registry
from etl.steps.base import Extractor, Loader, Step, Transformer
from etl.steps.extractors import EtlWarning
from etl.steps.transformers import DataFrameMethodTransformer, is_dataframe_method

STEP_KEYS = ("extractors", "transformers", "loaders")


_Step = TypeVar("_Step", bound=Step, covariant=True)


@dataclass(frozen=True)
class StepSpec(Generic[_Step]):
    name: str
    path: str
    step: _Step
    options: dict


@dataclass(frozen=True)
class Pipeline:
    name: str
    experiments: Any
    extractors: tuple[StepSpec[Extractor], ...]
    transformers: tuple[StepSpec[Transformer], ...]
    loaders: tuple[StepSpec[Loader], ...]


def normalize_file_regex(value: Any, path: str) -> list[str]:
    """A str or list of regexes; an entry that is no valid regex but a glob ("*.log") becomes a regex."""
    entries = [value] if isinstance(value, str) else value
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        raise EtlConfigError("file_regex must be a string or a list of strings", path=path)
    result = []
    for entry in entries:
        try:
            re.compile(entry)
            result.append(entry)
            continue
        except re.error as error:
            problem = error
        if any(ch in entry for ch in "*?["):
            translated = fnmatch.translate(entry)
            try:
                re.compile(translated)
            except re.error:
                pass
            else:
                warnings.warn(
                    f"{path}: {entry!r} is no regular expression; read as a glob",
                    EtlWarning,
                    stacklevel=2,
                )
                result.append(translated)
                continue
        raise EtlConfigError(
            f"file_regex entry {entry!r} is neither a regular expression ({problem}) nor a glob", path=path
        )
    return result


def _validation_message(error: ValidationError, name: str, cls: type[Step]) -> str:
    parts = []
    unknown_option = False
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "options"
        parts.append(f"{where}: {item['msg']}")
        unknown_option |= item["type"] == "extra_forbidden" and len(item["loc"]) == 1
    if unknown_option:
        parts.append(f"{name} takes {', '.join(cls.model_fields)} (see doe etl-steps {name})")
    return "; ".join(parts)


@overload
def instantiate(
    registry: Registry, kind: Literal["extractor"], name: str, options: Any, path: str
) -> Extractor: ...
@overload
def instantiate(
    registry: Registry, kind: Literal["transformer"], name: str, options: Any, path: str
) -> Transformer: ...
@overload
def instantiate(
    registry: Registry, kind: Literal["loader"], name: str, options: Any, path: str
) -> Loader: ...
def instantiate(registry: Registry, kind: str, name: str, options: Any, path: str) -> Step:
    """The step `name` with these options; the registry makes sure it is a `kind`."""
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise EtlConfigError(f"options of {name} must be a mapping, got {type(options).__name__}", path=path)
    cls = registry.step(name, kind, path)
    if issubclass(cls, Extractor):
        regex = options.get("file_regex", cls.default_file_regex())
        options = {**options, "file_regex": normalize_file_regex(regex, f"{path}.file_regex")}
    try:
        return cls(**options)
    except ValidationError as error:
        raise EtlConfigError(f"{name}: {_validation_message(error, name, cls)}", path=path) from None
    except Exception as error:  # noqa: BLE001 - a custom step's constructor may raise anything
        raise EtlConfigError(f"{name}: {type(error).__name__}: {error}", path=path) from None


def transformer_item(item: Any, path: str) -> tuple[str, dict]:
    """A transformers list item → (step name, options)."""
    if not isinstance(item, dict) or not item:
        raise EtlConfigError(
            "a transformer must be a mapping {name: X, ...} or {df.<method>: {kwargs}}", path=path
        )
    if "name" in item:
        return item["name"], {k: v for k, v in item.items() if k != "name"}
    if len(item) == 1:
        key, kwargs = next(iter(item.items()))
        if isinstance(key, str) and key.startswith("df."):
            return key, {"kwargs": kwargs}
    raise EtlConfigError(
        f"transformer {item!r} has no `name` and is not a single df.<method> entry", path=path
    )


def build_transformer(registry: Registry, item: Any, path: str) -> StepSpec[Transformer]:
    name, options = transformer_item(item, path)
    if name.startswith("df."):
        method = name[3:]
        if not is_dataframe_method(method):
            raise EtlConfigError(f"unknown DataFrame method {name}", path=path)
        kwargs = options["kwargs"] if options["kwargs"] is not None else {}
        if not isinstance(kwargs, dict):
            raise EtlConfigError(f"{name} takes a mapping of keyword arguments", path=path)
        if kwargs.get("inplace"):
            raise EtlConfigError(
                f"{name}: inplace is not allowed (transformers never mutate their input)", path=path
            )
        return StepSpec(name, path, DataFrameMethodTransformer(method=method, kwargs=kwargs), dict(kwargs))
    return StepSpec(name, path, instantiate(registry, "transformer", name, options, path), dict(options))


def build_pipeline(name: str, section: dict, registry: Registry, prefix: str = "$ETL$") -> Pipeline:
    """Validate an expanded pipeline (explicit lists, no includes) into step objects."""
    base = f"{prefix}.{name}"
    if not isinstance(section, dict):
        raise EtlConfigError("a pipeline must be a mapping", path=base)
    unknown = set(section) - {"experiments", *STEP_KEYS}
    if unknown:
        raise EtlConfigError(
            f"unknown keys {sorted(unknown)}; expected experiments, extractors, transformers, loaders",
            path=base,
        )
    extractors_section = section.get("extractors") or {}
    if not isinstance(extractors_section, dict) or not extractors_section:
        raise EtlConfigError(
            "extractors must be a non-empty mapping ExtractorName → options", path=f"{base}.extractors"
        )
    extractors = tuple(
        StepSpec(
            step_name,
            f"{base}.extractors.{step_name}",
            instantiate(registry, "extractor", step_name, opts, f"{base}.extractors.{step_name}"),
            dict(opts or {}),
        )
        for step_name, opts in extractors_section.items()
    )
    transformers_section = section.get("transformers") or []
    if not isinstance(transformers_section, list):
        raise EtlConfigError("transformers must be a list", path=f"{base}.transformers")
    transformers = tuple(
        build_transformer(registry, item, f"{base}.transformers[{i}]")
        for i, item in enumerate(transformers_section)
    )
    loaders_section = section.get("loaders") or {}
    if not isinstance(loaders_section, dict):
        raise EtlConfigError("loaders must be a mapping LoaderName → options", path=f"{base}.loaders")
    loaders = tuple(
        StepSpec(
            step_name,
            f"{base}.loaders.{step_name}",
            instantiate(registry, "loader", step_name, opts, f"{base}.loaders.{step_name}"),
            dict(opts or {}),
        )
        for step_name, opts in loaders_section.items()
    )
    return Pipeline(name, section.get("experiments"), extractors, transformers, loaders)
