"""Extraction: walk the job folders of a results tree, run the matching extractor per file, build a frame.

Speed matters (tens of thousands of small files): file names are matched once per distinct name, config.json
is parsed with json and flattened once per run, CSV files are read with the csv module, rows are
collected as lists per column layout and turned into one DataFrame at the end.

With a cache folder, each experiment's extracted frame is kept together with, per run folder, the size and
mtime of every directory below it and of every file whose content was read. A re-run compares those (one stat
each, nothing else) and takes an unchanged run's rows as they are. A changed or new run is walked: per
directory the listing is kept with the directory's mtime and per job folder the stamps of its files, so the
walk lists only changed directories and re-reads only new or changed job folders.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import re
import sys
import time
import warnings
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from stat import S_ISDIR
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import is_numeric_dtype

from etl import cachecodec, safecache
from etl.errors import EtlDataError
from etl.fileio import DOE_RECORD
from etl.pipeline import StepSpec
from etl.stamps import RACY_NS, Stamps, groups_unchanged, latest_mtime, pack
from etl.steps.base import Extractor, is_builtin
from etl.steps.extractors import META_COLUMNS, EtlWarning

CONFIG_JSON = "config.json"
CACHE_VERSION = 9  # 9: signed JSON and buffers (etl.safecache) instead of pickle
_RUN = re.compile(r"^run_(\d+)$")
_REP = re.compile(r"^rep_(\d+)$")
_HOST = re.compile(r"^host_(\d+)$")
_SEQ = "__doe_row_order__"
_JOB = "__doe_job__"

# What extraction does with a file, decided once per extractor.
_SKIP, _TABLE, _RECORDS, _JOB_COLUMNS = range(4)
# _match's answer for a file name that no extractor claims.
_NO_EXTRACTOR = -1
# How many names of one pattern an error lists.
_NAMES_SHOWN = 5


@dataclass(frozen=True)
class ExperimentSource:
    """One experiment folder of one suite result folder."""

    suite_name: str
    suite_id: Any
    suite_dir: Path
    exp_name: str
    factor_columns: tuple[str, ...] = ()
    # (host type, number of hosts) from the design: lets the walk skip listing folders (see _Walk).
    host_types: tuple[tuple[str, int], ...] = ()

    def has_results(self) -> bool:
        exp_dir = self.suite_dir / self.exp_name
        return exp_dir.is_dir() and any(_RUN.match(e.name) and e.is_dir() for e in os.scandir(exp_dir))


@dataclass
class ExtractionResult:
    frame: pd.DataFrame
    warnings: list[str]
    jobs: int
    jobs_read: int
    # What the result depends on, in groups (prefix, stamps) (etl.stamps): see PipelineOutcome.inputs.
    inputs: list[tuple[str, tuple]] = field(default_factory=list)
    # Where the rows come from: (token, one id per row). Rows with the same token and the same id (>= 0) as a
    # row of an earlier extraction are that row again, value for value (in columns of the same dtype); -1 is a
    # row without such an identity. None: no identities at all (no cache).
    lineage: tuple[tuple, np.ndarray] | None = None


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


def _mode(step: Extractor) -> int:
    if not type(step).reads_content:
        return _SKIP
    if type(step).job_columns:
        return _JOB_COLUMNS
    if type(step).extract_table is not Extractor.extract_table:
        return _TABLE
    return _RECORDS


@dataclass(frozen=True)
class _RunRecord:
    """Everything one run folder's extraction relied on: when all its stamps are unchanged, the run's rows are
    taken from the cached frame without walking it (one stat per entry, nothing else). Its per-folder cache
    entries (listings, configs, job stamps) are kept encoded apart and decoded only when the run changed, for
    the walk that then re-reads only its new or changed jobs."""

    stamps: Stamps  # of paths relative to the run folder: the run folder itself is ""
    job_ids: tuple[int, ...]  # in walk order
    notes: tuple[str, ...]  # of all its jobs, in walk order
    entries: bytes = b""  # (dirs, configs, jobs) of the run's folders, see _packed_entries


@dataclass
class _Cache:
    """One experiment's cached extraction (see the module docstring)."""

    dirs: dict[str, tuple[int, str]] = field(default_factory=dict)
    configs: dict[str, tuple[tuple[int, int], dict]] = field(default_factory=dict)
    jobs: dict[str, tuple[int, tuple, tuple, list[str]]] = field(default_factory=dict)
    runs: dict[str, _RunRecord] = field(default_factory=dict)
    next_job_id: int = 0
    # Rows of the cached jobs, CSV text already converted where a column is all numbers (`numeric`).
    frame: pd.DataFrame | None = None
    text_columns: set[str] = field(default_factory=set)
    numeric: set[str] = field(default_factory=set)
    # Job ids mean something only within one generation: a cache started afresh numbers jobs from 0 again.
    generation: str = field(default_factory=lambda: os.urandom(8).hex())


