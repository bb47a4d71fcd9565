"""Step base classes and the built-in registry.

A step is a frozen pydantic model whose fields are its options (unknown options are errors). Designs name
steps by class name, so the registry is keyed by class name and keeps doe-suite's names.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias, TypeGuard

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import to_jsonable_python

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

# Where the rows of a frame come from: (token, one int64 id per row); see ExtractionResult.lineage.
Lineage: TypeAlias = "tuple[tuple, np.ndarray]"

STEP_CONFIG = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)


class Step(BaseModel, ABC):
    model_config = STEP_CONFIG
    step_type: ClassVar[str] = "step"
    # The options doe-suite's own step of this name has, in its field order: suite_design.yml lists each
    # with its default (see suite_design_options); doe's further options only when a design sets them.
    doe_suite_options: ClassVar[tuple[str, ...]] = ()


class Extractor(Step):
    """Turns one file of a job folder into records (dicts); each record becomes one row."""

    step_type: ClassVar[str] = "extractor"
    # Hints that let extraction skip work: the file's content is never read / an empty file gives no records.
    reads_content: ClassVar[bool] = True
    empty_gives_nothing: ClassVar[bool] = False
    # The records are not rows but columns added to every row of the same job (RuntimeInfoExtractor).
    job_columns: ClassVar[bool] = False
    # Reads doe's hidden record of the job (etl.fileio.DOE_RECORD), which no other extractor sees.
    reads_doe_record: ClassVar[bool] = False
    doe_suite_options: ClassVar[tuple[str, ...]] = ("file_regex",)
    file_regex: tuple[str, ...] = ()

    @field_validator("file_regex", mode="before")
    @classmethod
    def _regex_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @classmethod
    def default_file_regex(cls) -> list[str]:
        default = cls.model_fields["file_regex"].default
        return [default] if isinstance(default, str) else list(default or [])

    @abstractmethod
    def extract(self, path: str, options: dict) -> list[dict]:
        """Return the file's records; `options` holds the step options and `$config_flat$`."""

    def extract_table(self, path: str, options: dict) -> tuple[list[str], list[list]] | None:
        """Fast path: the records as (column names, rows). None means: use `extract`."""
        return None


class Transformer(Step):
    """Turns a frame into a new frame; never mutates its input."""

    step_type: ClassVar[str] = "transformer"

    @abstractmethod
    def transform(self, df: pd.DataFrame, options: dict) -> pd.DataFrame:
        """Return the transformed frame."""


@dataclass(frozen=True)
class IncrementalResult:
    """An incremental transformer's frame, the state to keep for its next call (None: nothing new to keep)
    and the lineage of the frame (None: unknown)."""

    frame: pd.DataFrame
    state: Any = None
    lineage: Lineage | None = None


class IncrementalTransformer(Transformer):
    """A transformer that can reuse what it kept from its previous call, when it knows which rows of its input
    are the same rows as then. It only computes: the runner keeps the state between runs (built-in steps
    only; `transform` is the same transformation from scratch)."""

    @abstractmethod
    def transform_incremental(
        self, df: pd.DataFrame, options: dict, lineage: Lineage | None, previous_state: Any
    ) -> IncrementalResult:
        """The transformed frame, as `transform` returns it, with the state to keep and the frame's lineage.

        `lineage` is the input's (None: unknown); `previous_state` what the previous call returned as its
        state (None, or anything else that is no usable state of this step: ignored)."""

    def transform(self, df: pd.DataFrame, options: dict) -> pd.DataFrame:
        return self.transform_incremental(df, options, None, None).frame


class Loader(Step):
    """Writes a frame somewhere (files under the pipeline's output folder)."""

    step_type: ClassVar[str] = "loader"
    skip_empty: bool = Field(False, description="An empty frame writes nothing instead of failing the pipeline.")

    @abstractmethod
    def load(self, df: pd.DataFrame, options: dict, etl_info: dict) -> None:
        """Write the frame; `etl_info` has suite, suite_id, pipeline and etl_output_dir."""

    def get_output_dir(self, etl_info: dict) -> Path:
        out = Path(etl_info["etl_output_dir"])
        out.mkdir(parents=True, exist_ok=True)
        return out


@dataclass(frozen=True)
class LoadContext:
    """What the runner tells an incremental loader besides the frame."""

    # The ETL's cache folder (None: no cache): what a loader keeps there lets a re-run write less.
    cache_dir: Path | None = None
    lineage: Lineage | None = None


class IncrementalLoader(Loader):
    """A loader that can write less when it knows what it wrote last time (built-in steps only; `load` is the
    same write without a context)."""

    @abstractmethod
    def load_incremental(self, df: pd.DataFrame, options: dict, etl_info: dict, context: LoadContext) -> None:
        """Write the frame as `load` does."""

    def load(self, df: pd.DataFrame, options: dict, etl_info: dict) -> None:
        self.load_incremental(df, options, etl_info, LoadContext())


STEP_BASES: tuple[type[Step], ...] = (Extractor, Transformer, Loader)
BUILTIN_STEPS: dict[str, type[Step]] = {}
# Built-in steps not named in designs by class name (`df.<method>` items).
UNREGISTERED_BUILTINS: set[type] = set()


def register(cls: type[Step]) -> type[Step]:
    """Register a built-in step by its class name."""
    if cls.__name__ in BUILTIN_STEPS and BUILTIN_STEPS[cls.__name__] is not cls:
        raise RuntimeError(f"built-in step {cls.__name__} registered twice")
    BUILTIN_STEPS[cls.__name__] = cls
    return cls


def is_builtin(cls: type) -> bool:
    """doe's own steps (not subclasses of them): pure transformers, extractors that read only their file."""
    return cls in BUILTIN_STEPS.values() or cls in UNREGISTERED_BUILTINS


def is_concrete_step(obj: Any) -> TypeGuard[type[Step]]:
    return (
        inspect.isclass(obj)
        and issubclass(obj, STEP_BASES)
        and obj not in STEP_BASES
        and not inspect.isabstract(obj)
    )


def suite_design_options(cls: type[Step], given: dict) -> dict:
    """A step's options as doe-suite writes them into suite_design.yml: every option of its step with the
    given value or the default (None left out), in the step's field order, then the other given options.

    For a project's own step, doe-suite's step is the project class: the options of the doe class it derives
    from that doe-suite has too, then the fields the project's classes declare."""
    doe_base = next(klass for klass in cls.__mro__ if _is_doe_class(klass))
    names = list(doe_base.doe_suite_options)
    for klass in reversed(cls.__mro__):
        if not _is_doe_class(klass) and issubclass(klass, BaseModel):
            names += [n for n in inspect.get_annotations(klass) if n in cls.model_fields and n not in names]
    options = {}
    for name in names:
        field = cls.model_fields[name]
        if name in given:
            options[name] = given[name]
        elif not field.is_required():
            options[name] = to_jsonable_python(field.get_default(call_default_factory=True))
    written = {name: value for name, value in options.items() if value is not None}
    return {**written, **{name: value for name, value in given.items() if name not in names}}


def _is_doe_class(klass: type) -> TypeGuard[type[Step]]:
    return klass.__module__.split(".")[0] == "etl" and issubclass(klass, Step)


def step_kind(cls: type[Step]) -> str:
    for base in STEP_BASES:
        if issubclass(cls, base):
            return base.step_type
    raise TypeError(cls)
