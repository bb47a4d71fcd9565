"""Extraction: walk the job folders of a results tree, run the matching extractor per file, build a frame.

Speed matters (tens of thousands of small files): file names are matched once per distinct name, config.json
is parsed with json and flattened once per distinct text, CSV files are read with the csv module, rows are
collected as lists per column layout and turned into one DataFrame at the end. With a cache path, the
extracted records of each job folder are kept between runs, keyed by the size and mtime of its files.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from etl.errors import EtlDataError
from etl.fileio import write_atomic
from etl.pipeline import StepSpec
from etl.steps.extractors import EtlWarning

RUNTIME_INFO = "runtime_info.yaml"
CONFIG_JSON = "config.json"
CACHE_VERSION = 1
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
_RUN = re.compile(r"^run_(\d+)$")
_REP = re.compile(r"^rep_(\d+)$")
_HOST = re.compile(r"^host_(\d+)$")
_SEQ = "__doe_row_order__"


@dataclass(frozen=True)
class ExperimentSource:
    """One experiment folder of one suite result folder."""

    suite_name: str
    suite_id: Any
    suite_dir: Path
    exp_name: str
    factor_columns: tuple[str, ...] = ()

    def has_results(self) -> bool:
        exp_dir = self.suite_dir / self.exp_name
        return exp_dir.is_dir() and any(_RUN.match(e.name) and e.is_dir() for e in os.scandir(exp_dir))


@dataclass
class JobData:
    """What the extractors produced for one job folder: table pieces, record pieces, job-wide columns."""

    pieces: list[tuple] = field(default_factory=list)
    job_columns: dict = field(default_factory=dict)
    job_columns_file: str | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class ExtractionResult:
    frame: pd.DataFrame
    warnings: list[str]
    jobs: int
    jobs_read: int


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


def _numbered(path: Path, pattern: re.Pattern, dirs_only: bool = True) -> list[tuple[int, str, str]]:
    try:
        entries = list(os.scandir(path))
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = []
    for entry in entries:
        match = pattern.match(entry.name)
        if match and (not dirs_only or entry.is_dir()):
            found.append((int(match.group(1)), entry.name, entry.path))
    found.sort()
    return found


def _files(host_dir: str, prefix: str = "") -> list[tuple[str, str, str, tuple[int, int]]]:
    """All files below a host folder as (relative path, name, path, (size, mtime_ns)), sorted by path."""
    found = []
    with os.scandir(host_dir) as entries:
        for entry in entries:
            if entry.is_dir():
                found.extend(_files(entry.path, f"{prefix}{entry.name}/"))
            elif entry.is_file():
                stat = entry.stat()
                found.append((prefix + entry.name, entry.name, entry.path, (stat.st_size, stat.st_mtime_ns)))
    found.sort()
    return found


class Extraction:
    """Runs a pipeline's extractors over experiment folders."""

    def __init__(self, pipeline: str, extractors: Iterable[StepSpec], cache_dir: Path | None = None) -> None:
        self.pipeline = pipeline
        self.extractors = tuple(extractors)
        self.patterns = [tuple(re.compile(r) for r in spec.step.file_regex) for spec in self.extractors]
        self._match_memo: dict[str, int | None] = {}
        cacheable = all(type(spec.step).builtin for spec in self.extractors)
        self.signature = self._signature()
        self.cache_file = cache_dir / f"extract-{self.signature}.pkl" if cacheable and cache_dir else None

    def _signature(self) -> str:
        text = repr(
            [
                (spec.name, type(spec.step).__module__, spec.step.model_dump(mode="json"))
                for spec in self.extractors
            ]
        )
        return hashlib.sha1(f"{CACHE_VERSION}:{text}".encode()).hexdigest()[:16]

    # -- matching -------------------------------------------------------------------------------------------
    def _match(self, name: str, display: str) -> int | None:
        if name in self._match_memo:
            return self._match_memo[name]
        hits = [i for i, patterns in enumerate(self.patterns) if any(p.match(name) for p in patterns)]
        if len(hits) > 1:
            names = ", ".join(
                f"{self.extractors[i].name} {list(self.extractors[i].step.file_regex)}" for i in hits
            )
            raise EtlDataError(f"{display} matches multiple extractors: {names}", pipeline=self.pipeline)
        if not hits:
            if name == RUNTIME_INFO:
                self._match_memo[name] = None
                return None
            names = ", ".join(f"{spec.name} {list(spec.step.file_regex)}" for spec in self.extractors)
            raise EtlDataError(
                f"{display} matches no extractor (candidates: {names}); add an extractor or "
                "IgnoreExtractor for it",
                pipeline=self.pipeline,
            )
        self._match_memo[name] = hits[0]
        return hits[0]

    # -- one job --------------------------------------------------------------------------------------------
    def _extract_job(self, files: list, config_flat: dict, display_root: str) -> JobData:
        job = JobData()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", EtlWarning)
            for rel, name, path, _stamp in files:
                display = f"{display_root}/{rel}"
                index = self._match(name, display)
                if index is None:
                    continue
                spec = self.extractors[index]
                step = spec.step
                try:
                    if getattr(step, "job_columns", False):
                        for record in step.extract(path, {**spec.options, "$config_flat$": config_flat}):
                            job.job_columns.update(record)
                        job.job_columns_file = rel
                        continue
                    table = step.extract_table(path, spec.options)
                    if table is not None:
                        header, rows = table
                        if rows:
                            job.pieces.append(("table", rel, list(header), rows))
                        continue
                    records = step.extract(path, {**spec.options, "$config_flat$": config_flat})
                    if records:
                        job.pieces.append(("records", rel, records))
                except EtlDataError as error:
                    raise EtlDataError(
                        f"{display}: {error.detail}", pipeline=self.pipeline, step=spec.path
                    ) from None
                except Exception as error:  # noqa: BLE001 - any extractor failure is one line naming the file
                    raise EtlDataError(
                        f"{display}: {type(error).__name__}: {error}", pipeline=self.pipeline, step=spec.path
                    ) from None
        job.warnings = [str(w.message) for w in caught if issubclass(w.category, EtlWarning)]
        return job

    # -- the walk -------------------------------------------------------------------------------------------
    def run(self, sources: Iterable[ExperimentSource]) -> ExtractionResult:
        cache = self._load_cache()
        old_jobs, old_configs = cache["jobs"], cache["configs"]
        new_jobs: dict = {}
        new_configs: dict = {}
        flat_by_text: dict[str, dict] = {}
        builder = _FrameBuilder()
        notes: list[str] = []
        jobs = jobs_read = 0
        sources = list(sources)
        visited = tuple(f"{s.suite_dir.name}/{s.exp_name}/" for s in sources)
        # Pipelines with the same extractors share the cache file: keep the entries of other experiments.
        new_jobs.update((k, v) for k, v in old_jobs.items() if not k.startswith(visited))
        new_configs.update((k, v) for k, v in old_configs.items() if not k.startswith(visited))
        for source in sources:
            exp_dir = source.suite_dir / source.exp_name
            factor_list = list(source.factor_columns)
            for run, run_name, run_path in _numbered(exp_dir, _RUN):
                for rep, rep_name, rep_path in _numbered(Path(run_path), _REP):
                    config_path = os.path.join(rep_path, CONFIG_JSON)
                    try:
                        stat = os.stat(config_path)
                    except FileNotFoundError:
                        continue
                    rep_key = f"{source.suite_dir.name}/{source.exp_name}/{run_name}/{rep_name}"
                    stamp = (stat.st_size, stat.st_mtime_ns)
                    cached = old_configs.get(rep_key)
                    if cached is not None and cached[0] == stamp:
                        config_flat = cached[1]
                    else:
                        config_flat = self._config_flat(config_path, flat_by_text, rep_key)
                    new_configs[rep_key] = (stamp, config_flat)
                    for host_type in sorted(e.name for e in os.scandir(rep_path) if e.is_dir()):
                        for host_idx, host_name, host_path in _numbered(Path(rep_path, host_type), _HOST):
                            jobs += 1
                            job_key = f"{rep_key}/{host_type}/{host_name}"
                            files = _files(host_path)
                            stamps = tuple((f[0], f[3]) for f in files)
                            cached_job = old_jobs.get(job_key)
                            if cached_job is not None and cached_job[0] == stamps:
                                job = cached_job[1]
                            else:
                                jobs_read += 1
                                job = self._extract_job(files, config_flat, job_key)
                            new_jobs[job_key] = (stamps, job)
                            notes.extend(job.warnings)
                            meta = (
                                source.suite_name,
                                source.suite_id,
                                source.exp_name,
                                run,
                                rep,
                                host_type,
                                host_idx,
                                factor_list,
                            )
                            builder.add_job(meta, config_flat, job)
        if self.cache_file is not None and (
            jobs_read or len(new_jobs) != len(old_jobs) or new_configs.keys() != old_configs.keys()
        ):
            self._save_cache({"version": CACHE_VERSION, "jobs": new_jobs, "configs": new_configs})
        return ExtractionResult(builder.frame(), notes, jobs, jobs_read)

    def _config_flat(self, config_path: str, flat_by_text: dict, rep_key: str) -> dict:
        with open(config_path, encoding="utf-8") as handle:
            text = handle.read()
        flat = flat_by_text.get(text)
        if flat is None:
            try:
                config = json.loads(text)
            except json.JSONDecodeError as error:
                raise EtlDataError(
                    f"{rep_key}/{CONFIG_JSON} is not valid JSON: {error}", pipeline=self.pipeline
                ) from None
            flat = flatten(config) if isinstance(config, dict) else {}
            flat_by_text[text] = flat
        return flat

    # -- cache ----------------------------------------------------------------------------------------------
    def _load_cache(self) -> dict:
        empty = {"version": CACHE_VERSION, "jobs": {}, "configs": {}}
        if self.cache_file is None:
            return empty
        try:
            with open(self.cache_file, "rb") as handle:
                cache = pickle.load(handle)
        except (
            OSError,
            pickle.UnpicklingError,
            EOFError,
            AttributeError,
            ImportError,
            TypeError,
            ValueError,
        ):
            return empty
        if not isinstance(cache, dict) or cache.get("version") != CACHE_VERSION:
            return empty
        return cache

    def _save_cache(self, cache: dict) -> None:
        write_atomic(
            self.cache_file,
            lambda handle: pickle.dump(cache, handle, protocol=pickle.HIGHEST_PROTOCOL),
            binary=True,
        )