class _Walk:
    """Directory listings, from the cache when the directory's mtime is unchanged.

    Listing a directory costs several times a stat. For the rep and host-type levels the design says which
    subfolders to expect; when a directory's link count (2 + number of subdirectories) proves there are no
    others, stats of the expected entries replace the listing. Filesystems without such link counts fall back
    to listing."""

    def __init__(self, old: _Cache, new: _Cache, now_ns: int) -> None:
        self.old, self.new, self.now_ns = old, new, now_ns
        self.unchanged = False  # whether the last listing came from the cache
        self.stats: dict[str, os.stat_result] = {}  # stats taken while proving a listing, used once more
        self.inputs: dict[str, tuple[int, int]] = {}  # what the result depends on (ExtractionResult.inputs)
        self._parsed: dict[str, list[tuple[str, bool]]] = {}
        self._numbered: dict[tuple[str, str], list[tuple[int, str]]] = {}

    def stat(self, path: str) -> os.stat_result:
        known = self.stats.pop(path, None)
        return known if known is not None else os.stat(path)

    def packed(
        self, path: str, key: str, expected_dirs: tuple[str, ...] = (), probe_files: tuple[str, ...] = ()
    ) -> str | None:
        """The listing as one string (sorted names, `/` after directories, NUL-separated); None if missing.

        Sets `unchanged` when it came from the cache (the directory's mtime is the cached one). With
        `expected_dirs`, the listing may hold only those and the `probe_files` that exist (see the class)."""
        try:
            stat = self.stats.pop(path, None) or os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            self.unchanged = False
            return None
        mtime = stat.st_mtime_ns
        self.inputs[path] = (stat.st_size, mtime)
        cached = self.old.dirs.get(key)
        self.unchanged = cached is not None and cached[0] == mtime
        if self.unchanged:
            self.new.dirs[key] = cached  # it was old enough to be trusted when it was kept
            return cached[1]
        packed = self._proven(path, stat, expected_dirs, probe_files) if expected_dirs else None
        if packed is None:
            with os.scandir(path) as scan:
                packed = "\0".join(sorted(e.name + "/" if e.is_dir() else e.name for e in scan))
        if self.now_ns - mtime > RACY_NS:
            # One string per directory keeps the cache small and quick to load.
            self.new.dirs[key] = (mtime, packed)
        return packed

    def _proven(
        self, path: str, stat: os.stat_result, expected_dirs: tuple[str, ...], probe_files: tuple[str, ...]
    ) -> str | None:
        if stat.st_nlink != 2 + len(expected_dirs):
            return None
        names = []
        for name in expected_dirs:
            try:
                child = os.stat(f"{path}/{name}")
            except (FileNotFoundError, NotADirectoryError):
                return None
            if not S_ISDIR(child.st_mode):
                return None
            self.stats[f"{path}/{name}"] = child
            names.append(name + "/")
        for name in probe_files:
            try:
                self.stats[f"{path}/{name}"] = os.stat(f"{path}/{name}")
            except (FileNotFoundError, NotADirectoryError):
                continue
            names.append(name)
        return "\0".join(sorted(names))

    def entries(
        self, path: str, key: str, expected_dirs: tuple[str, ...] = (), probe_files: tuple[str, ...] = ()
    ) -> list[tuple[str, bool]]:
        packed = self.packed(path, key, expected_dirs, probe_files)
        if not packed:
            return []
        # Most folders of a level list the same names ("client/", "host_0/"): parse each listing once.
        parsed = self._parsed.get(packed)
        if parsed is None:
            parsed = [(name[:-1], True) if name[-1] == "/" else (name, False) for name in packed.split("\0")]
            self._parsed[packed] = parsed
        return parsed

    def numbered(
        self, path: str, key: str, pattern: re.Pattern, expected_dirs: tuple[str, ...] = ()
    ) -> list[tuple[int, str]]:
        packed = self.packed(path, key, expected_dirs)
        if not packed:
            return []
        memo_key = (packed, pattern.pattern)
        found = self._numbered.get(memo_key)
        if found is None:
            found = []
            for name in packed.split("\0"):
                match = pattern.match(name[:-1]) if name[-1] == "/" else None
                if match:
                    found.append((int(match.group(1)), name[:-1]))
            found.sort()
            self._numbered[memo_key] = found
        return found

    def files(self, path: str, key: str, prefix: str = "") -> list[tuple[str, str, str]]:
        """(relative path, name, path) of every file below a job folder, sorted by relative path."""
        found = []
        for name, is_dir in self.entries(path, key):
            full = f"{path}/{name}"
            if is_dir:
                found.extend(self.files(full, f"{key}/{name}", f"{prefix}{name}/"))
            else:
                found.append((prefix + name, name, full))
        found.sort()
        return found


