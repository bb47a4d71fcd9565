"""Where polled results go: fetched job folders into the results tree, ended jobs into the job state,
and, after new results, the suite's ETL."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from doe_cli.config import Project
from doe_cli.errors import DoeError
from doe_cli.fileio import write_atomic
from doe_cli.run.fetch import place_results
from doe_cli.run.host_feed import MAX_MISSING_POLLS, HostFeed
from doe_cli.run.hosts import HostSlot
from doe_cli.run.prepare import PreparedRun
from doe_cli.run.reporting import RunReporting
from doe_cli.run.runtime import ExpRuntime
from doe_cli.run.state import FAILED, FINISHED
from etl.fileio import DOE_RECORD
from etl.layout import JobKey, host_dir_name, job_dir


class ResultIntake:
    def __init__(self, prepared: PreparedRun, reporting: RunReporting, log: Callable[[str], None]) -> None:
        self.prepared = prepared
        self.reporting = reporting
        self.log = log
        self.last_etl = time.monotonic()  # the first ETL waits the minimum delay too
        self.new_results_since_etl = False
        self.etl_error = False

    def place(self, exp: ExpRuntime, slot: HostSlot, key: JobKey) -> bool:
        """Move a fetched job into the results tree; True once doe's record of it is there."""
        rel = job_dir(exp.name, key)
        source = self.prepared.staging / slot.name / rel / "results"
        target = self.prepared.suite_dir / rel / slot.host_type / host_dir_name(slot.idx)
        report = place_results(source, target)
        for name in report.refused:
            self.log(f"warning: {slot.name}: refused to fetch {rel}/results/{name} (symlink or unsafe name)")
        self.new_results_since_etl = True
        return (target / DOE_RECORD).is_file()

    def complete(self, exp: ExpRuntime, key: JobKey, done: dict[str, dict]) -> None:
        """A job every host of which ended: failed if it failed (or was lost) on any of them."""
        record = exp.state.jobs[key]
        ordered = sorted(done, key=lambda host: host not in exp.check_hosts)
        failed = [host for host in ordered if done[host].get("state") == "lost"
                  or done[host].get("status") not in ("finished",)]
        exit_codes = [done[host].get("exit_code") for host in (failed or ordered)]
        exit_code = next((code for code in exit_codes if code), exit_codes[0] if exit_codes else None)
        exp.state.set(key, FAILED if failed else FINISHED, exit_code=exit_code)
        self.reporting.job_ended(exp, key, done, bool(failed))
        if failed:
            # The queue's word on a job it ended (a Slurm state, a pending limit), when it said one.
            reasons = sorted({str(done[host]["reason"]) for host in failed if done[host].get("reason")})
            self.log(f"job {exp.name} run {key[0]} rep {key[1]} failed on {', '.join(failed)} "
                     f"(exit code {record.exit_code}{'; ' + '; '.join(reasons) if reasons else ''})")
        if exp.adaptive is not None:  # after the failure is said: a failed rep may run again
            exp.adaptive.on_complete(exp.state, key, bool(failed))

    def note_not_fetched(self, host: str, skipped: list[dict]) -> None:
        """Files a fetch left out (symlinks, special files, files over the cap): said once, kept in
        .doe/not_fetched.log; the results folder gets nothing for them."""
        if not skipped:
            return
        lines = [f"{host}: {item.get('path')}: {item.get('reason')}" for item in skipped]
        for line in lines:
            self.log(f"warning: not fetched: {line}")
        with open(self.prepared.suite_dir / ".doe" / "not_fetched.log", "a", encoding="utf-8") as handle:
            handle.write("".join(f"{line}\n" for line in lines))

    def stop_if_results_never_arrive(self, host: str, feed: HostFeed, missed_now: list[str]) -> None:
        """The transfer left finished jobs out: they are fetched again, and a few misses in a row stop the run."""
        if not missed_now:
            return
        stuck = [key for key, polls in feed.missing.items() if polls >= MAX_MISSING_POLLS]
        if not stuck:
            self.log(f"warning: {host}: results of {len(missed_now)} finished job(s) did not arrive (first: "
                     f"{missed_now[0]}); fetching them again")
            return
        raise DoeError(f"host {host} reports {len(stuck)} finished job(s) whose results did not arrive in "
                       f"{MAX_MISSING_POLLS} fetches in a row (first: {missed_now[0]}); check free space in "
                       f"{self.prepared.suite_dir} and the jobs' files on the host (fetch_max_file_mb in "
                       f"group_vars/all skips larger ones), then resume with: {self.prepared.run.resume_command}")

    def maybe_etl(self, *, final: bool) -> None:
        """The suite's ETL after new results, at most every etl_minimum_delay_sec while jobs run, and
        once at the end; a suite without pipelines skips it (no pandas import)."""
        if not self.new_results_since_etl or not self.prepared.design.etl:
            return
        min_delay = self.prepared.settings.etl_minimum_delay_sec
        if not final and time.monotonic() - self.last_etl < min_delay:
            return
        self.new_results_since_etl = False
        self.last_etl = time.monotonic()
        self.etl_error = not run_etl(self.prepared.suite_dir, self.prepared.project)
        self.reporting.etl_ran(not self.etl_error)


def run_etl(suite_dir: Path, project: Project) -> bool:
    """The suite's ETL; a failure goes to ETL_ERROR.log and never stops the run. True if it went well."""
    try:
        from etl.api import run_suite_etl
    except ImportError:
        return True
    try:
        from doe_cli.design import design_loader

        report = run_suite_etl(suite_dir, config_dir=project.config_dir, design_loader=design_loader(project),
                               error_log=True)
        return bool(report.ok)
    except Exception as error:  # noqa: BLE001 - any ETL failure is reported, never fatal to the run
        write_atomic(suite_dir / "ETL_ERROR.log", f"{type(error).__name__}: {error}\n")
        return False
