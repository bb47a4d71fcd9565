"""One job folder's files → rows: which extractor reads a file (FileMatcher), what it gives (extract_job).

extract_job reads only the files it is given, through the extractors; the walk (etl.extract_walk) decides
which job folders and files there are, and the frame builder (etl.extract_frame) turns the rows into a frame.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from etl.errors import EtlDataError
from etl.fileio import DOE_RECORD
from etl.pipeline import StepSpec
from etl.steps.base import Extractor

# What extraction does with a file, decided once per extractor.
SKIP, TABLE, RECORDS, JOB_COLUMNS = range(4)
# FileMatcher's answer for a file name that no extractor claims.
_NO_EXTRACTOR = -1
# How many names of one pattern an error lists.
_NAMES_SHOWN = 5

# A file whose content an extractor reads: (path relative to the job folder, path, extractor index, size).
ContentFile = tuple[str, str, int, int]
# What a job's files give: pieces (TABLE, rel, header, rows) or (RECORDS, rel, records), the job columns
# (extractors with job_columns: one value per job) and the file those came from.
JobRows = tuple[list[tuple], dict[str, Any], str | None]


def flatten(config: dict, prefix: str = "") -> dict:
    """Nested mappings → `a.b` keys; lists stay values."""
    flat: dict = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def flatten_run_config(config: dict) -> dict:
    """The run config's columns in doe-suite's order (pandas' json_normalize): its top-level values that are
    no mappings first, then each mapping flattened, both in key order."""
    flat = flatten(config)
    nested = [name for name, value in config.items() if isinstance(value, dict) and value]
    prefixes = tuple(f"{name}." for name in nested)
    return {**{k: v for k, v in flat.items() if not k.startswith(prefixes)},
            **{k: v for k, v in flat.items() if k.startswith(prefixes)}}


def extractor_mode(step: Extractor) -> int:
    if not type(step).reads_content:
        return SKIP
    if type(step).job_columns:
        return JOB_COLUMNS
    if type(step).extract_table is not Extractor.extract_table:
        return TABLE
    return RECORDS


def extract_job(
    matcher: FileMatcher, files: Sequence[ContentFile], config_flat: dict, job_key: str
) -> JobRows:
    """The rows of one job's files, each read by the extractor `matcher` chose; a failure is one EtlDataError
    naming the file."""
    pieces: list[tuple] = []
    job_columns: dict[str, Any] = {}
    job_columns_file = None
    for rel, path, index, size in files:
        spec = matcher.extractors[index]
        step = matcher.steps[index]
        mode = matcher.modes[index]
        if size == 0 and type(step).empty_gives_nothing:
            continue
        try:
            table = step.extract_table(path, spec.options) if mode == TABLE else None
            if table is not None:  # else the extractor asks for `extract` after all
                if table[1]:
                    pieces.append((TABLE, rel, list(table[0]), table[1]))
                continue
            records = step.extract(path, {**spec.options, "$config_flat$": config_flat})
            if mode == JOB_COLUMNS:
                for record in records:
                    job_columns.update(record)
                job_columns_file = rel
            elif records:
                pieces.append((RECORDS, rel, records))
        except EtlDataError as error:
            raise EtlDataError(
                f"{job_key}/{rel}: {error.detail}", pipeline=matcher.pipeline, step=spec.path
            ) from None
        except Exception as error:  # noqa: BLE001 - any extractor failure is one line naming the file
            raise EtlDataError(
                f"{job_key}/{rel}: {type(error).__name__}: {error}", pipeline=matcher.pipeline, step=spec.path
            ) from None
    return pieces, job_columns, job_columns_file


class FileMatcher:
    """Which extractor reads a file, decided once per distinct file name. A name no extractor claims is noted
    and read by none, so that the walk goes on and one error (`unmatched_error`) names all."""

    def __init__(self, pipeline: str, extractors: Sequence[StepSpec[Extractor]]) -> None:
        self.pipeline = pipeline
        self.extractors = extractors
        self.steps = [spec.step for spec in extractors]
        self.modes = [extractor_mode(step) for step in self.steps]
        self._patterns = [tuple(re.compile(r) for r in step.file_regex) for step in self.steps]
        self._memo: dict[str, int | None] = {}
        self.unmatched: dict[str, list] = {}  # name -> [number of files, the first one's path]

    def match(self, name: str, display: str) -> int | None:
        """The index of the extractor that reads a file of this name; None: nothing to read."""
        if name not in self._memo:
            self._memo[name] = self._extractor_for(name, display)
        index = self._memo[name]
        if index == _NO_EXTRACTOR:
            entry = self.unmatched.get(name)
            if entry is None:
                self.unmatched[name] = [1, display]
            else:
                entry[0] += 1
            return None
        return index

    def _extractor_for(self, name: str, display: str) -> int | None:
        if name.startswith("."):
            # Hidden files are not the job's results; doe's record goes only to the extractors made for it.
            claims = [i for i, step in enumerate(self.steps) if type(step).reads_doe_record]
            return claims[0] if name == DOE_RECORD and claims else None
        hits = [i for i, patterns in enumerate(self._patterns) if any(p.match(name) for p in patterns)]
        if len(hits) > 1:
            names = ", ".join(f"{self.extractors[i].name} {list(self.steps[i].file_regex)}" for i in hits)
            raise EtlDataError(f"{display} matches multiple extractors: {names}", pipeline=self.pipeline)
        if not hits:
            return _NO_EXTRACTOR
        return None if self.modes[hits[0]] == SKIP else hits[0]

    def unmatched_error(self) -> EtlDataError:
        """One error naming every file name no extractor claims, grouped by pattern (digits stand for any
        number), with the extractors there are and an IgnoreExtractor that would take them."""
        groups: dict[str, list[str]] = {}
        for name in self.unmatched:
            groups.setdefault(re.sub(r"\d+", "<n>", name), []).append(name)
        parts, regexes = [], []
        for pattern, names in groups.items():
            count = sum(self.unmatched[name][0] for name in names)
            example = self.unmatched[names[0]][1]
            if len(names) == 1:
                parts.append(f"{names[0]} ({count} files, e.g. {example})")
            else:
                shown = ", ".join(names[:_NAMES_SHOWN]) + (", ..." if len(names) > _NAMES_SHOWN else "")
                parts.append(f"{pattern} ({len(names)} names: {shown}; {count} files, e.g. {example})")
            regexes.append("^" + r"\d+".join(re.escape(piece) for piece in pattern.split("<n>")) + "$")
        candidates = ", ".join(
            f"{spec.name} {list(step.file_regex)}" for spec, step in zip(self.extractors, self.steps)
        )
        return EtlDataError(
            f"no extractor matches these file names: {'; '.join(parts)}; candidates: {candidates}; "
            f"add an extractor for them or IgnoreExtractor with file_regex {regexes}",
            pipeline=self.pipeline,
        )
