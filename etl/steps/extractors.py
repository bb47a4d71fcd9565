"""Built-in extractors. Only extractors and loaders touch the disk."""

from __future__ import annotations

import csv
import io
import json
import os
import warnings
from typing import ClassVar, Literal

import yaml

from etl.errors import EtlDataError
from etl.steps.base import Extractor, register

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# The columns extraction adds to every row, in front of the run config's.
META_COLUMNS = (
    "suite_name",
    "suite_id",
    "exp_name",
    "run",
    "rep",
    "host_type",
    "host_idx",
    "factor_columns",
    "source_file",
)


class EtlWarning(UserWarning):
    """A note about the data that does not fail the pipeline (collected into the run report)."""


def _records(value: object, path: str) -> list[dict]:
    if value is None:
        return []
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list) and all(isinstance(item, dict) for item in value):
        return value
    raise EtlDataError(f"{path}: expected a mapping or a list of mappings, got {type(value).__name__}")


@register
class CsvExtractor(Extractor):
    """One row per CSV line; the header row names the columns (or `fieldnames`)."""

    empty_gives_nothing: ClassVar[bool] = True
    doe_suite_options: ClassVar[tuple[str, ...]] = ("file_regex", "delimiter", "has_header", "fieldnames")
    file_regex: tuple[str, ...] = (r".*\.csv$",)
    delimiter: str = ","
    has_header: bool = True
    fieldnames: list[str] | None = None

    def extract_table(self, path: str, options: dict) -> tuple[list[str], list[list]]:
        with open(path, "rb") as handle:
            text = handle.read().decode("utf-8")
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=self.delimiter))
        rows = [row for row in rows if row]
        header: list[str] | None = None
        if self.has_header and rows:
            header = rows.pop(0)
        if self.fieldnames is not None:
            header = list(self.fieldnames)
        width = max((len(row) for row in rows), default=len(header or []))
        if header is None:
            header = [str(index) for index in range(width)]
        if width > len(header):
            raise EtlDataError(f"{path}: a row has {width} fields but the header names {len(header)}")
        return header, rows

    def extract(self, path: str, options: dict) -> list[dict]:
        header, rows = self.extract_table(path, options)
        return [dict(zip(header, row)) for row in rows]


@register
class JsonExtractor(Extractor):
    """One row per mapping: the file holds a mapping or a list of mappings."""

    file_regex: tuple[str, ...] = (r".*\.json$",)

    def extract(self, path: str, options: dict) -> list[dict]:
        with open(path, encoding="utf-8") as handle:
            return _records(json.load(handle), path)


@register
class YamlExtractor(Extractor):
    """One row per mapping: the file holds a mapping or a list of mappings."""

    file_regex: tuple[str, ...] = (
        r".*\.yaml$",
        r".*\.yml$",
    )

    def extract(self, path: str, options: dict) -> list[dict]:
        with open(path, encoding="utf-8") as handle:
            return _records(yaml.load(handle, Loader=_YAML_LOADER), path)


@register
class ErrorExtractor(Extractor):
    """A non-empty file (stderr.log by default) fails the pipeline, or with on_output=warning is a note."""

    empty_gives_nothing: ClassVar[bool] = True
    # doe-suite's own text, so suite_design.yml lists the same defaults
    file_regex: tuple[str, ...] = ("^stderr.log$",)
    on_output: Literal["error", "warning"] = "error"
    preview_lines: int = 3

    def extract(self, path: str, options: dict) -> list[dict]:
        if os.path.getsize(path) == 0:
            return []
        with open(path, encoding="utf-8", errors="replace") as handle:
            head = [handle.readline().rstrip("\n") for _ in range(self.preview_lines)]
        preview = " | ".join(line for line in head if line)
        message = f"{path} is not empty: {preview}"
        if self.on_output == "error":
            raise EtlDataError(message)
        warnings.warn(message, EtlWarning, stacklevel=2)
        return []


@register
class IgnoreExtractor(Extractor):
    """Whitelists expected files that hold no data."""

    reads_content: ClassVar[bool] = False
    file_regex: tuple[str, ...] = ("^stdout.log$",)

    def extract(self, path: str, options: dict) -> list[dict]:
        return []


RUNTIME_PREFIX = "runtime."


def _scalar(text: str) -> object:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return {"null": None, "~": None, "": None, "true": True, "false": False}.get(text, text)


def parse_runtime_info(path: str) -> dict:
    """doe's record is flat `key: value` lines; parse it without a YAML parser."""
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    info: dict = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition(":")
        if not sep or line[0].isspace() or value.strip().startswith(("{", "[", "|", ">")):
            return _records(yaml.load(text, Loader=_YAML_LOADER), path)[0]
        info[key.strip()] = _scalar(value)
    return info


@register
class RuntimeInfoExtractor(Extractor):
    """Adds doe's record of the job (wall seconds, max RSS, exit code, ...; the hidden file
    ``.doe_runtime_info.yaml`` in its folder) to each row of the job.

    Columns are prefixed with ``runtime.``; aggregating transformers treat them as data, never as group keys.
    A job's own ``runtime_info.yaml`` is one of its files, extracted like any other.
    """

    file_regex: tuple[str, ...] = (r"^\.doe_runtime_info\.yaml$",)
    reads_doe_record: ClassVar[bool] = True
    fields: tuple[str, ...] = ("wall_seconds", "max_rss_kb", "exit_code", "status")
    job_columns: ClassVar[bool] = True

    def extract(self, path: str, options: dict) -> list[dict]:
        info = parse_runtime_info(path)
        return [{f"{RUNTIME_PREFIX}{name}": info.get(name) for name in self.fields}]
