"""What a suite run tells the people waiting for it: the status page (rewritten at most every
STATUS_PAGE_SECONDS while jobs run, and at the end) and the notifications (`notify:` in group_vars/all
or --notify): the first failed job, a host that stops answering, a failing ETL, the cost so far reaching
BUDGET_ALERT_FRACTION of the budget (AWS; once per suite run, resumes included), and the end."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from doe_cli.config import Project
from doe_cli.notify import Notifier, Target, parse_option, parse_targets
from doe_cli.run.state import FAILED, FINISHED
from doe_cli.run.status import failed_jobs
from doe_cli.run.status_page import HostInfo, StatusPage, host_address
from etl.layout import JobKey

if TYPE_CHECKING:
    from doe_cli.clouds.base import CostSoFar
    from doe_cli.run.prepare import PreparedRun
    from doe_cli.run.runtime import ExpRuntime, RunSummary

STATUS_PAGE_SECONDS = 5.0
BUDGET_ALERT_FRACTION = 0.8
BUDGET_ALERT = "budget_80"


class RunReporting:
    def __init__(self, prepared: PreparedRun, targets: list[Target], log: Callable[[str], None]) -> None:
        self.prepared = prepared
        self.log = log
        run = prepared.run
        self.page = StatusPage(run.suite_dir, run.suite, run.suite_id)
        self.notifier = Notifier(targets, run.suite, run.suite_id, run.suite_dir)
        self.last_page = 0.0
        self.last_seen: dict[str, float] = {}
        self.unreachable: set[str] = set()
        self.etl_failed = False
        self.cost: CostSoFar | None = None

    # --- events from the run --------------------------------------------------------------------------
    def job_ended(self, exp: ExpRuntime, key: JobKey, done: dict[str, dict], failed: bool) -> None:
        self.page.note_job(exp.name, key, exp.state.jobs[key].attempt, done.values())
        if failed:
            record = exp.state.jobs[key]
            self.notifier.send("failed", self.counts(),
                               f"first failed job: {exp.name} run {key[0]} rep {key[1]} "
                               f"(exit code {record.exit_code}); the suite goes on")

    def hosts_answered(self, hosts: list[str]) -> None:
        now = time.time()
        for host in hosts:
            self.last_seen[host] = now
            self.unreachable.discard(host)

    def host_unreachable(self, host: str, reason: str) -> None:
        if host in self.unreachable:
            return
        self.unreachable.add(host)
        self.notifier.send("host_lost", self.counts(), f"host {host} is unreachable ({reason or 'no answer'})")

    def etl_ran(self, ok: bool) -> None:
        if not ok and not self.etl_failed:
            self.notifier.send("etl_error", self.counts(), f"the ETL failed; see {self.prepared.suite_dir.name}/"
                                                           "ETL_ERROR.log")
        self.etl_failed = not ok

    def tick(self) -> None:
        """While jobs run: the cost against the budget, and the page at most every STATUS_PAGE_SECONDS."""
        self.check_budget()
        if time.monotonic() - self.last_page >= STATUS_PAGE_SECONDS:
            self.write_page(running=True)

    def check_budget(self) -> None:
        """budget_80 once the hosts' cost so far reaches BUDGET_ALERT_FRACTION of the budget: once per suite
        run (a marker in .doe/ keeps a resume from sending it again)."""
        self.cost = cost = self.prepared.cloud.cost(time.time())
        fraction = None if cost is None else cost.budget_fraction
        if cost is None or fraction is None or fraction < BUDGET_ALERT_FRACTION:
            return
        marker = _sent_marker(self.prepared.suite_dir, BUDGET_ALERT)
        if marker.exists():
            return
        self.notifier.send(BUDGET_ALERT, self.counts(),
                           f"cost so far ${cost.usd:.2f} is {100 * fraction:.0f}% of the budget "
                           f"${cost.budget_usd:.2f} (aws_budget_usd); the suite goes on")
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
        except OSError as error:
            self.log(f"warning: {marker} not written: {error}")

    def finished(self, summary: RunSummary) -> None:
        self.check_budget()
        self.write_page(running=False)
        if summary.interrupted:
            return
        counts = self.counts()
        state = "finished" if summary.complete else "stopped"
        failed = f", {counts[FAILED]} failed" if counts[FAILED] else ""
        self.notifier.send("finished", counts, f"{state}: {counts[FINISHED] + counts[FAILED]}/{counts['total']} "
                                               f"jobs{failed}{', ETL failed' if summary.etl_error else ''}")

    def stopped(self, error: str) -> None:
        """The run stopped on an error (a host gone for good, a failing playbook): said on the page and sent."""
        self.cost = self.prepared.cloud.cost(time.time())
        self.write_page(running=False, notes=[f"stopped: {error}"])
        self.notifier.send("finished", self.counts(), f"stopped by an error: {error}")

    # --- helpers ----------------------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        totals = {FINISHED: 0, FAILED: 0, "total": 0}
        for exp in self.prepared.exps.values():
            counts = exp.state.counts()
            totals[FINISHED] += counts[FINISHED]
            totals[FAILED] += counts[FAILED]
            totals["total"] += len(exp.state.jobs)
        return totals

    def write_page(self, *, running: bool, notes: list[str] | None = None) -> None:
        self.last_page = time.monotonic()
        prepared = self.prepared
        states = {name: exp.state for name, exp in prepared.exps.items()}
        hosts = []
        for slot in prepared.slots:
            host_vars = prepared.host_vars.get(slot.name, {})
            state = "unreachable" if slot.name in self.unreachable else ""
            hosts.append(HostInfo(slot.name, host_address(host_vars), slot.exp, prepared.cloud.name, state,
                                  self.last_seen.get(slot.name)))
        try:
            self.page.write(states, running=running, failed_jobs=failed_jobs(prepared.suite_dir, states), hosts=hosts,
                            notes=notes, cost=self.cost)
        except OSError as error:  # the page is a view: a full disk must not stop the run
            self.log(f"warning: status page not written: {error}")


def _sent_marker(suite_dir: Path, event: str) -> Path:
    return suite_dir / ".doe" / f"notified-{event}"


def notify_targets(project: Project, override: list[str] | None) -> list[Target]:
    """--notify, else `notify:` of group_vars/all; checked before anything of the run is created."""
    if override is not None:
        return parse_option(override)
    from doe_cli.settings import ALL_FILE, all_settings

    return parse_targets(all_settings(project).notify, ALL_FILE)
