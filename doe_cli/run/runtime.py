"""What the parts of a suite run share: its options, its summary, the suite folder it runs in (and its
lock), one experiment's progress, and the runner of its playbooks."""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from doe_cli.ansible_adapter import AnsibleAdapter, PlaybookResult
from doe_cli.errors import DoeError
from doe_cli.run.host_feed import HostFeed
from doe_cli.run.hosts import HostSlot
from doe_cli.run.state import QUEUED, ExperimentState
from etl.layout import JobKey, job_dir

if TYPE_CHECKING:
    from doe_cli.run.adaptive import AdaptiveRuns

KEPT_ANSIBLE_DIRS = 20


@dataclass
class RunOptions:
    suite: str
    id: str = "new"
    cloud: str | None = None              # None: a resume's own cloud, else config.default_cloud()
    keep: bool = False
    expfilter: str | None = None
    retry_failed: bool = False
    timeout: float | None = None          # whole run, seconds
    job_timeout: float | None = None      # per job, seconds (overrides the job_timeout host var)
    force: bool = False                   # SSH cloud: take hosts locked by another suite
    parallel: bool = False                # local cloud: experiments at the same time (local_parallel: true)
    yes: bool = False                     # AWS: accept a cost estimate above the budget
    local_dir: Path | None = None
    poll_interval: float = 0.5
    long_poll: float = 4.0               # seconds a host may wait for its jobs before answering a poll
    unreachable_timeout: float = 900.0   # seconds a host may stay unreachable before the run stops
    notify: list[str] | None = None       # --notify targets (None: group_vars/all's notify)
    verbose: bool = False                 # -v: a line per Ansible run, with its hosts and seconds


@dataclass
class RunSummary:
    suite: str
    suite_id: int
    suite_dir: Path
    complete: bool
    counts: dict[str, dict[str, int]]
    failed_jobs: dict[str, list[dict]]
    etl_error: bool = False
    interrupted: bool = False  # by Ctrl-C: the hosts' queues keep their jobs


@dataclass(frozen=True)
class SuiteRun:
    """The results folder a run writes: a new suite id, or the one it resumes."""

    suite: str
    suite_id: int
    suite_dir: Path
    is_new: bool

    @property
    def resume_command(self) -> str:
        return f"doe run --suite {self.suite} --id {self.suite_id}"


class SuiteLock:
    """One controller per suite run: a second `doe run` on the same id fails instead of racing."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = open(path, "w")  # noqa: SIM115 - held open for the controller's lifetime
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.handle.close()
            raise DoeError(f"another doe controller is running this suite ({path.parent.parent.name})") from None

    def release(self) -> None:
        self.handle.close()


@dataclass
class ExpRuntime:
    """What the loop needs about one experiment, plus in-memory progress of multi-host jobs."""

    name: str
    state: ExperimentState
    state_path: Path
    slots: list[HostSlot]
    check_hosts: set[str]
    first_phase: set[str]
    runs: list[dict]
    n_reps: int
    host_done: dict[JobKey, dict[str, dict]] = field(default_factory=dict)
    running: int = 0
    scheduler: dict[JobKey, list] = field(default_factory=dict)  # a cluster's [state, reason] of queued jobs
    adaptive: AdaptiveRuns | None = None  # adaptive repetitions: reps added as results arrive
    feeds: dict[str, HostFeed] = field(init=False)  # per host: what its polls have told so far

    def __post_init__(self) -> None:
        queued = set(self.state.with_status(QUEUED))
        self.feeds = {slot.name: HostFeed(outstanding=set(queued)) for slot in self.slots}

    @property
    def hosts(self) -> list[str]:
        return [slot.name for slot in self.slots]

    @property
    def multi(self) -> bool:
        return len(self.slots) > 1

    def stops_pending(self) -> bool:
        """A multi-host job whose polled hosts finished waits for its other hosts to be stopped."""
        return any(self.check_hosts <= set(done) for done in self.host_done.values())

    def may_grow(self) -> bool:
        """Adaptive runs may still get reps: the hosts' queues must not shut down after their last job."""
        return self.adaptive is not None and self.adaptive.may_grow()


EventHandler = Callable[[dict[str, Any]], None]


class PlaybookRunner:
    """Runs the suite's playbooks on its inventory, with progress events and Ctrl-C: with a cancel
    callback ansible-runner leaves SIGINT alone (otherwise it takes the handler over for good); Ctrl-C
    sets `interrupted`, the runner stops the playbook, and the loop ends cleanly."""

    def __init__(self, adapter: AnsibleAdapter, inventory: Path, progress_event: EventHandler | None,
                 trace: Callable[[str], None] | None = None) -> None:
        self.adapter = adapter
        self.inventory = inventory
        self.progress_event = progress_event
        self.trace = trace
        self.interrupted = False

    def run(self, playbook: str, extravars: dict[str, Any], limit: list[str] | None = None,
            on_event: EventHandler | None = None) -> PlaybookResult:
        def handle(event: dict[str, Any]) -> None:
            if on_event is not None:
                on_event(event)
            if self.progress_event is not None:
                self.progress_event(event)

        started = time.monotonic()
        result = self.adapter.run(playbook, inventory=self.inventory, extravars=extravars,
                                  limit=",".join(limit) if limit else None, cancel=lambda: self.interrupted,
                                  on_event=handle)
        if self.trace is not None:
            hosts = f"{len(limit)} host(s)" if limit else "all hosts"
            self.trace(f"ansible: {playbook} on {hosts}: {result.status} in {time.monotonic() - started:.2f} s")
        self._prune_ansible_dirs()
        if self.interrupted:
            raise KeyboardInterrupt
        return result

    def _prune_ansible_dirs(self) -> None:
        folders = sorted(p for p in self.adapter.work_dir.iterdir() if p.is_dir())
        for old in folders[:-KEPT_ANSIBLE_DIRS]:
            shutil.rmtree(old, ignore_errors=True)


def set_attempt_aside(suite_dir: Path, exp: str, host_types: list[str], key: JobKey, attempt: int) -> None:
    """Fetched results are never overwritten: a retried job's earlier results move to
    `rep_<j>/.attempt_<n>/` (hidden, so the ETL reads only the current attempt).

    Safe to repeat: after a crash between this move and the state's record of the new attempt, a resume
    fetches and sets aside attempt n again; that second copy goes to `.attempt_<n>_<k>/`, never over the first.
    """
    rep_dir = suite_dir / job_dir(exp, key)
    for host_type in host_types:
        source = rep_dir / host_type
        if not source.is_dir() or source.is_symlink():
            continue
        target = rep_dir / f".attempt_{attempt}"
        copy = 1
        while (target / host_type).exists():
            copy += 1
            target = rep_dir / f".attempt_{attempt}_{copy}"
        target.mkdir(parents=True, exist_ok=True)
        os.rename(source, target / host_type)
