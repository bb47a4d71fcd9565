"""`doe run`: prepare a suite run, set its hosts up once, then drive the jobs to completion.

The loop is a small state machine per experiment over the durable state files: each tick is one round
(rounds.py) over all hosts of all experiments, the first one with the setup (setup.py); fetched results
go into the results tree and the job state (intake.py). Hosts do the per-job work with their helper
script (a host's last poll also shuts its queue down); an Ansible round trip costs about a second, a
job can cost milliseconds. What differs between clouds is behind the Cloud hooks (doe_cli.clouds).
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from doe_cli.clouds import Cloud, cloud_of_run, open_cloud
from doe_cli.config import Project
from doe_cli.errors import DoeError
from doe_cli.fileio import load_yaml
from doe_cli.notify import Target
from doe_cli.run.ansible_env import CLEANUP_TASK, control_path_dir, suite_adapter
from doe_cli.run.intake import ResultIntake, run_etl
from doe_cli.run.poll_reply import helper_report
from doe_cli.run.prepare import PreparedRun, prepare, resolve_suite
from doe_cli.run.progress import Progress
from doe_cli.run.reporting import RunReporting, notify_targets
from doe_cli.run.rounds import Rounds
from doe_cli.run.runtime import PlaybookRunner, RunOptions, RunSummary, SuiteLock, SuiteRun
from doe_cli.run.setup import HostSetup
from doe_cli.run.state import FAILED, setup_marker
from doe_cli.run.status import failed_jobs, load_states, suite_experiments


class Controller:
    def __init__(self, prepared: PreparedRun, *, log: Callable[[str], None], progress: Progress | None = None,
                 notify: list[Target] | None = None) -> None:
        self.prepared = prepared
        self.log = log
        self.progress = progress
        self.stop_event = threading.Event()
        self.playbooks = PlaybookRunner(suite_adapter(prepared.project, prepared.suite_dir), prepared.inventory,
                                        progress.event if progress is not None else None,
                                        trace=log if prepared.options.verbose else None)
        self.reporting = RunReporting(prepared, notify or [], log)
        self.intake = ResultIntake(prepared, self.reporting, log)
        self.setup = HostSetup(prepared, self.playbooks, release_hosts=self.release_hosts, log=log)
        self.rounds = Rounds(prepared, self.playbooks, self.setup, self.intake, log)

    def _on_interrupt(self, _signum, _frame) -> None:
        if not self.playbooks.interrupted:  # answered once, at once; the round in flight is stopped next
            self.log("stopping: queued jobs keep running; resume with: " + self.prepared.run.resume_command)
        self.playbooks.interrupted = True
        self.stop_event.set()

    def run(self) -> RunSummary:
        try:
            summary = self._run()
        except DoeError as error:
            self.reporting.stopped(str(error))
            raise
        self.reporting.finished(summary)
        return summary

    def _run(self) -> RunSummary:
        self.setup.plan()
        if self._all_done() and self.setup.pending:
            return self.summary()  # a finished suite whose hosts were cleaned up: nothing to do
        self._show()
        options = self.prepared.options
        previous = signal.signal(signal.SIGINT, self._on_interrupt)
        try:
            deadline = time.monotonic() + options.timeout if options.timeout else None
            while not self._all_done():
                if deadline is not None and time.monotonic() > deadline:
                    raise DoeError(f"stopped after --timeout {options.timeout:g} s; the queued jobs keep "
                                   f"running; resume with: {self.prepared.run.resume_command}")
                tick = time.monotonic()
                if not self.rounds.enqueue_tick():
                    self.rounds.poll_tick()
                self.intake.maybe_etl(final=False)
                self._show()
                self.reporting.tick()
                if self._all_done():
                    break
                if not self.rounds.stops_pending():
                    self.stop_event.wait(max(0.0, options.poll_interval - (time.monotonic() - tick)))
                if self.playbooks.interrupted:
                    raise KeyboardInterrupt
        except KeyboardInterrupt:  # said in _on_interrupt
            return replace(self.summary(), interrupted=True)
        finally:
            signal.signal(signal.SIGINT, previous)
        self.intake.maybe_etl(final=True)
        if not options.keep:
            self.release_hosts()
        return self.summary()

    def release_hosts(self) -> None:
        """Shut down the queues the final polls did not, then let the cloud release the hosts."""
        prepared = self.prepared
        remaining = [slot.name for slot in prepared.slots if slot.name not in self.rounds.shut_down]
        still_locked = list(remaining)
        if remaining:
            result = self.playbooks.run("cleanup.yml", {}, limit=remaining)
            if not result.ok:
                self.log(f"warning: cleanup failed: {result.summary()}")
                return
            # A shutdown by the host helper releases the lock too; a host without the helper keeps it.
            shutdowns = result.task_results(CLEANUP_TASK)
            still_locked = [host for host in remaining if helper_report(shutdowns.get(host, {})) is None]
        prepared.cloud.release_hosts(prepared.suite_dir, prepared.host_vars, still_locked=still_locked)
        # The hosts are gone; a later resume (e.g. --retry-failed) sets new ones up.
        setup_marker(prepared.suite_dir).unlink(missing_ok=True)

    def _all_done(self) -> bool:
        return all(exp.state.done() for exp in self.prepared.exps.values())

    def _show(self) -> None:
        if self.progress is not None:
            self.progress.update({name: (exp.state.counts(), exp.running)
                                  for name, exp in self.prepared.exps.items()})

    def summary(self) -> RunSummary:
        exps, run = self.prepared.exps, self.prepared.run
        return RunSummary(suite=run.suite, suite_id=run.suite_id, suite_dir=run.suite_dir,
                          complete=self._all_done(), counts={name: exp.state.counts() for name, exp in exps.items()},
                          failed_jobs=failed_jobs(run.suite_dir, {name: exp.state for name, exp in exps.items()}),
                          etl_error=self.intake.etl_error or (run.suite_dir / "ETL_ERROR.log").exists())

    def close(self) -> None:
        for exp in self.prepared.exps.values():  # state.yml absorbs the journal while the lock is held
            if exp.state.journal_lines or exp.state.changed:
                exp.state.save(exp.state_path)
        self.prepared.lock.release()


def finished_summary(project: Project, options: RunOptions, run: SuiteRun,
                     log: Callable[[str], None]) -> RunSummary | None:
    """A resumed suite with no job left to run: the ETL (which reads only what changed) and the
    summary, without any host (no cloud, no Ansible). None if there is work: jobs to run or retry,
    or hosts a --keep run left, which the regular run cleans up."""
    if run.is_new or (setup_marker(run.suite_dir).exists() and not options.keep):
        return None
    states = load_states(options.suite, run.suite_id, run.suite_dir)
    if not states or len(states) != len(suite_experiments(run.suite_dir)) \
            or not all(state.done() for state in states.values()) \
            or options.retry_failed and any(state.with_status(FAILED) for state in states.values()):
        return None
    design = load_yaml((run.suite_dir / "suite_design.yml").read_text(encoding="utf-8")) or {}
    if adaptive_undecided(run.suite_dir, design):
        return None  # the controller stopped before deciding whether a run needs more reps
    lock = SuiteLock(run.suite_dir / ".doe" / "lock")
    try:
        log(f"{run.suite_dir.name} is complete: no job left to run; no host is touched")
        etl_error = False
        if design.get("$ETL$"):
            etl_error = not run_etl(run.suite_dir, project)
        return RunSummary(suite=options.suite, suite_id=run.suite_id, suite_dir=run.suite_dir, complete=True,
                          counts={name: state.counts() for name, state in states.items()},
                          failed_jobs=failed_jobs(run.suite_dir, states),
                          etl_error=etl_error or (run.suite_dir / "ETL_ERROR.log").exists())
    finally:
        lock.release()


def adaptive_undecided(suite_dir: Path, design: dict) -> bool:
    """Whether an adaptive experiment has a run whose last reps are in but no decision yet."""
    from doe_cli.run.status import adaptive_summary
    from doe_cli.run.stopping import ADAPTING

    for name, exp in design.items():
        if isinstance(exp, dict) and exp.get("repetitions"):
            summary = adaptive_summary(suite_dir / name)
            if summary is None or any(isinstance(entry, dict) and entry.get("status") == ADAPTING
                                      for entry in summary["runs"].values()):
                return True
    return False


def _open(project: Project, options: RunOptions, run: SuiteRun, log: Callable[[str], None]) -> Cloud:
    name = cloud_of_run(options.cloud, run.suite_dir, is_new=run.is_new, log=log)
    return open_cloud(project, name, suite=options.suite, suite_id=run.suite_id, force=options.force,
                      accept_cost=options.yes, parallel=options.parallel, local_dir=options.local_dir, log=log)


def _remove_control_path_dir(suite_dir: Path) -> None:
    # The control socket folder goes once no SSH master lives in it (always so on the local cloud).
    with contextlib.suppress(OSError):
        control_path_dir(suite_dir, create=False).rmdir()


def run_suite(project: Project, options: RunOptions, *, log: Callable[[str], None],
              progress: Progress | None = None) -> RunSummary:
    run = resolve_suite(project, options)
    try:
        finished = finished_summary(project, options, run, log)
        if finished is not None:
            return finished
        notify = notify_targets(project, options.notify)
        cloud = _open(project, options, run, log)
        try:
            controller = Controller(prepare(project, options, run, cloud, log), log=log, progress=progress,
                                    notify=notify)
            try:
                return controller.run()
            finally:
                controller.close()
        except Exception:
            # Provisioned hosts cost money: a failed run deletes them unless --keep (a resume provisions anew).
            if not options.keep:
                cloud.teardown()
            raise
    finally:
        _remove_control_path_dir(run.suite_dir)


def fetch_finished(project: Project, options: RunOptions, *, log: Callable[[str], None]) -> int:
    """Fetch the jobs that finished on a suite's kept hosts, as the run's polls do (its state records them),
    without enqueueing or setting anything up; returns how many."""
    run = resolve_suite(project, options)
    try:
        controller = Controller(prepare(project, options, run, _open(project, options, run, log), log), log=log)
        try:
            return controller.rounds.fetch_finished()
        finally:
            controller.close()
    finally:
        _remove_control_path_dir(run.suite_dir)
