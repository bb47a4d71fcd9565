"""ETL errors: each reads as one line that names where the problem is and what was expected."""

from __future__ import annotations


class EtlError(Exception):
    """Base of all ETL errors."""


class EtlConfigError(EtlError):
    """A pipeline definition is invalid (unknown step, bad option, missing include, ...).

    `path` is a YAML-ish path such as ``$ETL$.timing.transformers[0]``; `file` the file it came from.
    """

    def __init__(self, message: str, *, path: str | None = None, file: str | None = None) -> None:
        self.detail = " ".join(str(message).split())
        self.path = path
        self.file = file
        super().__init__(self.format())

    def format(self) -> str:
        where = ": ".join(part for part in (self.file, self.path) if part)
        return f"{where}: {self.detail}" if where else self.detail


class EtlDataError(EtlError):
    """A pipeline failed on the data it read (a file matching no extractor, a failing transformer, ...)."""

    def __init__(self, message: str, *, pipeline: str | None = None, step: str | None = None) -> None:
        self.detail = " ".join(str(message).split())
        self.pipeline = pipeline
        self.step = step
        super().__init__(self.format())

    def format(self) -> str:
        where = []
        if self.pipeline:
            where.append(f"pipeline {self.pipeline}")
        if self.step:
            where.append(f"step {self.step}")
        return f"{', '.join(where)}: {self.detail}" if where else self.detail
