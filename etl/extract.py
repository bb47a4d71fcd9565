"""Extraction: walk the job folders of a results tree, run the matching extractor per file, build a frame.

The parts: etl.extract_walk (which job folders and files there are, in order), etl.extract_job (one job's
files → rows), etl.extract_frame (rows → frame), etl.extract_cache (the cache file per experiment); here
the walk of one experiment that ties them together (_ExperimentWalk) and Extraction over many.

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
import time
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import is_numeric_dtype

from etl.adaptive_columns import read_summary, with_adaptive_columns
from etl.extract_cache import (
    ExtractionCache,
    ExtractionCacheStore,
    RunRecord,
    cache_signature,
    worth_saving,
)
from etl.extract_frame import JOB, FrameBuilder, combine
from etl.extract_job import FileMatcher, extract_job
from etl.extract_walk import JobFolder, JobWalker, RunFolder, has_runs
from etl.pipeline import StepSpec
from etl.stamps import RACY_NS, latest_mtime
from etl.steps.base import Extractor, Lineage, is_builtin
from etl.steps.extractors import META_COLUMNS, EtlWarning


@dataclass(frozen=True)
class ExperimentSource:
    """One experiment folder of one suite result folder."""

    suite_name: str
    suite_id: Any
    suite_dir: Path
    exp_name: str
    factor_columns: tuple[str, ...] = ()
    # (host type, number of hosts) from the design: lets the walk skip listing folders
    # (see etl.extract_walk.Listings).
    host_types: tuple[tuple[str, int], ...] = ()

    def has_results(self) -> bool:
        exp_dir = self.suite_dir / self.exp_name
        return exp_dir.is_dir() and has_runs(str(exp_dir))


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
    lineage: Lineage | None = None


class Extraction:
    """Runs a pipeline's extractors over experiment folders."""

    def __init__(
        self, pipeline: str, extractors: Iterable[StepSpec[Extractor]], cache_dir: Path | None = None
    ) -> None:
        self.pipeline = pipeline
        self.extractors = tuple(extractors)
        self.matcher = FileMatcher(pipeline, self.extractors)
        self.signature = cache_signature(self.extractors)
        # Custom extractors may read more than their own file; only built-ins are cached. The same built-in
        # extractors over the same folders give the same frame: pipelines may share it.
        self.shareable = all(is_builtin(type(spec.step)) for spec in self.extractors)
        self.cache = (
            ExtractionCacheStore(cache_dir / f"extract-{self.signature}")
            if self.shareable and cache_dir
            else None
        )

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
                    tokens.append((str(source.suite_dir), source.exp_name, *result.lineage[0]))
                    ids = result.lineage[1]
                    row_ids.append(np.where(ids < 0, -1, ids + (index << 40)))
                notes.extend(result.warnings)
                jobs += result.jobs
                jobs_read += result.jobs_read
        if self.matcher.unmatched:
            raise self.matcher.unmatched_error()
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
        store = self.cache
        old = store.get(source.suite_dir, source.exp_name) if store is not None and use_cache else None
        walk = _ExperimentWalk(source, old or ExtractionCache(), self.matcher)
        walk.walk()
        if self.matcher.unmatched:
            # The pipeline fails (see run) once every experiment is walked; nothing of this walk is kept.
            return ExtractionResult(pd.DataFrame(), [], walk.jobs, walk.jobs_read)
        frame = walk.frame()
        if frame is None:  # a cached number column got a text value: its cached rows need their text again
            return self._run_experiment(source, use_cache=False)
        lineage = None
        if store is not None:
            saved = walk.save(store, frame)
            lineage = walk.lineage(frame, saved)
        frame = frame.drop(columns=JOB)
        adaptive = read_summary(source.suite_dir / source.exp_name)
        if adaptive is not None:  # not cached: the run's estimates change as reps arrive
            frame = with_adaptive_columns(frame, adaptive[1])
            if lineage is not None:  # rows are the same again only with the same estimates
                lineage = ((*lineage[0], ("adaptive", *adaptive[0])), lineage[1])
        return ExtractionResult(frame, walk.notes, walk.jobs, walk.jobs_read, walk.inputs, lineage)