class _FrameBuilder:
    """Collects rows as lists grouped by column layout; builds the DataFrame once at the end."""

    def __init__(self) -> None:
        self.layouts: dict[tuple, list[list]] = {}
        self.text_columns: set[str] = set()
        self.seq = 0

    def _append(self, layout: tuple, row: list) -> None:
        rows = self.layouts.get(layout)
        if rows is None:
            rows = self.layouts[layout] = []
        row.append(self.seq)
        self.seq += 1
        rows.append(row)

    def add_job(self, meta: tuple, config_flat: dict, job: JobData) -> None:
        extra_keys = tuple(job.job_columns)
        extra_values = list(job.job_columns.values())
        if not job.pieces and job.job_columns:
            base = dict(zip(META_COLUMNS, (*meta, job.job_columns_file)))
            row = {**base, **config_flat, **job.job_columns}
            self._append(tuple(row), list(row.values()))
            return
        for piece in job.pieces:
            base = dict(zip(META_COLUMNS, (*meta, piece[1])))
            base.update(config_flat)
            if piece[0] == "table":
                header, rows = piece[2], piece[3]
                self.text_columns.update(header)
                width = len(header)
                if base.keys().isdisjoint(header) and not set(header) & set(extra_keys):
                    layout = (*base, *header, *extra_keys)
                    base_values = list(base.values())
                    for row in rows:
                        if len(row) < width:
                            row = row + [None] * (width - len(row))
                        self._append(layout, base_values + row + extra_values)
                else:
                    for row in rows:
                        merged = {**base, **dict(zip(header, row)), **job.job_columns}
                        self._append(tuple(merged), list(merged.values()))
            else:
                for record in piece[2]:
                    merged = {**base, **record, **job.job_columns}
                    self._append(tuple(merged), list(merged.values()))

    def frame(self) -> pd.DataFrame:
        frames = []
        for layout, rows in self.layouts.items():
            columns = list(zip(*rows))
            frames.append(
                pd.DataFrame({name: list(values) for name, values in zip((*layout, _SEQ), columns)})
            )
        if not frames:
            return pd.DataFrame(columns=list(META_COLUMNS))
        if len(frames) == 1:
            frame = frames[0]
        else:
            frame = pd.concat(frames, ignore_index=True, sort=False).sort_values(_SEQ, kind="stable")
        frame = frame.drop(columns=_SEQ).reset_index(drop=True)
        return _infer_numbers(frame, self.text_columns)


def _infer_numbers(frame: pd.DataFrame, columns: set[str]) -> pd.DataFrame:
    """CSV fields arrive as text: convert columns whose every non-empty value is a number (like read_csv)."""
    converted = {}
    for column in columns:
        if column not in frame.columns or pd.api.types.is_numeric_dtype(frame[column]):
            continue
        values = frame[column].replace("", None)
        try:
            converted[column] = pd.to_numeric(values)
        except (ValueError, TypeError):
            continue
    return frame.assign(**converted) if converted else frame
