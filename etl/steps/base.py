"""Step base classes and the built-in registry.

A step is a frozen pydantic model whose fields are its options (unknown options are errors). Designs name
steps by class name, so the registry is keyed by class name and keeps doe-suite's names.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, field_validator

if TYPE_CHECKING:
    import pandas as pd

STEP_CONFIG = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)


class Step(BaseModel, ABC):
    model_config = STEP_CONFIG
    step_type: ClassVar[str] = "step"


class Extractor(Step):
    """Turns one file of a job folder into records (dicts); each record becomes one row."""

    step_type: ClassVar[str] = "extractor"
    # Hints that let extraction skip work: the file's content is never read / an empty file gives no records.
    reads_content: ClassVar[bool] = True
    empty_gives_nothing: ClassVar[bool] = False
    # The records are not rows but columns added to every row of the same job (RuntimeInfoExtractor).
    job_columns: ClassVar[bool] = False
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
    # Built-in transformers find in their options, under these keys, where the rows of their input come from
    # (see ExtractionResult.lineage; for the first transformer only) and a file for what they keep to let a
    # re-run work less (both None when there are none).
    LINEAGE_OPTION: ClassVar[str] = "$lineage$"
    STATE_FILE_OPTION: ClassVar[str] = "$state_file$"
    # Where a built-in transformer puts the lineage of its result, when it knows one, for the loaders.
    RESULT_LINEAGE_OPTION: ClassVar[str] = "$result_lineage$"

    @abstractmethod
    def transform(self, df: pd.DataFrame, options: dict) -> pd.DataFrame:
        """Return the transformed frame."""


class Loader(Step):
    """Writes a frame somewhere (files under the pipeline's output folder)."""

    step_type: ClassVar[str] = "loader"
    # Built-in loaders find in their options, under this key, the ETL's cache folder (or None): what they keep
    # there lets a re-run write less.
    CACHE_DIR_OPTION: ClassVar[str] = "$cache_dir$"
    # ... and the lineage of the frame (see ExtractionResult.lineage), or None.
    LINEAGE_OPTION: ClassVar[str] = "$lineage$"
    skip_empty: bool = False

    @abstractmethod
    def load(self, df: pd.DataFrame, options: dict, etl_info: dict) -> None:
        """Write the frame; `etl_info` has suite, suite_id, pipeline and etl_output_dir."""

    def get_output_dir(self, etl_info: dict) -> Path:
        out = Path(etl_info["etl_output_dir"])
        out.mkdir(parents=True, exist_ok=True)
        return out


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


def is_concrete_step(obj: Any) -> bool:
    return (
        inspect.isclass(obj)
        and issubclass(obj, STEP_BASES)
        and obj not in STEP_BASES
        and not inspect.isabstract(obj)
    )


def step_kind(cls: type[Step]) -> str:
    for base in STEP_BASES:
        if issubclass(cls, base):
            return base.step_type
    raise TypeError(cls)
