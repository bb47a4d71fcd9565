"""`doe clean-result` (doe-suite's `make clean-result`): delete the result folders of runs that stopped early.

A result folder is incomplete when its recorded job states say that not every job finished (or failed), or
when it has no job state at all. Nothing that can still be fetched or resumed is lost: a folder that a
running `doe run` holds (its controller lock) is skipped, and so is one whose hosts are still set up
(`doe run --keep`, Ctrl-C, a crash): their jobs may still run and `doe clean` or a resume fetches them.
Complete folders are never touched.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from doe_cli.config import Project
from doe_cli.errors import DoeError
from etl.layout import suite_runs

# A new run creates its folder a moment before it takes the controller lock: a folder that young with
# neither lock file nor state is left alone.
NEW_FOLDER_SECONDS = 60.0


@dataclass(frozen=True)
class ResultFolder:
    suite: str
    suite_id: int
    folder: Path
    done: int = 0
    total: int = 0
    without_state: tuple[str, ...] = ()  # experiments that have no job state
    skip: str | None = None  # why it stays although it is incomplete

    def describe(self) -> str:
        if not self.total:
            jobs = "no job state (stopped before its jobs were recorded)"
        else:
            jobs = f"{self.done}/{self.total} jobs done"
            if self.without_state:
                jobs += f", no job state for {', '.join(self.without_state)}"
        return f"{self.folder.name}: suite {self.suite}, id {self.suite_id}, {jobs}"


def inspect(suite: str, suite_id: int, folder: Path, *, now: float | None = None,
            lock_held: bool = False) -> ResultFolder | None:
    """The folder as a candidate for deletion: None if it is complete (or no doe result folder); with
    `skip` set if it is incomplete but must stay. lock_held: the caller holds the controller lock."""
    from doe_cli.run.state import setup_marker
    from doe_cli.run.status import controller_running, load_states, suite_experiments

    if not (folder / "suite_design.yml").is_file() and not (folder / ".doe").is_dir():
        return None  # named like a result folder, but not written by doe
    experiments = suite_experiments(folder)
    try:
        states = load_states(suite, suite_id, folder)
    except DoeError as error:
        return ResultFolder(suite, suite_id, folder, skip=f"its job state cannot be read ({error})")
    if experiments and len(states) == len(experiments) and all(state.done() for state in states.values()):
        return None
    counts = [state.counts() for state in states.values()]
    found = ResultFolder(suite, suite_id, folder, done=sum(c["finished"] + c["failed"] for c in counts),
                         total=sum(len(state.jobs) for state in states.values()),
                         without_state=tuple(name for name in experiments if name not in states))
    reason = _why_it_stays(folder, has_state=bool(states), now=time.time() if now is None else now)
    if reason is None and not lock_held and controller_running(folder):
        reason = "a doe run is using it"
    if reason is None and _hosts_set_up(folder, setup_marker(folder).exists()):
        reason = (f"its hosts are still set up (doe run --keep, or a run that stopped): resume with "
                  f"doe run --suite {suite} --id {suite_id}, or fetch and free them with doe clean")
    return found if reason is None else dataclasses.replace(found, skip=reason)


def _why_it_stays(folder: Path, *, has_state: bool, now: float) -> str | None:
    if has_state or (folder / ".doe" / "lock").exists():
        return None
    if now - folder.stat().st_mtime < NEW_FOLDER_SECONDS:
        return "a doe run is creating it"
    return None


def _hosts_set_up(folder: Path, marker: bool) -> bool:
    from doe_cli.clouds.inventory import stored_cloud
    from doe_cli.run.kept_hosts import hosts_left

    cloud = stored_cloud(folder)
    if cloud is None:  # no inventory stored: only the setup marker can tell
        return marker
    return bool(hosts_left(folder, cloud))


def find_incomplete(results_dir: Path, suite: str | None = None) -> list[ResultFolder]:
    """Every incomplete result folder (of one suite), oldest id first; those that must stay have `skip`."""
    found = (inspect(name, number, folder) for name, number, folder in suite_runs(results_dir, suite))
    return [entry for entry in found if entry is not None]


def delete(entry: ResultFolder) -> str | None:
    """Delete the folder under its controller lock, checked again under the lock (a run may have
    started or finished since it was listed). Returns why it stayed, or None once deleted."""
    from doe_cli.run.runtime import SuiteLock

    try:
        lock = SuiteLock(entry.folder / ".doe" / "lock")
    except DoeError:
        return "a doe run is using it"
    try:
        again = inspect(entry.suite, entry.suite_id, entry.folder, lock_held=True)
        if again is None:
            return "it is complete now"
        if again.skip is not None:
            return again.skip
        shutil.rmtree(entry.folder)
        return None
    finally:
        lock.release()


def clean_results(project: Project, suite: str | None, *, dry_run: bool, yes: bool, show: Callable[[str], None],
                  note: Callable[[str], None], confirm: Callable[[str], None]) -> None:
    """List the incomplete result folders (show), say which stay and why (note), ask (confirm raises
    unless the answer is yes), then delete."""
    found = find_incomplete(project.results_dir, suite)
    deletable = [entry for entry in found if entry.skip is None]
    for entry in found:
        if entry.skip is not None:
            note(f"skipping {entry.folder.name}: {entry.skip}")
    for entry in deletable:
        show(entry.describe())
    count = f"{len(deletable)} incomplete result folder(s)"
    if not deletable:
        note(f"no incomplete result folder to delete in {project.results_dir}")
        return
    if dry_run:
        note(f"would delete {count}")
        return
    if not yes:
        confirm(f"delete these {count} with everything in them?")
    deleted = 0
    for entry in deletable:
        reason = delete(entry)
        if reason is None:
            deleted += 1
        else:
            note(f"skipping {entry.folder.name}: {reason}")
    note(f"deleted {deleted} incomplete result folder(s)")
