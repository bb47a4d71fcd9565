"""Setting a suite's hosts up: once per suite id (and again only after cleanup removed the hosts, or
local hosts lost their folders). It is sent together with the first enqueue, which saves one Ansible
start-up; that round's jobs are built from the host variables the setup reports."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from doe_cli.ansible_adapter import PlaybookResult
from doe_cli.errors import DoeError, UserError
from doe_cli.fileio import write_atomic
from doe_cli.run import hostvars
from doe_cli.run.ansible_env import (
    ENQUEUE_TASKS,
    SETUP_FACTS_TASK,
    SETUP_GIT_TASK,
    SETUP_HOST_VARS_TASK,
    STATUS_TASK,
    stdout_hint,
)
from doe_cli.run.poll_reply import helper_report
from doe_cli.run.prepare import PreparedRun
from doe_cli.run.provenance import record_invocation, write_provenance
from doe_cli.run.runtime import EventHandler, PlaybookRunner
from doe_cli.run.state import setup_marker


class HostSetup:
    def __init__(self, prepared: PreparedRun, playbooks: PlaybookRunner, *, release_hosts: Callable[[], None],
                 log: Callable[[str], None]) -> None:
        self.prepared = prepared
        self.playbooks = playbooks
        self.release_hosts = release_hosts
        self.log = log
        self.host_var_reports = prepared.host_var_reports
        self.setup_vars: dict[str, Any] | None = None  # the setup's extra vars while it is to run

    @property
    def pending(self) -> bool:
        return self.setup_vars is not None

    def plan(self) -> None:
        """Whether the hosts need the setup: not if they were set up (and still are) for this suite id."""
        prepared = self.prepared
        marker = setup_marker(prepared.suite_dir)
        if marker.exists() and prepared.cloud.hosts_gone(prepared.host_vars):
            marker.unlink()  # their jobs are then unknown to the queues and run again
        if marker.exists() and self.host_var_reports is None:
            marker.unlink()  # set up without reporting host variables (by an earlier doe): report them now
        if marker.exists():
            record_invocation(prepared.suite_dir / "provenance.json")
            return
        self.log(f"setting up {len(prepared.slots)} host(s) of {prepared.suite_dir.name}")
        names = sorted({name for found in prepared.unrendered_host_vars().values() for name in found})
        self.setup_vars = {"setup_suite_repositories": prepared.repositories, "setup_suite_host_var_names": names}

    def run(self, round_vars: dict[str, Any] | None, on_event: EventHandler | None = None,
            enqueue_requests: Callable[[], dict[str, dict]] | None = None) -> PlaybookResult:
        """Setup, with the first round's enqueue and poll (round_vars) in the same Ansible run. That
        round's jobs are built from the host variables the setup reports (enqueue_requests builds its
        requests): setup-and-enqueue.yml waits for them in doe_first_round_file."""
        assert self.setup_vars is not None
        design_error: list[UserError] = []
        if round_vars:
            result = self._run_with_first_round(round_vars, design_error, on_event, enqueue_requests)
        else:
            result = self.playbooks.run("setup.yml", self.setup_vars)
            reported = result.task_results(SETUP_HOST_VARS_TASK)
            if all(slot.name in reported for slot in self.prepared.slots):
                try:
                    self._use_host_var_reports(reported)
                except UserError as error:
                    design_error.append(error)
        if self.setup_vars is not None:
            try:
                if design_error:
                    raise design_error[0]
                self.finish(result)
            except DoeError:
                self._release_after_failure()
                raise
        return result

    def _run_with_first_round(self, round_vars: dict[str, Any], design_error: list[UserError],
                              on_event: EventHandler | None,
                              enqueue_requests: Callable[[], dict[str, dict]] | None) -> PlaybookResult:
        assert self.setup_vars is not None
        first_round = self.prepared.suite_dir / ".doe" / "first_round.json"
        first_round.unlink(missing_ok=True)
        reports: dict[str, dict] = {}

        def on_setup_event(event: dict[str, Any]) -> None:
            kind, data = event.get("event"), event.get("event_data", {})
            if kind == "runner_on_ok" and data.get("task") == SETUP_HOST_VARS_TASK:
                reports[data.get("host")] = data.get("res") or {}
            elif kind in ("playbook_on_task_start", "playbook_on_play_start") and reports \
                    and not first_round.exists():
                # Every host has reported (tasks run on all hosts before the next starts).
                requests: dict[str, Any] = {"enqueue": {}, "poll": {}}  # a host without a report failed
                if all(slot.name in reports for slot in self.prepared.slots):
                    try:
                        self._use_host_var_reports(reports)
                        requests = {"enqueue": enqueue_requests() if enqueue_requests else {},
                                    "poll": round_vars.get("doe_poll_requests", {})}
                    except UserError as error:  # reported after the run; nothing is enqueued
                        design_error.append(error)
                write_atomic(first_round, json.dumps(requests), durable=False)
            if on_event is not None:
                on_event(event)

        deferred = ("doe_enqueue_requests", "doe_poll_requests")
        extravars = {**self.setup_vars, **{k: v for k, v in round_vars.items() if k not in deferred},
                     "doe_first_round_file": str(first_round)}
        return self.playbooks.run("setup-and-enqueue.yml", extravars, on_event=on_setup_event)

    def _use_host_var_reports(self, results: dict[str, dict]) -> None:
        """The setup's host variables, rendered on each host: the jobs are built (and checked) again
        with them."""
        from doe_cli.design import dump_yaml

        self.host_var_reports = {host: hostvars.report_of(res) for host, res in results.items()}
        extended = self.prepared.design.extend(self.prepared.exp_host_lst(self.host_var_reports))
        for name, exp in self.prepared.exps.items():
            exp.runs = extended[name]
        write_atomic(self.prepared.suite_dir / "suite_design_ext.yml", dump_yaml(extended))

    def _release_after_failure(self) -> None:
        """A setup that failed (on any host, so no host got jobs) keeps no SSH host locked and no local
        host's queue running: once the cause is fixed, `--id new` finds the hosts free, and a resume
        takes the locks again (and sets local hosts up again). --keep keeps them."""
        if self.prepared.options.keep:
            return
        self.log(f"setup failed: releasing the {len(self.prepared.slots)} host(s) of "
                 f"{self.prepared.suite_dir.name} (their queues stop, their locks go)")
        self.release_hosts()

    def finish(self, result: PlaybookResult) -> None:
        """Check the setup's results, write provenance.json and the setup marker."""
        prepared = self.prepared
        facts_results = result.task_results(SETUP_FACTS_TASK)
        # A host that reached the poll passed its setup; its failures there are the poll's.
        polled = result.task_results(STATUS_TASK)
        setup_failures = [f for f in result.failures() if f.task not in ENQUEUE_TASKS and f.host not in polled]
        reported = result.task_results(SETUP_HOST_VARS_TASK)
        # An Ansible error (an unknown module in a project role) stops the run with no host's task
        # failed; the setup is checked before any enqueue, so such an error is the setup's.
        if setup_failures or result.errors() or any(
                helper_report(facts_results.get(s.name, {})) is None or s.name not in reported
                for s in prepared.slots):
            output = result.command_output()  # a compiler's error, on lines of its own
            raise DoeError(f"setup failed: {result.summary(inline_output=not output)}{stdout_hint(result)}; "
                           f"fix it, then set up again with: {prepared.run.resume_command}"
                           + (f"\n{output}" if output else ""))
        facts = {host: (helper_report(res) or {}).get("facts", {}) for host, res in facts_results.items()}
        checkouts: dict[str, list[dict]] = {}
        for host, res in result.task_results(SETUP_GIT_TASK).items():
            checkouts[host] = [{**item.get("item", {}), "commit": item.get("after")}
                               for item in res.get("results", [])]
        hosts = {}
        for slot in prepared.slots:
            extra = {"instance_type": prepared.host_vars[slot.name].get("instance_type")}
            hosts[slot.name] = {"exp": slot.exp, "host_type": slot.host_type, "idx": slot.idx,
                                **facts.get(slot.name, {}), **{k: v for k, v in extra.items() if v}}
        write_provenance(prepared.suite_dir / "provenance.json", suite=prepared.run.suite,
                         suite_id=prepared.run.suite_id, cloud=prepared.cloud.name, hosts=hosts,
                         repositories=checkouts)
        hostvars.save_reports(prepared.suite_dir, self.host_var_reports or {})
        write_atomic(setup_marker(prepared.suite_dir), "setup finished\n")
        self.setup_vars = None
