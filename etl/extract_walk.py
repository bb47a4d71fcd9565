"""Which job folders and files an experiment folder holds, in walk order (run, rep, host type, host), with
each rep's flattened config.json and what the answers relied on (see etl.extract's docstring).

Listings come from the cache when a directory's mtime is unchanged (Listings); an unchanged job folder costs a
stat per file read last time (JobWalker.job_files)."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from stat import S_ISDIR

from etl.errors import EtlDataError
from etl.extract_cache import ExtractionCache, JobEntry, RunRecord, relative_stamps
from etl.extract_job import ContentFile, FileMatcher, flatten_run_config
from etl.stamps import RACY_NS, Stamps, groups_unchanged, pack

CONFIG_JSON = "config.json"
_RUN = re.compile(r"^run_(\d+)$")
_REP = re.compile(r"^rep_(\d+)$")
_HOST = re.compile(r"^host_(\d+)$")


def has_runs(exp_dir: str) -> bool:
    return any(_RUN.match(e.name) and e.is_dir() for e in os.scandir(exp_dir))


class Listings:
    """Directory listings, from the cache when the directory's mtime is unchanged.

    Listing a directory costs several times a stat. For the rep and host-type levels the design says which
    subfolders to expect; when a directory's link count (2 + number of subdirectories) proves there are no
    others, stats of the expected entries replace the listing. Filesystems without such link counts fall back
    to listing."""

    def __init__(self, old: ExtractionCache, new: ExtractionCache, now_ns: int) -> None:
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
        if cached is not None and self.unchanged:
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


@dataclass(frozen=True)
class RunFolder:
    number: int
    path: str
    key: str  # relative to the suite folder: exp/run_N
    record: RunRecord | None  # the cached one
    unchanged: bool  # all the record's stamps are the same: its rows are the cached ones


@dataclass(frozen=True, slots=True)
class JobFolder:
    run: int
    rep: int
    host_type: str
    host_idx: int
    path: str
    key: str  # relative to the suite folder: exp/run_N/rep_R/type/host_H
    config_stamp: tuple[int, int]  # (size, mtime) of the rep's config.json
    config_flat: dict


class JobWalker:
    """The run and job folders of one experiment folder and the files of each job whose content an extractor
    reads. Answers from `old` where the stamps say nothing changed; the entries to keep go to `new`."""

    def __init__(
        self, root: str, prefix: str, host_types: tuple[tuple[str, int], ...], old: ExtractionCache,
        new: ExtractionCache, now_ns: int, matcher: FileMatcher,
    ) -> None:
        self.root, self.prefix = root, prefix
        self.old, self.new = old, new
        self.matcher = matcher
        self.listings = Listings(old, new, now_ns)
        self._host_dirs = {name: tuple(f"host_{i}" for i in range(n)) for name, n in host_types}
        self._names_memo: dict = {}  # runs of the same layout share one names tuple

    def runs(self) -> tuple[Stamps, list[RunFolder]]:
        """The stamps of the experiment folder and its run folders in order, each with its cached record and
        whether that record still holds (all its stamps checked at once: etl.stamps.groups_unchanged)."""
        numbered = self.listings.numbered(self.root, self.prefix, _RUN)
        stamps = pack((path, *stamp) for path, stamp in self.listings.inputs.items())
        folders = [
            (number, f"{self.root}/{name}", f"{self.prefix}/{name}") for number, name in numbered
        ]
        records = [self.old.runs.get(key) for _, _, key in folders]
        recorded = [(path, r.stamps) for (_, path, _), r in zip(folders, records) if r is not None]
        same = iter(groups_unchanged(recorded))
        return stamps, [
            RunFolder(number, path, key, record, record is not None and next(same))
            for (number, path, key), record in zip(folders, records)
        ]

    def jobs(self, run: RunFolder) -> Iterator[JobFolder]:
        """The job folders of a run that has to be walked, in order; `run_stamps` after the last one."""
        if run.record is not None:  # changed: its folders' entries tell which jobs to read again
            self.old.restore_run(run.record)
        self.listings.inputs = {}
        first_config: dict = {}
        for rep, rep_name in self.listings.numbered(run.path, run.key, _REP):
            rep_path, rep_key = f"{run.path}/{rep_name}", f"{run.key}/{rep_name}"
            listing = self.listings.entries(rep_path, rep_key, tuple(self._host_dirs), (CONFIG_JSON,))
            if (CONFIG_JSON, False) not in listing:
                continue
            config_stamp, config_flat = self._config(rep_path, rep_key, first_config)
            for host_type, is_dir in listing:
                if not is_dir:
                    continue
                type_path, type_key = f"{rep_path}/{host_type}", f"{rep_key}/{host_type}"
                expected = self._host_dirs.get(host_type, ())
                for host_idx, host_name in self.listings.numbered(type_path, type_key, _HOST, expected):
                    yield JobFolder(
                        run.number, rep, host_type, host_idx, f"{type_path}/{host_name}",
                        f"{type_key}/{host_name}", config_stamp, config_flat,
                    )

    def run_stamps(self, run: RunFolder) -> Stamps:
        """What the walk of a run relied on, relative to the run folder."""
        return relative_stamps(self.listings.inputs, run.path, self._names_memo)

    def _config(self, rep_path: str, rep_key: str, first_config: dict) -> tuple[tuple[int, int], dict]:
        """The rep's config.json's stamp and flattened content. All reps of a run share one run config, so a
        file of the same size as the run's first one (`first_config`) is not read again."""
        cached = self.old.configs.get(rep_key)
        if self.listings.unchanged and cached is not None:
            # config.json is written once, before the job: unchanged folder, unchanged file.
            self.new.configs[rep_key] = cached
            return cached
        path = f"{rep_path}/{CONFIG_JSON}"
        stat = self.listings.stat(path)
        # Not among the walk's inputs: config.json is written once, before the job; the rep folder's mtime
        # stands for it (a re-run reads it again only when that folder changed).
        stamp = (stat.st_size, stat.st_mtime_ns)
        if cached is not None and cached[0] == stamp:
            flat = cached[1]
        elif first_config.get("size") == stat.st_size:
            flat = first_config["flat"]
        else:
            flat = self._read_config(path, rep_key)
        if "size" not in first_config:
            first_config.update(size=stat.st_size, flat=flat)
        self.new.configs[rep_key] = (stamp, flat)
        return stamp, flat

    def _read_config(self, path: str, rep_key: str) -> dict:
        with open(path, "rb") as handle:
            text = handle.read()
        try:
            config = json.loads(text)
        except ValueError as error:
            raise EtlDataError(
                f"{rep_key}/{CONFIG_JSON} is not valid JSON: {error}", pipeline=self.matcher.pipeline
            ) from None
        return flatten_run_config(config) if isinstance(config, dict) else {}

    def job_files(self, job: JobFolder, cached: JobEntry | None) -> tuple[list[ContentFile] | None, tuple]:
        """The job's files whose content an extractor reads, and their stamps (rel, size, mtime, ...). The
        files are None when the stamps are the cached ones (the job is unchanged unless its config is not:
        then `content_files`)."""
        stamps = self._restamp(job, cached)
        if cached is not None and stamps == cached[1]:
            return None, stamps
        return self.content_files(job)

    def content_files(self, job: JobFolder) -> tuple[list[ContentFile], tuple]:
        chosen: list[ContentFile] = []
        stamps: list[str | int] = []
        for rel, name, path in self.listings.files(job.path, job.key):
            index = self.matcher.match(name, f"{job.key}/{rel}")
            if index is None:
                continue
            stat = os.stat(path)
            self.listings.inputs[path] = (stat.st_size, stat.st_mtime_ns)
            chosen.append((rel, path, index, stat.st_size))
            stamps.extend((sys.intern(rel), stat.st_size, stat.st_mtime_ns))
        return chosen, tuple(stamps)

    def _restamp(self, job: JobFolder, cached: JobEntry | None) -> tuple | None:
        """Quick path for an unchanged job folder (same listing, no subfolders): stat only the files whose
        content was read last time. None means: take the full path."""
        if cached is None:
            return None
        packed = self.listings.packed(job.path, job.key)
        if not self.listings.unchanged or packed is None or "/" in packed:
            return None
        stamps: list[str | int] = []
        for rel in cached[1][::3]:
            path = f"{job.path}/{rel}"
            try:
                stat = os.stat(path)
            except FileNotFoundError:
                return None
            self.listings.inputs[path] = (stat.st_size, stat.st_mtime_ns)
            stamps.extend((rel, stat.st_size, stat.st_mtime_ns))
        return tuple(stamps)