class _Unmatched:
    """File names that no extractor claims, counted over the whole walk."""

    def __init__(self) -> None:
        self.files: dict[str, list] = {}  # name -> [number of files, the first one's path]

    def add(self, name: str, display: str) -> None:
        entry = self.files.get(name)
        if entry is None:
            self.files[name] = [1, display]
        else:
            entry[0] += 1

    def error(self, pipeline: str, extractors: tuple[StepSpec, ...]) -> EtlDataError:
        """One error naming every file name, grouped by pattern (digits stand for any number), with the
        extractors there are and an IgnoreExtractor that would take them."""
        groups: dict[str, list[str]] = {}
        for name in self.files:
            groups.setdefault(re.sub(r"\d+", "<n>", name), []).append(name)
        parts, regexes = [], []
        for pattern, names in groups.items():
            count = sum(self.files[name][0] for name in names)
            example = self.files[names[0]][1]
            if len(names) == 1:
                parts.append(f"{names[0]} ({count} files, e.g. {example})")
            else:
                shown = ", ".join(names[:_NAMES_SHOWN]) + (", ..." if len(names) > _NAMES_SHOWN else "")
                parts.append(f"{pattern} ({len(names)} names: {shown}; {count} files, e.g. {example})")
            regexes.append("^" + r"\d+".join(re.escape(piece) for piece in pattern.split("<n>")) + "$")
        candidates = ", ".join(f"{spec.name} {list(spec.step.file_regex)}" for spec in extractors)
        return EtlDataError(
            f"no extractor matches these file names: {'; '.join(parts)}; candidates: {candidates}; "
            f"add an extractor for them or IgnoreExtractor with file_regex {regexes}",
            pipeline=pipeline,
        )


