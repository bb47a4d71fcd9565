"""The extraction cache: per experiment, the extracted frame and what it relied on (see etl.extract).

One signed file per experiment (etl.safecache, the frame through etl.cachecodec) in a folder named after the
extractors' signature, which includes CACHE_VERSION: another version or other extractor options never read
a cache that was not written for them.
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

import pandas as pd

from etl import cachecodec, safecache
from etl.pipeline import StepSpec
from etl.stamps import Stamps, pack
from etl.steps.base import Extractor

CACHE_VERSION = 9  # 9: signed JSON and buffers (etl.safecache) instead of pickle
_CACHE_KIND = f"extract/{CACHE_VERSION}"

# A job folder's cache entry: (job id, stamps of the files read, the config's stamp, the job's notes).
JobEntry = tuple[int, tuple, tuple, list[str]]
# The per-folder entries of the walk: listings (mtime, packed names), configs (stamp, flattened config), jobs.
DirEntries = dict[str, tuple[int, str]]
ConfigEntries = dict[str, tuple[tuple[int, int], dict]]
JobEntries = dict[str, JobEntry]
Tables = tuple[DirEntries, ConfigEntries, JobEntries]
_Entry = TypeVar("_Entry")


def cache_signature(extractors: Iterable[StepSpec[Extractor]]) -> str:
    """Names the cache folder: same version and extractor configs, same cache."""
    text = repr(
        [(spec.name, type(spec.step).__module__, spec.step.model_dump(mode="json")) for spec in extractors]
    )
    return hashlib.sha1(f"{CACHE_VERSION}:{text}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class RunRecord:
    """Everything one run folder's extraction relied on: when all its stamps are unchanged, the run's rows are
    taken from the cached frame without walking it (one stat per entry, nothing else). Its per-folder cache
    entries (listings, configs, job stamps) are kept encoded apart and decoded only when the run changed, for
    the walk that then re-reads only its new or changed jobs."""

    stamps: Stamps  # of paths relative to the run folder: the run folder itself is ""
    job_ids: tuple[int, ...]  # in walk order
    notes: tuple[str, ...]  # of all its jobs, in walk order
    entries: bytes = b""  # (dirs, configs, jobs) of the run's folders, see _packed_entries


@dataclass
class ExtractionCache:
    """One experiment's cached extraction (see etl.extract's docstring)."""

    dirs: DirEntries = field(default_factory=dict)
    configs: ConfigEntries = field(default_factory=dict)
    jobs: JobEntries = field(default_factory=dict)
    runs: dict[str, RunRecord] = field(default_factory=dict)
    next_job_id: int = 0
    # Rows of the cached jobs, CSV text already converted where a column is all numbers (`numeric`).
    frame: pd.DataFrame | None = None
    text_columns: set[str] = field(default_factory=set)
    numeric: set[str] = field(default_factory=set)
    # Job ids mean something only within one generation: a cache started afresh numbers jobs from 0 again.
    generation: str = field(default_factory=lambda: os.urandom(8).hex())

    def restore_run(self, record: RunRecord) -> None:
        """Make a recorded run's per-folder entries available to the walk (the run changed)."""
        dirs, configs, jobs = unpack_entries(record.entries)
        self.dirs.update(dirs)
        self.configs.update(configs)
        self.jobs.update(jobs)

    def pack_recorded_runs(self, prefix: str) -> None:
        """Move the per-folder entries of each run that has a record into the record (see RunRecord)."""
        cut = len(prefix) + 1

        def run_of(key: str) -> str:
            return f"{prefix}/{key[cut:].partition('/')[0]}"

        dirs = _take_runs(self.dirs, run_of, self.runs)
        configs = _take_runs(self.configs, run_of, self.runs)
        jobs = _take_runs(self.jobs, run_of, self.runs)
        for key, record in self.runs.items():
            tables = (dirs.get(key, {}), configs.get(key, {}), jobs.get(key, {}))
            self.runs[key] = replace(record, entries=_packed_entries(tables))


