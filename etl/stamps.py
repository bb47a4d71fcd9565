"""File stamps (size, mtime) that the ETL cache and the re-run manifest trust. Standard library only.

Checking them takes one stat per folder and per file read, nothing else; yet on a large tree those stats are
most of a re-run (a stat costs 3-5 us on a small VM, far more on a network filesystem). A stat spends its time
in the kernel, but Python threads do not stat in parallel (each stat hands the interpreter lock over twice), so
a large check is shared with helper processes that run etl/stat_worker.py, much as git shares its index's
stats among threads.
"""

from __future__ import annotations

import marshal
import os
import sys
from array import array
from collections.abc import Iterable, Iterator, Sequence
from typing import IO

from etl import stat_worker
from etl.stat_worker import Group, Stamps, group_unchanged, stamps_match, values_of

__all__ = [
    "RACY_NS",
    "Group",
    "Stamps",
    "entries",
    "first",
    "group_unchanged",
    "groups_unchanged",
    "latest_mtime",
    "pack",
    "stamps_match",
    "without_first",
]

# A file or directory changed less than this long before it was looked at may change again within the same
# timestamp tick; such a stamp is not trusted.
RACY_NS = 1_000_000_000

# A helper costs about as much to start as a few thousand stats (it starts late by that much): each process
# gets at least STAMPS_PER_PROCESS stamps, a helper HELPER_START_STAMPS fewer than this process.
STAMPS_PER_PROCESS = 12_000
HELPER_START_STAMPS = 4_000
MAX_PROCESSES = 4


def pack(entries: Iterable[tuple[str, int, int]], names_memo: dict | None = None) -> Stamps:
    """Stamps of (name, size, mtime) entries. Groups with the same names share one names tuple through
    `names_memo` (so a cache file holds it once: etl.safecache.StampsTable)."""
    names: list[str] = []
    values = array("q")
    for name, size, mtime in entries:
        names.append(name)
        values.append(size)
        values.append(mtime)
    key = tuple(names)
    if names_memo is not None:
        key = names_memo.setdefault(key, key)
    return key, values.tobytes()


def entries(stamps: Stamps) -> Iterator[tuple[str, int, int]]:
    values = iter(values_of(stamps))
    return zip(stamps[0], values, values)


def first(stamps: Stamps) -> tuple[str, int, int]:
    values = values_of(stamps)
    return stamps[0][0], values[0], values[1]


def without_first(stamps: Stamps, names_memo: dict) -> Stamps:
    """The stamps less their first entry (groups with the same names again share one names tuple)."""
    names = stamps[0][1:]
    return names_memo.setdefault(names, names), stamps[1][2 * values_of(stamps).itemsize :]


def latest_mtime(stamps: Stamps) -> int:
    """The newest mtime among the entries; 0 for none."""
    return max(values_of(stamps)[1::2], default=0)


def groups_unchanged(groups: Sequence[Group]) -> list[bool]:
    """Per (folder, stamps) group, whether all its stamps hold. A large check is shared with helper processes;
    a helper that fails leaves its share to this process."""
    own, *shares = _shares(groups)
    helpers: list[_Helper] = []
    try:
        helpers.extend(_Helper(groups[start:end]) for start, end in shares)
        found = [group_unchanged(group) for group in groups[own[0] : own[1]]]
        answers: list[bool] = []  # the helpers' shares come first
        for helper, (start, end) in zip(helpers, shares):
            answer = helper.answer()
            answers.extend(answer if answer is not None else map(group_unchanged, groups[start:end]))
    except BaseException:  # Ctrl-C, most likely: no helper outlives the check
        for helper in helpers:
            helper.stop()
        raise
    return answers + found


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on every platform
        return os.cpu_count() or 1


def _shares(groups: Sequence[Group]) -> list[tuple[int, int]]:
    """(start, end) of the groups each process checks: this process's share (the last groups) first, then one
    share per helper, none empty."""
    sizes = [len(stamps[0]) for _, stamps in groups]
    total = sum(sizes)
    processes = min(_usable_cpus(), MAX_PROCESSES, total // STAMPS_PER_PROCESS)
    helper_share = (total - HELPER_START_STAMPS) / max(processes, 1)
    if processes < 2 or helper_share < 1 or not sys.executable:
        return [(0, len(groups))]
    helpers: list[tuple[int, int]] = []
    start = counted = 0
    for _ in range(processes - 1):
        end = start
        while end < len(groups) and counted + sizes[end] <= helper_share * (len(helpers) + 1):
            counted += sizes[end]
            end += 1
        if end > start:
            helpers.append((start, end))
        start = end
    return [(start, len(groups)), *helpers]


class _Helper:
    """A process checking some groups: etl/stat_worker.py as a script, the groups in on stdin, a byte out each."""

    def __init__(self, groups: Sequence[Group]) -> None:
        import subprocess  # here: a re-run that finds nothing changed in a small tree does not import them
        import threading

        self.count = len(groups)
        self.feeder: threading.Thread | None = None
        self.process: subprocess.Popen[bytes] | None
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-I", "-S", stat_worker.__file__],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
        except OSError:
            self.process = None
            return
        assert self.process.stdin is not None and self.process.stdout is not None  # both PIPE
        # Fed from a thread: the groups fill more than a pipe holds, and this process has its own share to check.
        self.feeder = threading.Thread(
            target=self._feed, args=(self.process.stdin, marshal.dumps(list(groups))), daemon=True
        )
        self.feeder.start()

    @staticmethod
    def _feed(stdin: IO[bytes], payload: bytes) -> None:
        try:
            with stdin:
                stdin.write(payload)
        except OSError:
            pass  # it ended early: answer() sees that

    def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            self.process.wait()

    def answer(self) -> list[bool] | None:
        """One verdict per group; None if the helper failed."""
        if self.process is None or self.process.stdout is None or self.feeder is None:
            return None
        with self.process.stdout:
            output = self.process.stdout.read()
        self.feeder.join()
        if self.process.wait() != 0 or len(output) != self.count:
            return None
        return [byte == 1 for byte in output]