class _ExperimentWalk:
    """One experiment's extraction: the job walk, the cache's answers for unchanged runs and jobs, the rows of
    the jobs read, and the cache to keep."""

    def __init__(self, source: ExperimentSource, old: ExtractionCache, matcher: FileMatcher) -> None:
        self.source, self.old, self.matcher = source, old, matcher
        self.new = ExtractionCache(generation=old.generation)
        now_ns = time.time_ns()
        self.trusted_before = now_ns - RACY_NS
        root = str(source.suite_dir / source.exp_name)
        self.walker = JobWalker(root, source.exp_name, source.host_types, old, self.new, now_ns, matcher)
        self.builder = FrameBuilder()
        self.notes: list[str] = []
        self.inputs: list[tuple[str, tuple]] = []
        self.order: dict[int, int] = {}  # job id → position in this walk
        self.next_id = old.next_job_id
        self.kept: dict[str, RunRecord] = {}  # unchanged runs, by key
        self.jobs = self.jobs_read = 0
        self._factor_list = list(source.factor_columns)
        self._caught: list[warnings.WarningMessage] = []

    def walk(self) -> None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", EtlWarning)
            self._caught = caught
            stamps, runs = self.walker.runs()
            self.inputs.append(("", stamps))
            for run in runs:
                if run.unchanged and run.record is not None:
                    self._keep(run.key, run.path, run.record)
                else:
                    self._walk_run(run)

    def _keep(self, key: str, path: str, record: RunRecord) -> None:
        self.kept[key] = record
        start = len(self.order)
        self.order.update(zip(record.job_ids, range(start, start + len(record.job_ids))))
        self.notes.extend(record.notes)
        self.jobs += len(record.job_ids)
        self.inputs.append((f"{path}/", record.stamps))

    def _walk_run(self, run: RunFolder) -> None:
        job_keys = []
        for job in self.walker.jobs(run):
            job_keys.append(job.key)
            self._job(job)
        stamps = self.walker.run_stamps(run)
        self.inputs.append((f"{run.path}/", stamps))
        jobs = self.new.jobs
        if latest_mtime(stamps) < self.trusted_before and all(key in jobs for key in job_keys):
            self.new.runs[run.key] = RunRecord(
                stamps,
                tuple(jobs[key][0] for key in job_keys),
                tuple(note for key in job_keys for note in jobs[key][3]),
            )

    def _job(self, job: JobFolder) -> None:
        self.jobs += 1
        cached = self.old.jobs.get(job.key)
        files, stamps = self.walker.job_files(job, cached)
        if cached is not None and cached[1] == stamps and cached[2] == job.config_stamp:
            job_id, job_notes = cached[0], cached[3]
            self.new.jobs[job.key] = cached  # its stamps were old enough to be trusted when it was kept
        else:
            if files is None:  # the same files under another config.json: read them again
                files, stamps = self.walker.content_files(job)
            job_id, job_notes = self._read(job, files)
            if max(stamps[2::3], default=0) < self.trusted_before:
                self.new.jobs[job.key] = (job_id, stamps, job.config_stamp, job_notes)
        self.order[job_id] = len(self.order)
        self.notes.extend(job_notes)

    def _read(self, job: JobFolder, files: list) -> tuple[int, list[str]]:
        """Extract a new or changed job: its new id and the notes its extractors gave."""
        self.jobs_read += 1
        job_id, self.next_id = self.next_id, self.next_id + 1
        seen = len(self._caught)
        self.builder.job_id = job_id
        rows = extract_job(self.matcher, files, job.config_flat, job.key)
        source = self.source
        meta = (
            source.suite_name, source.suite_id, source.exp_name, job.run, job.rep, job.host_type,
            job.host_idx, self._factor_list,
        )
        self.builder.add_job(meta, job.config_flat, rows)
        return job_id, [str(w.message) for w in self._caught[seen:] if issubclass(w.category, EtlWarning)]

    def frame(self) -> pd.DataFrame | None:
        """The experiment's rows in walk order (with the JOB column); None: see combine."""
        self.new.text_columns = self.old.text_columns | self.builder.text_columns
        frame = combine(self.old, self.builder, self.order, self.new.text_columns)
        if frame is not None:
            self.new.numeric = {
                c for c in self.new.text_columns if c in frame.columns and is_numeric_dtype(frame[c])
            }
        return frame

    def save(self, store: ExtractionCacheStore, frame: pd.DataFrame) -> bool:
        """Whether the new cache was saved: not when it is not worth it (see worth_saving) or failed."""
        new = self.new
        if not worth_saving(self.old, new, self.kept, self.jobs, self.jobs_read):
            return False
        new.pack_recorded_runs(self.source.exp_name)
        new.runs.update(self.kept)
        new.next_job_id = self.next_id
        cached_ids = {entry[0] for entry in new.jobs.values()}
        cached_ids.update(job_id for record in new.runs.values() for job_id in record.job_ids)
        new.frame = frame[frame[JOB].isin(cached_ids)]
        return store.put(self.source.suite_dir, self.source.exp_name, new)

    def lineage(self, frame: pd.DataFrame, saved: bool) -> Lineage:
        """The token (the cache's generation) and one job id per row. A job id names the same rows in later
        runs once the cache that holds it is saved (ids are never given out twice after that); ids of jobs
        read now but not saved are given out again next time."""
        row_ids = frame[JOB].to_numpy(dtype=np.int64)
        if not saved and self.builder.job_ids:
            row_ids = np.where(np.isin(row_ids, np.fromiter(self.builder.job_ids, np.int64)), -1, row_ids)
        return (self.new.generation,), row_ids


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