def _take_runs(
    table: dict[str, _Entry], run_of: Callable[[str], str], runs: Container[str]
) -> dict[str, dict[str, _Entry]]:
    """The entries of a table that belong to the given runs, taken out of it, by run."""
    taken: dict[str, dict[str, _Entry]] = {}
    for key in list(table):
        run = run_of(key)
        if run in runs:
            taken.setdefault(run, {})[key] = table.pop(key)
    return taken


def worth_saving(
    old: ExtractionCache, new: ExtractionCache, kept: dict[str, RunRecord], jobs: int, jobs_read: int
) -> bool:
    """Rewriting the whole cache for a few new jobs costs more than reading them again next time."""
    if not old.jobs and not old.runs:
        return jobs > 0
    # Jobs gone from the cache: of runs that changed or went away (read again: counted twice, no matter).
    vanished = len(old.jobs.keys() - new.jobs.keys())
    vanished += sum(len(record.job_ids) for key, record in old.runs.items() if key not in kept)
    return jobs_read + vanished >= max(20, jobs // 50)


def relative_stamps(inputs: dict[str, tuple[int, int]], base: str, names_memo: dict) -> Stamps:
    """Stamps of names relative to `base`; runs with the same names share them, so does the cache file."""
    cut = len(base) + 1
    return pack(((path[cut:], size, mtime) for path, (size, mtime) in inputs.items()), names_memo)


class ExtractionCacheStore:
    """The cache files of one extraction signature: one per experiment of a suite result folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, suite_dir: Path, exp_name: str) -> Path:
        return self.folder / f"{suite_dir.name}__{exp_name}.cache"

    def get(self, suite_dir: Path, exp_name: str) -> ExtractionCache:
        return load(self.path(suite_dir, exp_name))

    def put(self, suite_dir: Path, exp_name: str, cache: ExtractionCache) -> bool:
        return save(self.path(suite_dir, exp_name), cache)


def load(path: Path) -> ExtractionCache:
    """The cache `save` wrote; an empty one when there is none this user wrote for this version (missing,
    torn, edited, foreign: etl.safecache)."""
    found = safecache.read(path, _CACHE_KIND)
    if found is None:
        return ExtractionCache()
    try:
        return _decode(*found)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        return ExtractionCache()


def save(path: Path, cache: ExtractionCache) -> bool:
    """False when the cache could not be written (a value the format does not hold, no key): then no file is
    left either, since an older one must not stand for it."""
    try:
        if safecache.write(path, _CACHE_KIND, *_encode(cache)):
            return True
    except (cachecodec.Unsupported, ValueError):
        pass
    path.unlink(missing_ok=True)
    return False


def _encode(cache: ExtractionCache) -> tuple[dict, list[bytes]]:
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


def _decode(text: memoryview, blobs: list[memoryview]) -> ExtractionCache:
    header = json.loads(text.tobytes())
    stamps = safecache.StampsReader(header["names"], blobs[header["values"]])
    runs = {
        key: RunRecord(stamps.get(names, offset), tuple(job_ids), tuple(notes), bytes(blobs[entries]))
        for key, names, offset, job_ids, notes, entries in header["runs"]
    }
    frame = header["frame"]
    dirs, configs, jobs = _decoded_entries(header["tables"])
    return ExtractionCache(
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


def _packed_entries(tables: Tables) -> bytes:
    """(dirs, configs, jobs) as JSON: their values are tuples of ints, strings and flattened config.json
    values, all of which JSON holds as they are (tuples as lists: see _decoded_entries). Compressed (fast
    level): most of the file otherwise, read and checked by every warm run that decodes only a few."""
    return zlib.compress(safecache.to_json(tables), 1)


def unpack_entries(data: bytes) -> Tables:
    """A run record's (dirs, configs, jobs)."""
    return _decoded_entries(json.loads(zlib.decompress(data)))


def _decoded_entries(tables: list) -> Tables:
    """The tuples back where the walk compares them with tuples it makes."""
    dirs, configs, jobs = tables
    return (
        {key: (mtime, packed) for key, (mtime, packed) in dirs.items()},
        {key: (tuple(stamp), flat) for key, (stamp, flat) in configs.items()},
        {
            key: (job, tuple(stamps), tuple(config), notes)
            for key, (job, stamps, config, notes) in jobs.items()
        },
    )
