"""What an ETL invocation reports: one outcome per pipeline. Standard library only, so that a re-run that finds
nothing changed can answer without importing pandas."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from etl.errors import EtlConfigError

Status = Literal["ok", "skipped", "error"]


@dataclass
class PipelineOutcome:
    pipeline: str
    status: Status
    message: str = ""
    warnings: list[str] = field(default_factory=list)
    rows: int = 0
    jobs: int = 0
    jobs_read: int = 0
    output_dir: Path | None = None
    seconds: float = 0.0
    # The (size, mtime) of every directory and file the extraction relied on, what a later run compares: groups
    # (prefix, stamps) (see etl.stamps) whose paths are prefix + name.
    inputs: list[tuple[str, tuple]] = field(default_factory=list, repr=False)
    # Every step is doe's own (a custom step may depend on more than the files it was given).
    builtin_only: bool = False

    def line(self) -> str:
        if self.status == "ok":
            return (
                f"{self.pipeline}: ok, {self.rows} rows from {self.jobs} jobs ({self.jobs_read} read, "
                f"{self.jobs - self.jobs_read} cached) in {self.seconds:.2f} s → {self.output_dir}"
            )
        return f"{self.pipeline}: {self.status}: {self.message}"


@dataclass
class EtlReport:
    outcomes: list[PipelineOutcome] = field(default_factory=list)
    config_error: EtlConfigError | None = None

    @property
    def ok(self) -> bool:
        return self.config_error is None and all(o.status != "error" for o in self.outcomes)

    @property
    def errors(self) -> list[PipelineOutcome]:
        return [o for o in self.outcomes if o.status == "error"]

    def by_pipeline(self) -> dict[str, PipelineOutcome]:
        return {o.pipeline: o for o in self.outcomes}

    def lines(self) -> list[str]:
        return self._head() + [o.line() for o in self.outcomes]

    def error_lines(self) -> list[str]:
        """One line per problem: the configuration error, then each failing pipeline's."""
        return self._head() + [o.line() for o in self.errors]

    def _head(self) -> list[str]:
        return [f"ETL configuration error: {self.config_error}"] if self.config_error else []