class Extraction:
    """Runs a pipeline's extractors over experiment folders."""

    def __init__(self, pipeline: str, extractors: Iterable[StepSpec], cache_dir: Path | None = None) -> None:
        self.pipeline = pipeline
        self.extractors = tuple(extractors)
        self.patterns = [tuple(re.compile(r) for r in spec.step.file_regex) for spec in self.extractors]
        self.modes = [_mode(spec.step) for spec in self.extractors]
        self._match_memo: dict[str, int | None] = {}
        self.unmatched = _Unmatched()
        # Custom extractors may read more than their own file; only built-ins are cached.
        cacheable = all(is_builtin(type(spec.step)) for spec in self.extractors)
        self.signature = self._signature()
        # Same built-in extractors over the same folders give the same frame: pipelines may share it.
        self.shareable = cacheable
        self.cache_dir = cache_dir / f"extract-{self.signature}" if cacheable and cache_dir else None

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
        """The index of the extractor that reads a file of this name; None: nothing to read. A name no extractor
        claims is noted (see _Unmatched) and read by none, so that the walk goes on and one error names all."""
        if name not in self._match_memo:
            self._match_memo[name] = self._extractor_for(name, display)
        index = self._match_memo[name]
        if index == _NO_EXTRACTOR:
            self.unmatched.add(name, display)
            return None
        return index

    def _extractor_for(self, name: str, display: str) -> int | None:
        if name.startswith("."):
            # Hidden files are not the job's results; doe's record goes only to the extractors made for it.
            claims = [i for i, spec in enumerate(self.extractors) if type(spec.step).reads_doe_record]
            return claims[0] if name == DOE_RECORD and claims else None
        hits = [i for i, patterns in enumerate(self.patterns) if any(p.match(name) for p in patterns)]
        if len(hits) > 1:
            names = ", ".join(
                f"{self.extractors[i].name} {list(self.extractors[i].step.file_regex)}" for i in hits
            )
            raise EtlDataError(f"{display} matches multiple extractors: {names}", pipeline=self.pipeline)
        if not hits:
            return _NO_EXTRACTOR
        return None if self.modes[hits[0]] == _SKIP else hits[0]

    def _content_files(self, walk: _Walk, files: list, job_key: str) -> tuple[list, tuple]:
        """The files whose content matters, with their extractor and stamp (size, mtime)."""
        chosen, stamps = [], []
        for rel, name, path in files:
            index = self._match(name, f"{job_key}/{rel}")
            if index is None:
                continue
            stat = os.stat(path)
            walk.inputs[path] = (stat.st_size, stat.st_mtime_ns)
            chosen.append((rel, path, index, stat.st_size))
            stamps.extend((sys.intern(rel), stat.st_size, stat.st_mtime_ns))
        return chosen, tuple(stamps)

    @staticmethod
    def _restamp(walk: _Walk, host_path: str, job_key: str, cached: tuple | None) -> tuple | None:
        """Quick path for an unchanged job folder (same listing, no subfolders): stat only the files whose
        content was read last time. None means: take the full path."""
        if cached is None:
            return None
        packed = walk.packed(host_path, job_key)
        if not walk.unchanged or "/" in packed:
            return None
        stamps = []
        for rel in cached[1][::3]:
            path = f"{host_path}/{rel}"
            try:
                stat = os.stat(path)
            except FileNotFoundError:
                return None
            walk.inputs[path] = (stat.st_size, stat.st_mtime_ns)
            stamps.extend((rel, stat.st_size, stat.st_mtime_ns))
        return tuple(stamps)

    def _extract_job(
        self, chosen: list, config_flat: dict, job_key: str, builder: _FrameBuilder, meta: tuple
    ) -> None:
        pieces: list[tuple] = []
        job_columns: dict = {}
        job_columns_file = None
        for rel, path, index, size in chosen:
            spec = self.extractors[index]
            step = spec.step
            mode = self.modes[index]
            if size == 0 and type(step).empty_gives_nothing:
                continue
            try:
                if mode == _TABLE:
                    header, rows = step.extract_table(path, spec.options)
                    if rows:
                        pieces.append((_TABLE, rel, list(header), rows))
                    continue
                records = step.extract(path, {**spec.options, "$config_flat$": config_flat})
                if mode == _JOB_COLUMNS:
                    for record in records:
                        job_columns.update(record)
                    job_columns_file = rel
                elif records:
                    pieces.append((_RECORDS, rel, records))
            except EtlDataError as error:
                raise EtlDataError(
                    f"{job_key}/{rel}: {error.detail}", pipeline=self.pipeline, step=spec.path
                ) from None
            except Exception as error:  # noqa: BLE001 - any extractor failure is one line naming the file
                raise EtlDataError(
                    f"{job_key}/{rel}: {type(error).__name__}: {error}",
                    pipeline=self.pipeline,
                    step=spec.path,
                ) from None
        builder.add_job(meta, config_flat, pieces, job_columns, job_columns_file)

    # -- the walk -------------------------------------------------------------------------------------------
    def run(self, sources: Iterable[ExperimentSource]) -> ExtractionResult:
        frames, notes = [], []
        inputs: list[tuple[str, tuple]] = []
        jobs = jobs_read = 0
        tokens: list | None = []
        row_ids = []
        with _collector_paused():
            for index, source in enumerate(sources):
                result = self._run_experiment(source)
                inputs.extend(result.inputs)
                frames.append(result.frame)
                if result.lineage is None or tokens is None:
                    tokens = None
                else:
                    # Job ids are numbered per experiment: its position in the sources tells them apart.
                    tokens.append((str(source.suite_dir), source.exp_name, result.lineage[0]))
                    ids = result.lineage[1]
                    row_ids.append(np.where(ids < 0, -1, ids + (index << 40)))
                notes.extend(result.warnings)
                jobs += result.jobs
                jobs_read += result.jobs_read
        if self.unmatched.files:
            raise self.unmatched.error(self.pipeline, self.extractors)
        frames = [f for f in frames if len(f)]
        if not frames:
            frame = pd.DataFrame(columns=list(META_COLUMNS))
        elif len(frames) == 1:
            frame = frames[0]
        else:
            frame = pd.concat(frames, ignore_index=True, sort=False)
        lineage = None
        if tokens is not None:
            lineage = (tuple(tokens), np.concatenate(row_ids) if row_ids else np.empty(0, dtype=np.int64))
        return ExtractionResult(frame, notes, jobs, jobs_read, inputs, lineage)

    def _run_experiment(self, source: ExperimentSource, use_cache: bool = True) -> ExtractionResult:
        cache_file = (
            self.cache_dir / f"{source.suite_dir.name}__{source.exp_name}.cache" if self.cache_dir else None
        )
        old = self._load_cache(cache_file) if use_cache else _Cache()
        new = _Cache(generation=old.generation)
        now_ns = time.time_ns()
        walk = _Walk(old, new, now_ns)
        trusted_before = now_ns - RACY_NS
        builder = _FrameBuilder()
        notes: list[str] = []
        order: dict[int, int] = {}  # job id → position in this walk
        next_id = old.next_job_id
        kept: dict[str, _RunRecord] = {}  # unchanged runs, by key
        jobs = jobs_read = 0
        factor_list = list(source.factor_columns)
        host_dirs = {name: tuple(f"host_{i}" for i in range(n)) for name, n in source.host_types}
        root = str(source.suite_dir / source.exp_name)
        prefix = source.exp_name
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", EtlWarning)
            runs = walk.numbered(root, prefix, _RUN)
            inputs = [("", pack((path, *stamp) for path, stamp in walk.inputs.items()))]
            names_memo: dict = {}  # runs of the same layout share one names tuple
            recorded = [
                (f"{root}/{name}", old.runs[f"{prefix}/{name}"])
                for _, name in runs
                if f"{prefix}/{name}" in old.runs
            ]
            unchanged_runs = {
                path
                for (path, _), same in zip(
                    recorded, groups_unchanged([(path, record.stamps) for path, record in recorded])
                )
                if same
            }
            for run, run_name in runs:
                run_path, run_key = f"{root}/{run_name}", f"{prefix}/{run_name}"
                record = old.runs.get(run_key)
                if record is not None and run_path in unchanged_runs:
                    kept[run_key] = record
                    order.update(zip(record.job_ids, range(len(order), len(order) + len(record.job_ids))))
                    notes.extend(record.notes)
                    jobs += len(record.job_ids)
                    inputs.append((f"{run_path}/", record.stamps))
                    continue
                if record is not None:  # changed: its folders' entries tell which jobs to read again
                    for table, entries in zip((old.dirs, old.configs, old.jobs), _entries(record.entries)):
                        table.update(entries)
                walk.inputs = {}
                job_keys: list[str] = []
                run_config: dict = {}
                for rep, rep_name in walk.numbered(run_path, run_key, _REP):
                    rep_path, rep_key = f"{run_path}/{rep_name}", f"{run_key}/{rep_name}"
                    listing = walk.entries(rep_path, rep_key, tuple(host_dirs), (CONFIG_JSON,))
                    if (CONFIG_JSON, False) not in listing:
                        continue
                    if walk.unchanged and rep_key in old.configs:
                        # config.json is written once, before the job: unchanged folder, unchanged file.
                        config_stamp, config_flat = new.configs[rep_key] = old.configs[rep_key]
                    else:
                        config_stamp, config_flat = self._config(
                            walk, rep_path, rep_key, old, new, run_config
                        )
                    for host_type, is_dir in listing:
                        if not is_dir:
                            continue
                        type_path, type_key = f"{rep_path}/{host_type}", f"{rep_key}/{host_type}"
                        expected_hosts = host_dirs.get(host_type, ())
                        for host_idx, host_name in walk.numbered(type_path, type_key, _HOST, expected_hosts):
                            jobs += 1
                            job_key = f"{type_key}/{host_name}"
                            job_keys.append(job_key)
                            host_path = f"{type_path}/{host_name}"
                            cached = old.jobs.get(job_key)
                            stamps = self._restamp(walk, host_path, job_key, cached)
                            if stamps is None or stamps != cached[1]:
                                chosen, stamps = self._content_files(
                                    walk, walk.files(host_path, job_key), job_key
                                )
                            unchanged = (
                                cached is not None and cached[1] == stamps and cached[2] == config_stamp
                            )
                            if unchanged:
                                job_id = cached[0]
                                job_notes = cached[3]
                            else:
                                jobs_read += 1
                                job_id, next_id = next_id, next_id + 1
                                seen = len(caught)
                                builder.job_id = job_id
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
                                self._extract_job(chosen, config_flat, job_key, builder, meta)
                                job_notes = [
                                    str(w.message)
                                    for w in caught[seen:]
                                    if issubclass(w.category, EtlWarning)
                                ]
                            order[job_id] = len(order)
                            notes.extend(job_notes)
                            if unchanged:  # its stamps were old enough to be trusted when it was kept
                                new.jobs[job_key] = cached
                            elif max(stamps[2::3], default=0) < trusted_before:
                                new.jobs[job_key] = (job_id, stamps, config_stamp, job_notes)
                stamps = _relative_stamps(walk.inputs, run_path, names_memo)
                inputs.append((f"{run_path}/", stamps))
                if latest_mtime(stamps) < trusted_before and all(key in new.jobs for key in job_keys):
                    new.runs[run_key] = _RunRecord(
                        stamps,
                        tuple(new.jobs[key][0] for key in job_keys),
                        tuple(note for key in job_keys for note in new.jobs[key][3]),
                    )
        if self.unmatched.files:
            # The pipeline fails (see run) once every experiment is walked; nothing of this walk is kept.
            return ExtractionResult(pd.DataFrame(), [], jobs, jobs_read)
        new.text_columns = old.text_columns | builder.text_columns
        frame = self._combine(old, builder, order, new.text_columns)
        if frame is None:  # a cached number column got a text value: its cached rows need their text again
            return self._run_experiment(source, use_cache=False)
        new.numeric = {c for c in new.text_columns if c in frame.columns and is_numeric_dtype(frame[c])}
        saved = cache_file is not None and self._worth_saving(old, new, kept, jobs, jobs_read)
        if saved:
            _pack_recorded_runs(new, prefix)
            new.runs.update(kept)
            new.next_job_id = next_id
            cached_ids = {entry[0] for entry in new.jobs.values()}
            cached_ids.update(job_id for record in new.runs.values() for job_id in record.job_ids)
            new.frame = frame[frame[_JOB].isin(cached_ids)]
            saved = self._save_cache(cache_file, new)
        lineage = None
        if cache_file is not None:
            # A job id names the same rows in later runs once the cache that holds it is saved (ids are never
            # given out twice after that); ids of jobs read now but not saved are given out again next time.
            row_ids = frame[_JOB].to_numpy(dtype=np.int64)
            if not saved and builder.job_ids:
                row_ids = np.where(np.isin(row_ids, np.fromiter(builder.job_ids, np.int64)), -1, row_ids)
            lineage = (new.generation, row_ids)
        return ExtractionResult(frame.drop(columns=_JOB), notes, jobs, jobs_read, inputs, lineage)

    def _combine(
        self, old: _Cache, builder: _FrameBuilder, order: dict[int, int], text_columns: set[str]
    ) -> pd.DataFrame | None:
        """Rows of unchanged jobs from the cached frame plus the rows just extracted, in walk order, with
        CSV text converted to numbers exactly as `_infer_numbers` would on the whole frame; None when that
        needs text the cache no longer has."""
        fresh = builder.frame()
        kept = None
        if old.frame is not None and len(old.frame):
            wanted = old.frame[_JOB].isin(order.keys() - builder.job_ids)
            kept = old.frame if wanted.all() else old.frame[wanted]
        if kept is None or not len(kept):
            return _infer_numbers(fresh, text_columns)
        converted = {}
        for column in text_columns & set(fresh.columns):
            if column in kept.columns and column not in old.numeric:
                continue  # text in the cached rows: the column stays text (unless rows left, see below)
            values = _as_numbers(fresh[column])
            if values is not None:
                converted[column] = values
            elif column in old.numeric:
                return None
        fresh = fresh.assign(**converted) if converted else fresh
        combined = kept if not len(fresh) else pd.concat([kept, fresh], ignore_index=True, sort=False)
        if len(kept) < len(old.frame):
            # Rows left: a text column may now hold only numbers.
            combined = _infer_numbers(combined, {c for c in text_columns if c not in old.numeric})
        # The kept rows keep their relative (walk) order, and so do the fresh rows: the two parts are in walk
        # order when the fresh jobs are the last ones walked (new runs at the end, the usual case).
        fresh_jobs = builder.job_ids
        if min(map(order.__getitem__, fresh_jobs), default=0) < len(order) - len(fresh_jobs):
            combined = combined.iloc[combined[_JOB].map(order).argsort(kind="stable")]
        return combined.reset_index(drop=True)

    def _config(
        self, walk: _Walk, rep_path: str, rep_key: str, old: _Cache, new: _Cache, run_config: dict
    ) -> tuple:
        """The rep's flattened config.json. All reps of a run share one run config, so a file of the same
        size as the run's first one is not read again."""
        path = f"{rep_path}/{CONFIG_JSON}"
        stat = walk.stat(path)
        # Not among the walk's inputs: config.json is written once, before the job; the rep folder's mtime
        # stands for it (a re-run reads it again only when that folder changed).
        stamp = (stat.st_size, stat.st_mtime_ns)
        cached = old.configs.get(rep_key)
        if cached is not None and cached[0] == stamp:
            flat = cached[1]
        elif run_config.get("size") == stat.st_size:
            flat = run_config["flat"]
        else:
            with open(path, "rb") as handle:
                text = handle.read()
            try:
                config = json.loads(text)
            except ValueError as error:
                raise EtlDataError(
                    f"{rep_key}/{CONFIG_JSON} is not valid JSON: {error}", pipeline=self.pipeline
                ) from None
            flat = flatten_run_config(config) if isinstance(config, dict) else {}
        if "size" not in run_config:
            run_config.update(size=stat.st_size, flat=flat)
        new.configs[rep_key] = (stamp, flat)
        return stamp, flat

    # -- cache ----------------------------------------------------------------------------------------------
    @staticmethod
    def _worth_saving(
        old: _Cache, new: _Cache, kept: dict[str, _RunRecord], jobs: int, jobs_read: int
    ) -> bool:
        """Rewriting the whole cache for a few new jobs costs more than reading them again next time."""
        if not old.jobs and not old.runs:
            return jobs > 0
        # Jobs gone from the cache: of runs that changed or went away (read again: counted twice, no matter).
        vanished = len(old.jobs.keys() - new.jobs.keys())
        vanished += sum(len(record.job_ids) for key, record in old.runs.items() if key not in kept)
        return jobs_read + vanished >= max(20, jobs // 50)

    @staticmethod
    def _load_cache(path: Path | None) -> _Cache:
        """The cache `_save_cache` wrote; an empty one when there is none this user wrote for this version
        (missing, torn, edited, foreign: etl.safecache)."""
        found = safecache.read(path, _CACHE_KIND) if path is not None else None
        if found is None:
            return _Cache()
        try:
            return _decode_cache(*found)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            return _Cache()

    @staticmethod
    def _save_cache(path: Path, cache: _Cache) -> bool:
        """False when the cache could not be written (a value the format does not hold, no key): then no
        file is left either, since an older one must not stand for it."""
        try:
            if safecache.write(path, _CACHE_KIND, *_encode_cache(cache)):
                return True
        except (cachecodec.Unsupported, ValueError):
            pass
        path.unlink(missing_ok=True)
        return False


_CACHE_KIND = f"extract/{CACHE_VERSION}"


def _encode_cache(cache: _Cache) -> tuple[dict, list[bytes]]:
    """The header (plain JSON) and blobs of a cache file: the runs' stamps as one table (etl.safecache),
    each run's entries as their own JSON blob (decoded only when the run changed), the frame with
    etl.cachecodec in a blob of its own (tagged JSON, decoded apart from the plain JSON here)."""
    blobs: list[bytes] = []
    stamps = safecache.StampsTable()
    runs = []
    for key, record in cache.runs.items():
        runs.append([key, *stamps.add(record.stamps), record.job_ids, record.notes, len(blobs)])
        blobs.append(record.entries)
    frame = None
    if cache.frame is not None:
        encoded = cachecodec.encode(cache.frame, blobs)  # adds the columns' buffers to the blobs
        frame = len(blobs)
        blobs.append(safecache.to_json(encoded))
    blobs.append(stamps.values_blob())
    return {
        "generation": cache.generation,
        "next_job_id": cache.next_job_id,
        "text_columns": sorted(cache.text_columns),
        "numeric": sorted(cache.numeric),
        "tables": [cache.dirs, cache.configs, cache.jobs],
        "names": stamps.names_list(),
        "values": len(blobs) - 1,
        "runs": runs,
        "frame": frame,
    }, blobs


def _decode_cache(text: memoryview, blobs: list[memoryview]) -> _Cache:
    header = json.loads(text.tobytes())
    stamps = safecache.StampsReader(header["names"], blobs[header["values"]])
    runs = {
        key: _RunRecord(stamps.get(names, offset), tuple(job_ids), tuple(notes), bytes(blobs[entries]))
        for key, names, offset, job_ids, notes, entries in header["runs"]
    }
    frame = header["frame"]
    dirs, configs, jobs = _decoded_entries(header["tables"])
    return _Cache(
        dirs=dirs,
        configs=configs,
        jobs=jobs,
        runs=runs,
        next_job_id=int(header["next_job_id"]),
        frame=None if frame is None else cachecodec.loads(blobs[frame], blobs),
        text_columns=set(header["text_columns"]),
        numeric=set(header["numeric"]),
        generation=str(header["generation"]),
    )


def _packed_entries(tables: tuple[dict, dict, dict]) -> bytes:
    """(dirs, configs, jobs) as JSON: their values are tuples of ints, strings and flattened config.json
    values, all of which JSON holds as they are (tuples as lists: see _decoded_entries). Compressed (fast
    level): most of the file otherwise, read and checked by every warm run that decodes only a few."""
    return zlib.compress(safecache.to_json(tables), 1)


def _entries(data: bytes) -> tuple[dict, dict, dict]:
    return _decoded_entries(json.loads(zlib.decompress(data)))


def _decoded_entries(tables: list) -> tuple[dict, dict, dict]:
    """The tuples back where the walk compares them with tuples it makes."""
    dirs, configs, jobs = tables
    return (
        {key: (mtime, packed) for key, (mtime, packed) in dirs.items()},
        {key: (tuple(stamp), flat) for key, (stamp, flat) in configs.items()},
        {key: (job, tuple(stamps), tuple(config), notes) for key, (job, stamps, config, notes) in jobs.items()},
    )


def _pack_recorded_runs(cache: _Cache, prefix: str) -> None:
    """Move the per-folder entries of each run that has a record into the record (see _RunRecord)."""
    cut = len(prefix) + 1
    moved: dict[str, tuple[dict, dict, dict]] = {key: ({}, {}, {}) for key in cache.runs}
    for index, table in enumerate((cache.dirs, cache.configs, cache.jobs)):
        for key in list(table):
            run_tables = moved.get(f"{prefix}/{key[cut:].partition('/')[0]}")
            if run_tables is not None:
                run_tables[index][key] = table.pop(key)
    for key, tables in moved.items():
        cache.runs[key] = replace(cache.runs[key], entries=_packed_entries(tables))


def _relative_stamps(inputs: dict[str, tuple[int, int]], base: str, names_memo: dict) -> Stamps:
    """Stamps of names relative to `base`; runs with the same names share them, so does the cache file."""
    cut = len(base) + 1
    return pack(((path[cut:], size, mtime) for path, (size, mtime) in inputs.items()), names_memo)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Extraction allocates hundreds of thousands of small objects (rows, cached stamps and configs) that form
    no reference cycles, yet they trigger full cyclic collections that each traverse all of them: about a
    fifth of a warm run's time in a new process. Reference counting still frees them; cycles made meanwhile
    wait for the collector's next run."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class _FrameBuilder:
    """Collects rows as lists grouped by column layout; builds the DataFrame once at the end."""

    def __init__(self) -> None:
        self.layouts: dict[tuple, list[list]] = {}
        self.text_columns: set[str] = set()
        self.job_ids: set[int] = set()
        self._table_layouts: dict[tuple, tuple] = {}
        self.job_id = -1
        self.seq = 0

    def _append(self, layout: tuple, row: list) -> None:
        rows = self.layouts.get(layout)
        if rows is None:
            rows = self.layouts[layout] = []
        row.append(self.job_id)
        row.append(self.seq)
        self.seq += 1
        rows.append(row)

    def add_job(
        self, meta: tuple, config_flat: dict, pieces: list, job_columns: dict, job_file: str | None
    ) -> None:
        self.job_ids.add(self.job_id)
        if not pieces and job_columns:
            row = {**dict(zip(META_COLUMNS, (*meta, job_file))), **config_flat, **job_columns}
            self._append(tuple(row), list(row.values()))
            return
        for piece in pieces:
            if piece[0] == _TABLE:
                self._add_table(meta, config_flat, piece[1], piece[2], piece[3], job_columns)
                continue
            base = dict(zip(META_COLUMNS, (*meta, piece[1])))
            base.update(config_flat)
            for record in piece[2]:
                if any(isinstance(value, dict) for value in record.values()):
                    record = flatten(record)
                merged = {**base, **record, **job_columns}
                self._append(tuple(merged), list(merged.values()))

    def _add_table(
        self, meta: tuple, config_flat: dict, rel: str, header: list, rows: list, job_columns: dict
    ) -> None:
        # The column layout depends only on the config keys, the header and the job columns: compute it once.
        layout_key = (tuple(config_flat), tuple(header), tuple(job_columns))
        layout = self._table_layouts.get(layout_key)
        if layout is None:
            self.text_columns.update(header)
            names = (*META_COLUMNS, *config_flat)
            clash = not set(names).isdisjoint(header) or not set(job_columns).isdisjoint((*names, *header))
            layout = None if clash else (*names, *header, *job_columns)
            self._table_layouts[layout_key] = layout or ()
        if not layout:
            base = {**dict(zip(META_COLUMNS, (*meta, rel))), **config_flat}
            for row in rows:
                merged = {**base, **dict(zip(header, row)), **job_columns}
                self._append(tuple(merged), list(merged.values()))
            return
        base_values = [*meta, rel, *config_flat.values()]
        extra_values = [*job_columns.values(), self.job_id]
        width = len(header)
        target = self.layouts.get(layout)
        if target is None:
            target = self.layouts[layout] = []
        for row in rows:
            if len(row) < width:
                row = row + [None] * (width - len(row))
            target.append(base_values + row + extra_values + [self.seq])
            self.seq += 1

    def frame(self) -> pd.DataFrame:
        frames = []
        for layout, rows in self.layouts.items():
            columns = list(zip(*rows))
            frames.append(
                pd.DataFrame({name: list(values) for name, values in zip((*layout, _JOB, _SEQ), columns)})
            )
        if not frames:
            return pd.DataFrame(columns=[*META_COLUMNS, _JOB])
        if len(frames) == 1:
            frame = frames[0]
        else:
            frame = pd.concat(frames, ignore_index=True, sort=False).sort_values(_SEQ, kind="stable")
        return frame.drop(columns=_SEQ).reset_index(drop=True)


def _as_numbers(column: pd.Series) -> pd.Series | None:
    if is_numeric_dtype(column):
        return column
    try:
        return pd.to_numeric(column.replace("", None))
    except (ValueError, TypeError):
        return None


def _infer_numbers(frame: pd.DataFrame, columns: set[str]) -> pd.DataFrame:
    """CSV fields arrive as text: convert columns whose every non-empty value is a number (like read_csv)."""
    converted = {}
    for column in columns:
        if column in frame.columns and not is_numeric_dtype(frame[column]):
            values = _as_numbers(frame[column])
            if values is not None:
                converted[column] = values
    return frame.assign(**converted) if converted else frame
