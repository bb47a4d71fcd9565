"""`doe run`: prepare a suite run, set its hosts up once, then drive the jobs to completion.

The loop is a small state machine per experiment over the durable state files. Each tick makes one
Ansible call for all hosts of all experiments: it enqueues (a batch of jobs per host), then polls (job
states of every host, leftovers of completed multi-host jobs stopped, newly finished job dirs fetched
with one rsync per host); a tick with nothing to enqueue only polls, a new suite's first tick also
sets the hosts up, and a resumed suite's first tick on SSH hosts first checks and locks them, in the
same run. Hosts do the per-job work with their helper script (a host's last poll also shuts its queue
down); an Ansible round trip costs about a second, a job can cost milliseconds.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from doe_cli.ansible_adapter import AnsibleAdapter, PlaybookResult
from doe_cli.clouds import local as local_cloud
from doe_cli.clouds.inventory import stored_cloud
from doe_cli.config import Project, default_cloud
from doe_cli.errors import DoeError, UserError
from doe_cli.fileio import load_yaml, write_atomic
from doe_cli.run import code_version, hostvars
from doe_cli.run.fetch import place_results
from doe_cli.run.host_feed import ENQUEUE_WINDOW, MAX_MISSING_POLLS, MAX_REPORT, HostFeed
from doe_cli.run.hosts import HostSlot, assign_hosts, slots_of
from doe_cli.run.progress import Progress
from doe_cli.run.provenance import record_invocation, write_provenance
from doe_cli.run.state import (
    FAILED,
    FINISHED,
    PENDING,
    QUEUED,
    ExperimentState,
    setup_marker,
)
from doe_cli.run.status import failed_jobs, load_states, suite_experiments
from doe_cli.run.suite_id import resolve_suite_id
from etl.fileio import DOE_RECORD
from etl.layout import JobKey, host_dir_name, job_dir, parse_job_key, suite_folder, suite_folder_name

CMD = "$CMD$"
STATUS_TASK = "Stop leftovers of completed jobs and read the job states"
CLEANUP_TASK = "Stop every running job of this suite and the task spooler server"
FETCH_TASK = "Fetch the newly finished job dirs in one transfer into the staging dir"
ENQUEUE_TASKS = ("Enqueue this host's jobs",)
SETUP_FACTS_TASK = "Make the queue ready and record the host's hardware and kernel"
SETUP_GIT_TASK = "Check out the code repositories at their versions"
SETUP_HOST_VARS_TASK = "Report the host's variables rendered in its context"
SUPPORTED_CLOUDS = ("local",)
# An enqueue or a host's poll failing this many times in a row stops the run (the jobs keep running).
MAX_FAILURES_IN_A_ROW = 5
KEPT_ANSIBLE_DIRS = 20
# One host-helper request per command line: Linux limits one argument to 128 KiB (base64 adds a third).
MAX_REQUEST_BYTES = 64 * 1024
# Seconds the readiness barrier waits for first-phase jobs (servers) to start; their queue is empty then.
BARRIER_TIMEOUT = 120


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


def normalise_repositories(value: Any) -> list[dict]:
    """git_remote_repository: URL | {repo, version, dir} | list -> [{repo, version, dir}]."""
    items = value if isinstance(value, list) else [value] if value else []
    repos = []
    for index, item in enumerate(items):
        if isinstance(item, str):
            item = {"repo": item}
        if not isinstance(item, dict) or not isinstance(item.get("repo"), str):
            raise UserError("expected a URL or a mapping {repo, version, dir}", file="group_vars/all/main.yml",
                            path=f"git_remote_repository[{index}]")
        default_dir = "code" if index == 0 else Path(item["repo"].rstrip("/")).name.removesuffix(".git")
        repos.append({"repo": item["repo"], "version": str(item.get("version", "HEAD")),
                      "dir": str(item.get("dir", default_dir))})
    return repos


def load_group_vars(project: Project, group: str) -> dict:
    folder = project.group_vars_dir / group
    files = sorted(folder.glob("*.y*ml"), key=lambda f: (f.name != "main.yml", f.name)) if folder.is_dir() \
        else [p for p in (project.group_vars_dir / f"{group}.yml",) if p.is_file()]
    merged: dict = {}
    for file in files:
        content = load_yaml(file.read_text(encoding="utf-8"))
        if isinstance(content, dict):
            merged.update(content)
    return merged


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


class Controller:
    def __init__(self, project: Project, options: RunOptions, *, log: Callable[[str], None],
                 progress: Progress | None = None) -> None:
        self.project = project
        self.options = options
        self.log = log
        self.progress = progress
        self.stop_event = threading.Event()
        self.interrupted = False
        self.exps: dict[str, ExpRuntime] = {}
        self.poll_failures: dict[str, int] = {}
        self.enqueue_failures = 0
        self.unreachable_since: dict[str, float] = {}  # hosts that did not answer, since when
        self.shut_down: set[str] = set()  # hosts whose queue a final status already shut down
        self.last_etl = time.monotonic()  # the first ETL waits the minimum delay too
        self.new_results_since_etl = False
        self.etl_error = False

    # --- preparation ------------------------------------------------------------------------------
    def resolve_suite(self) -> None:
        self.suite_id, self.is_new = resolve_suite_id(self.project.results_dir, self.options.suite, self.options.id)
        self.suite_dir = suite_folder(self.project.results_dir, self.options.suite, self.suite_id)

    def finished_summary(self) -> RunSummary | None:
        """A resumed suite with no job left to run: the ETL (which reads only what changed) and the
        summary, without any host (no cloud, no Ansible). None if there is work: jobs to run or retry,
        or hosts a --keep run left, which the regular run cleans up."""
        if self.is_new or (setup_marker(self.suite_dir).exists() and not self.options.keep):
            return None
        states = load_states(self.options.suite, self.suite_id, self.suite_dir)
        if not states or len(states) != len(suite_experiments(self.suite_dir)) \
                or not all(state.done() for state in states.values()) \
                or self.options.retry_failed and any(state.with_status(FAILED) for state in states.values()):
            return None
        self.lock = SuiteLock(self.suite_dir / ".doe" / "lock")
        self.log(f"{self.suite_dir.name} is complete: no job left to run; no host is touched")
        if (load_yaml((self.suite_dir / "suite_design.yml").read_text(encoding="utf-8")) or {}).get("$ETL$"):
            self.etl_error = not run_etl(self.suite_dir, self.project)
        return RunSummary(suite=self.options.suite, suite_id=self.suite_id, suite_dir=self.suite_dir, complete=True,
                          counts={name: state.counts() for name, state in states.items()},
                          failed_jobs=failed_jobs(self.suite_dir, states),
                          etl_error=self.etl_error or (self.suite_dir / "ETL_ERROR.log").exists())

    def prepare(self) -> None:
        from doe_cli.design import dump_yaml, load_stored_suite, load_suite

        opts = self.options
        stored = None if self.is_new else stored_cloud(self.suite_dir)
        if opts.cloud is None:
            opts.cloud = stored or default_cloud()
            if stored is not None and stored != "local":
                self.log(f"note: {self.suite_dir.name} runs on cloud {stored!r}; resuming there")
        if stored is not None and stored != opts.cloud:
            if opts.cloud != "local":
                raise UserError(f"{self.suite_dir.name} runs on cloud {stored!r}; resume it with --cloud {stored}",
                                path="--cloud")
            self.log(f"note: {self.suite_dir.name} runs on cloud {stored!r}; resuming there")
            opts.cloud = stored
        self.ssh = None  # any cloud but local: existing hosts from inventory/<cloud>.yml
        if opts.cloud == "aws":  # instances provisioned for the suite, then used as SSH hosts
            from doe_cli.clouds.aws.cloud import AwsCloud

            self.ssh = AwsCloud.create(self.project, opts.suite, self.suite_id, accept_cost=opts.yes, log=self.log)
        elif opts.cloud not in SUPPORTED_CLOUDS:
            from doe_cli.clouds.ssh import SshCloud

            self.ssh = SshCloud.load(self.project, opts.cloud, {"suite": opts.suite, "cloud": opts.cloud})
        variables = {"suite": opts.suite, "id": self.suite_id, "cloud": opts.cloud}
        if self.is_new:
            suite = load_suite(self.project, opts.suite, variables=variables, strict=True)
            if opts.expfilter:
                suite = suite.filter(opts.expfilter)
        else:
            if opts.expfilter:
                self.log(f"note: --expfilter applies to new runs only; {self.suite_dir.name} keeps its experiments")
            suite = load_stored_suite(self.project, self.suite_dir / "suite_design.yml", opts.suite)
        self.suite = suite
        self.slots = assign_hosts(suite)
        self.base = local_cloud.local_base_dir(opts.local_dir)
        self.host_check_pending = False  # the first round checks and locks the SSH hosts
        if self.ssh is not None:
            # Enough hosts, each answering, writable and free: checked (and locked) before anything is set up.
            # A resumed suite whose hosts are set up knows their folders; its first round checks them.
            self.ssh.assign(self.slots)
            ensure_ansible_on_path()
            set_up = not self.is_new and setup_marker(self.suite_dir).exists()
            if set_up and self.ssh.paths_from_inventory(self.suite_dir):
                self.host_check_pending = True
            else:
                self.ssh.preflight(self.suite_dir.name, force=opts.force, work_dir=Path(tempfile.gettempdir()),
                                   control_path_dir=control_path_dir(self.suite_dir), log=self.log)
        try:
            self.repositories = code_version.fixed_repositories(
                normalise_repositories(load_group_vars(self.project, "all").get("git_remote_repository")),
                self.suite_dir, new=self.is_new)
            self.context_vars = hostvars.context_vars(
                self.project, opts.suite, opts.cloud, self.repositories[0]["dir"] if self.repositories else "code",
                local=self.ssh is None)
            host_vars = self._host_vars()
            # The host variables a resumed suite's hosts reported at setup; a new suite's come with its setup.
            self.host_var_reports = None if self.is_new else hostvars.load_reports(self.suite_dir)
            exp_host_lst = self._exp_host_lst(host_vars)
            # Render and check every command before anything is created (bad input creates nothing).
            extended = suite.extend(exp_host_lst)
        except BaseException:
            if self.ssh is not None and self.is_new:
                self.ssh.release(self.suite_dir.name, work_dir=Path(tempfile.gettempdir()),
                                 control_path_dir=control_path_dir(self.suite_dir))
            raise

        if self.is_new:
            self.suite_dir.mkdir(parents=True, exist_ok=False)
            suite.write_resolved(self.suite_dir / "suite_design.yml")
            code_version.store(self.suite_dir, self.repositories)
            (self.suite_dir / "etl_results").mkdir(exist_ok=True)
            (self.suite_dir / "etl_results" / ".gitkeep").touch()
        self.lock = SuiteLock(self.suite_dir / ".doe" / "lock")
        write_atomic(self.suite_dir / "suite_design_ext.yml", dump_yaml(extended))
        if self.ssh is not None:
            self.inventory = self.ssh.write_inventory(self.suite_dir, self.slots, host_vars, self.context_vars)
        else:
            self.inventory = local_cloud.write_inventory(self.project, self.suite_dir, self.slots, host_vars,
                                                         self.context_vars, remove_host_dirs=not opts.keep)
        self.host_vars = host_vars
        self.staging = self.suite_dir / ".doe" / "staging"
        shutil.rmtree(self.staging, ignore_errors=True)
        self.adapter = AnsibleAdapter(self.suite_dir / ".doe" / "ansible", roles_paths=[self.project.roles_dir],
                                      control_path_dir=control_path_dir(self.suite_dir),
                                      config_dir=self.project.config_dir)
        ensure_ansible_on_path()
        self.job_timeouts = self._job_timeouts()
        self.max_file_bytes = self._max_file_bytes()
        # On one machine, experiments running at once disturb each other's timings: one at a time unless asked.
        self.one_experiment_at_a_time = self.ssh is None and not (
            opts.parallel or _true(load_group_vars(self.project, "all").get("local_parallel")))

        for name, exp in suite.experiments.items():
            slots = slots_of(self.slots, name)
            checked = {s.name for s in slots if exp.host_types[s.host_type].check_status}
            if not checked:  # no polled host: every host decides
                checked = {s.name for s in slots}
            first = {s.name for s in slots if s.name not in checked}
            path = self.suite_dir / name / "state.yml"
            n_runs = len(extended[name])
            if path.exists():
                state = ExperimentState.load(path, opts.suite, self.suite_id, name)
                if len(state.jobs) != n_runs * exp.n_repetitions:
                    raise DoeError(f"{path}: {len(state.jobs)} jobs, but the stored design has "
                                   f"{n_runs * exp.n_repetitions}")
            else:
                state = ExperimentState.new(opts.suite, self.suite_id, name, n_runs, exp.n_repetitions)
            if opts.retry_failed:
                for key in state.with_status(FAILED):
                    record = state.jobs[key]
                    self._set_attempt_aside(name, key, record.attempt)
                    state.set(key, PENDING, attempt=record.attempt + 1)
            state.save(path)
            self.exps[name] = ExpRuntime(name=name, state=state, state_path=path, slots=slots, check_hosts=checked,
                                         first_phase=first, runs=extended[name], n_reps=exp.n_repetitions)

    def _set_attempt_aside(self, exp: str, key: JobKey, attempt: int) -> None:
        """Fetched results are never overwritten: a retried job's earlier results move to
        `rep_<j>/.attempt_<n>/` (hidden, so the ETL reads only the current attempt)."""
        rep_dir = self.suite_dir / job_dir(exp, key)
        target = rep_dir / f".attempt_{attempt}"
        for host_type in self.suite.experiments[exp].host_types:
            source = rep_dir / host_type
            if source.is_dir() and not source.is_symlink():
                target.mkdir(parents=True, exist_ok=True)
                os.rename(source, target / host_type)

    def _host_vars(self) -> dict[str, dict]:
        hosts = {}
        for slot in self.slots:
            exp = self.suite.experiments[slot.exp]
            host_type = exp.host_types[slot.host_type]
            roles = [*exp.common_roles, *host_type.init_roles]
            setup_roles = [{"name": role, "tasks_from": self._tasks_from(role)} for role in roles]
            if self.ssh is not None:
                prj_id = str(load_group_vars(self.project, "all").get("prj_id") or "doe")
                hosts[slot.name] = self.ssh.host_vars(prj_id, self.suite_dir.name, slot, host_type.check_status,
                                                      setup_roles)
                continue
            hosts[slot.name] = local_cloud.host_vars(self.base, suite_folder_name(self.options.suite, self.suite_id), slot,
                                                     host_type.check_status, setup_roles)
        return hosts

    def _tasks_from(self, role: str) -> str:
        tasks = self.project.roles_dir / role / "tasks"
        return self.options.cloud if (tasks / f"{self.options.cloud}.yml").is_file() else "main"

    def _unrendered_host_vars(self, host_vars: dict[str, dict]) -> dict[str, dict]:
        """Per host, its variables as written: doe's context, group_vars (all, then the host type's),
        then its inventory vars."""
        group_all = load_group_vars(self.project, "all")
        return {slot.name: {**self.context_vars, **group_all, **load_group_vars(self.project, slot.host_type),
                            **host_vars[slot.name], "inventory_hostname": slot.name} for slot in self.slots}

    def _exp_host_lst(self, host_vars: dict[str, dict]) -> dict[str, list[dict]]:
        """Each experiment's hosts as designs see them: hostvars as the setup rendered them on each host
        (before the setup, values with templates are placeholders)."""
        unrendered = self._unrendered_host_vars(host_vars)
        result: dict[str, list[dict]] = {}
        for slot in self.slots:
            if self.host_var_reports is not None:
                merged = hostvars.from_report(self.host_var_reports.get(slot.name, {}), slot.name)
            else:
                merged = hostvars.before_setup(unrendered[slot.name])
            result.setdefault(slot.exp, []).append({
                "host_type": slot.host_type, "host_type_idx": slot.idx, "host_type_n": slot.n,
                "public_dns_name": host_vars[slot.name].get("public_dns_name"),
                "private_dns_name": host_vars[slot.name].get("private_dns_name"), "hostvars": merged})
        return result

    def _use_host_var_reports(self, results: dict[str, dict]) -> None:
        """The setup's host variables, rendered on each host: the jobs are built (and checked) again
        with them."""
        from doe_cli.design import dump_yaml

        self.host_var_reports = {host: hostvars.report_of(res) for host, res in results.items()}
        extended = self.suite.extend(self._exp_host_lst(self.host_vars))
        for name, exp in self.exps.items():
            exp.runs = extended[name]
        write_atomic(self.suite_dir / "suite_design_ext.yml", dump_yaml(extended))

    def _job_timeouts(self) -> dict[str, float | None]:
        """Per host: --job-timeout, else the experiment's job_timeout in the design, else the inventory's
        host var (SSH), else group_vars (host type, then all)."""
        if self.options.job_timeout:
            return {slot.name: self.options.job_timeout for slot in self.slots}
        group_all = load_group_vars(self.project, "all")
        timeouts = {}
        for slot in self.slots:
            designed = self.suite.experiments[slot.exp].job_timeout
            if designed is not None:  # validated with the design
                timeouts[slot.name] = float(designed)
                continue
            value = load_group_vars(self.project, slot.host_type).get("job_timeout", group_all.get("job_timeout"))
            value = self.host_vars[slot.name].get("job_timeout", value)  # an SSH inventory's host var wins
            try:
                timeouts[slot.name] = float(value) if value else None
            except (TypeError, ValueError):
                raise UserError(f"expected a number of seconds, got {value!r}", path="job_timeout",
                                file=f"group_vars/{slot.host_type}") from None
        return timeouts

    # --- setup ------------------------------------------------------------------------------------
    def setup(self) -> None:
        """Setup runs once per suite id (and again only after cleanup removed the hosts). It is sent
        together with the first enqueue, which saves one Ansible start-up."""
        self.setup_vars: dict[str, Any] | None = None
        marker = setup_marker(self.suite_dir)
        if marker.exists() and self.ssh is None and not all(
                (Path(host["job_queue_dir"]) / "bin" / "doe_queue.py").is_file() for host in self.host_vars.values()):
            # Local hosts whose folders are gone (deleted, or a tmpfs after a reboot) are set up again;
            # their jobs are then unknown to the queues and run again.
            marker.unlink()
        if marker.exists() and self.host_var_reports is None:
            marker.unlink()  # set up without reporting host variables (by an earlier doe): report them now
        if marker.exists():
            record_invocation(self.suite_dir / "provenance.json")
            return
        self.log(f"setting up {len(self.slots)} host(s) of {self.suite_dir.name}")
        names = sorted({name for found in self._unrendered_host_vars(self.host_vars).values() for name in found})
        self.setup_vars = {"setup_suite_repositories": self.repositories, "setup_suite_host_var_names": names}

    def _run_setup(self, round_vars: dict[str, Any] | None,
                   on_event: Callable[[dict[str, Any]], None] | None = None,
                   enqueue_requests: Callable[[], dict[str, dict]] | None = None) -> PlaybookResult:
        """Setup, with the first round's enqueue and poll (round_vars) in the same Ansible run. That
        round's jobs are built from the host variables the setup reports (enqueue_requests builds its
        requests): setup-and-enqueue.yml waits for them in doe_first_round_file."""
        assert self.setup_vars is not None
        design_error: list[UserError] = []
        if round_vars:
            first_round = self.suite_dir / ".doe" / "first_round.json"
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
                    if all(slot.name in reports for slot in self.slots):
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
            result = self._playbook("setup-and-enqueue.yml", extravars, on_event=on_setup_event)
        else:
            result = self._playbook("setup.yml", self.setup_vars)
            reported = result.task_results(SETUP_HOST_VARS_TASK)
            if all(slot.name in reported for slot in self.slots):
                try:
                    self._use_host_var_reports(reported)
                except UserError as error:
                    design_error.append(error)
        if self.setup_vars is not None:
            try:
                if design_error:
                    raise design_error[0]
                self._finish_setup(result)
            except DoeError:
                self._release_after_failed_setup()
                raise
        return result

    def _release_after_failed_setup(self) -> None:
        """A setup that failed (on any host, so no host got jobs) keeps no SSH host locked and no local
        host's queue running: once the cause is fixed, `--id new` finds the hosts free, and a resume
        takes the locks again (and sets local hosts up again). --keep keeps them."""
        if self.options.keep:
            return
        self.log(f"setup failed: releasing the {len(self.slots)} host(s) of {self.suite_dir.name} "
                 "(their queues stop, their locks go)")
        self._cleanup()

    def _finish_setup(self, result: PlaybookResult) -> None:
        """Check the setup's results, write provenance.json and the setup marker."""
        facts_results = result.task_results(SETUP_FACTS_TASK)
        # A host that reached the poll passed its setup; its failures there are the poll's.
        polled = result.task_results(STATUS_TASK)
        setup_failures = [f for f in result.failures() if f.task not in ENQUEUE_TASKS and f.host not in polled]
        reported = result.task_results(SETUP_HOST_VARS_TASK)
        # An Ansible error (an unknown module in a project role) stops the run with no host's task
        # failed; the setup is checked before any enqueue, so such an error is the setup's.
        if setup_failures or result.errors() or any(
                helper_report(facts_results.get(s.name, {})) is None or s.name not in reported for s in self.slots):
            output = result.command_output()  # a compiler's error, on lines of its own
            raise DoeError(f"setup failed: {result.summary(inline_output=not output)}{_stdout_hint(result)}; "
                           f"fix it, then set up again with: {self.resume_command()}"
                           + (f"\n{output}" if output else ""))
        facts = {host: (helper_report(res) or {}).get("facts", {}) for host, res in facts_results.items()}
        checkouts: dict[str, list[dict]] = {}
        for host, res in result.task_results(SETUP_GIT_TASK).items():
            checkouts[host] = [{**item.get("item", {}), "commit": item.get("after")}
                               for item in res.get("results", [])]
        hosts = {}
        for slot in self.slots:
            extra = {"instance_type": self.host_vars[slot.name].get("instance_type")}
            hosts[slot.name] = {"exp": slot.exp, "host_type": slot.host_type, "idx": slot.idx,
                                **facts.get(slot.name, {}), **{k: v for k, v in extra.items() if v}}
        write_provenance(self.suite_dir / "provenance.json", suite=self.options.suite, suite_id=self.suite_id,
                         cloud=self.options.cloud, hosts=hosts, repositories=checkouts)
        hostvars.save_reports(self.suite_dir, self.host_var_reports or {})
        write_atomic(setup_marker(self.suite_dir), "setup finished\n")
        self.setup_vars = None

    def _playbook(self, playbook: str, extravars: dict[str, Any], limit: list[str] | None = None,
                  on_event: Callable[[dict[str, Any]], None] | None = None) -> PlaybookResult:
        progress_event = self.progress.event if self.progress is not None else None

        def handle(event: dict[str, Any]) -> None:
            if on_event is not None:
                on_event(event)
            if progress_event is not None:
                progress_event(event)

        # With a cancel callback ansible-runner leaves SIGINT alone (otherwise it takes the handler over
        # for good); Ctrl-C sets our flag, the runner stops the playbook, and the loop ends cleanly.
        result = self.adapter.run(playbook, inventory=self.inventory, extravars=extravars,
                                  limit=",".join(limit) if limit else None, cancel=lambda: self.interrupted,
                                  on_event=handle)
        self._prune_ansible_dirs()
        if self.interrupted:
            raise KeyboardInterrupt
        return result

    def _prune_ansible_dirs(self) -> None:
        folders = sorted(p for p in self.adapter.work_dir.iterdir() if p.is_dir())
        for old in folders[:-KEPT_ANSIBLE_DIRS]:
            shutil.rmtree(old, ignore_errors=True)

    # --- the loop ---------------------------------------------------------------------------------
    def _on_interrupt(self, _signum, _frame) -> None:
        if not self.interrupted:  # answered once, at once; the round in flight is stopped next
            self.log("stopping: queued jobs keep running; resume with: " + self.resume_command())
        self.interrupted = True
        self.stop_event.set()

    def run(self) -> RunSummary:
        start = time.monotonic()
        if self._all_done() and self.setup_vars is not None:
            return self.summary()  # a finished suite whose hosts were cleaned up: nothing to do
        self._show()
        previous = signal.signal(signal.SIGINT, self._on_interrupt)
        try:
            while not self._all_done():
                if self.options.timeout and time.monotonic() - start > self.options.timeout:
                    raise DoeError(f"stopped after --timeout {self.options.timeout:g} s; the queued jobs keep "
                                   f"running; resume with: {self.resume_command()}")
                tick = time.monotonic()
                if not self._enqueue_tick():
                    self._poll_tick()
                self._maybe_etl(final=False)
                self._show()
                if self._all_done():
                    break
                if not self._stops_pending():
                    self.stop_event.wait(max(0.0, self.options.poll_interval - (time.monotonic() - tick)))
                if self.interrupted:
                    raise KeyboardInterrupt
        except KeyboardInterrupt:  # said in _on_interrupt
            return replace(self.summary(), interrupted=True)
        finally:
            signal.signal(signal.SIGINT, previous)
        self._maybe_etl(final=True)
        if not self.options.keep:
            self._cleanup()
        return self.summary()

    def _cleanup(self) -> None:
        """Shut down the queues the final polls did not, then remove the local hosts' folders."""
        remaining = [slot.name for slot in self.slots if slot.name not in self.shut_down]
        locked = list(remaining)
        if remaining:
            result = self._playbook("cleanup.yml", {}, limit=remaining)
            if not result.ok:
                self.log(f"warning: cleanup failed: {result.summary()}")
                return
            # A shutdown by the host helper releases the lock too; a host without the helper keeps it.
            shutdowns = result.task_results(CLEANUP_TASK)
            locked = [host for host in remaining if helper_report(shutdowns.get(host, {})) is None]
        if self.ssh is not None:  # results stay on the hosts; the suite's locks go
            # The queue shutdowns (final polls, cleanup) released the locks of their hosts.
            if not self.ssh.release(self.suite_dir.name, work_dir=self.suite_dir / ".doe", only=locked,
                                    control_path_dir=control_path_dir(self.suite_dir)):
                self.log("warning: could not release the lock on every host (doe.lock under the remote dir)")
        else:
            local_cloud.remove_suite_leftovers(self.host_vars, self.base / suite_folder_name(self.options.suite, self.suite_id))
        # The hosts are gone; a later resume (e.g. --retry-failed) sets new ones up.
        setup_marker(self.suite_dir).unlink(missing_ok=True)

    def _stops_pending(self) -> bool:
        """A multi-host job whose polled hosts finished waits for its other hosts to be stopped: no pause."""
        return any(exp.check_hosts <= set(done) for exp in self.exps.values() for done in exp.host_done.values())

    def resume_command(self) -> str:
        return f"doe run --suite {self.options.suite} --id {self.suite_id}"

    def _all_done(self) -> bool:
        return all(exp.state.done() for exp in self.exps.values())

    def _show(self) -> None:
        if self.progress is not None:
            self.progress.update({name: (exp.state.counts(), exp.running) for name, exp in self.exps.items()})

    def _enqueue_chunks(self, exp: ExpRuntime, keys: list[JobKey], slot: HostSlot, stop: list[str],
                        wait_started: bool) -> list[str]:
        """A host's batch as base64 requests, each small enough for one command line."""
        base = {"exp": exp.name, "host": slot.name, "host_type": slot.host_type, "host_idx": slot.idx,
                "timeout": self.job_timeouts.get(slot.name), "stop": stop, "wait_started": wait_started,
                "wait_timeout": BARRIER_TIMEOUT}
        chunks, jobs, runs, size = [], [], {}, 0
        for key in keys:
            if str(key[0]) not in runs:
                runs[str(key[0])] = exp.runs[key[0]]
                size += len(json.dumps(exp.runs[key[0]]))
            jobs.append([key[0], key[1], exp.state.jobs[key].attempt])
            size += 16
            if size > MAX_REQUEST_BYTES:
                chunks.append(encode_request({**base, "runs": runs, "jobs": jobs}))
                jobs, runs, size = [], {}, 0
        if jobs or not chunks:
            chunks.append(encode_request({**base, "runs": runs, "jobs": jobs}))
        return chunks

    def _enqueue_tick(self) -> bool:
        """Enqueue what is due and, in the same Ansible run, poll as the next poll tick would (with the
        new jobs queued). Returns whether that poll happened."""
        due: dict[str, tuple] = {}  # per host: what _enqueue_chunks needs
        batch: dict[str, list[JobKey]] = {}
        unfinished = [exp for exp in self.exps.values() if not exp.state.done()]
        for exp in unfinished[:1] if self.one_experiment_at_a_time else unfinished:
            n_pending = exp.state.counts()[PENDING]
            if not n_pending:
                continue
            draining: list[JobKey] = []
            if exp.multi:
                # One job at a time on all hosts. A job whose polled hosts finished only waits for its
                # other hosts (servers) to be stopped: the enqueue stops them before the next job starts.
                queued = exp.state.with_status(QUEUED)
                draining = [key for key in queued if exp.check_hosts <= set(exp.host_done.get(key, {}))]
                if len(draining) < len(queued):
                    continue
                keys = exp.state.first_pending(1)
            else:
                # A window of jobs per host, refilled once half of it is done.
                room = ENQUEUE_WINDOW - len(exp.feeds[exp.slots[0].name].outstanding)
                if room < min(n_pending, ENQUEUE_WINDOW // 2):
                    continue
                keys = exp.state.first_pending(room)
            batch[exp.name] = keys
            for slot in exp.slots:
                stop = [job_dir(exp.name, key) for key in draining if slot.name not in exp.host_done.get(key, {})]
                due[slot.name] = (exp, keys, slot, stop, slot.name in exp.first_phase)

        def enqueue_requests() -> dict[str, dict]:
            # Built again once a new suite's setup reported the host variables the commands use.
            return {host: {"phase": 1 if first else 2,
                           "chunks": self._enqueue_chunks(exp, keys, slot, stop, wait_started=first)}
                    for host, (exp, keys, slot, stop, first) in due.items()}

        requests = enqueue_requests()
        poll_requests = self._poll_requests(queued_too=batch) if requests else {}
        round_vars = {"doe_enqueue_requests": requests, "doe_poll_requests": poll_requests,
                      "job_queue_staging_dir": str(self.staging)}
        # The run's events record progress as it happens: the setup once every host is set up (the
        # enqueue starts), the queued jobs once every enqueue returned (the poll starts). So a Ctrl-C or
        # a kill during the round's long poll neither repeats the setup nor hides queued jobs.
        seen: list[dict] = []

        def on_event(event: dict[str, Any]) -> None:
            kind = event.get("event")
            if kind in ("runner_on_ok", "runner_on_failed", "runner_on_unreachable"):
                seen.append(event)
            if kind != "playbook_on_task_start":
                return
            task = event.get("event_data", {}).get("task")
            so_far = PlaybookResult(playbook="", status="running", rc=0, stats={}, events=list(seen))
            if task in ENQUEUE_TASKS and self.setup_vars is not None:
                with contextlib.suppress(DoeError):  # a failed setup is reported after the run
                    self._finish_setup(so_far)
            elif task == STATUS_TASK:
                self._mark_queued(so_far, batch)

        if self.setup_vars is not None:
            result = self._run_setup(round_vars if requests else None, on_event=on_event,
                                     enqueue_requests=enqueue_requests)
            if not requests:
                return False
        elif not requests:
            return False
        else:
            result = self._round(round_vars, sorted(set(requests) | set(poll_requests)), on_event=on_event)
        accepted = self._mark_queued(result, batch)
        unreachable = self._unreachable(result)
        self._note_unreachable(unreachable, result)
        if all(host in accepted or host in unreachable for host in requests):
            self.enqueue_failures = 0  # unreachable hosts get their jobs once they answer again
        else:
            self.enqueue_failures += 1
            if self.enqueue_failures >= MAX_FAILURES_IN_A_ROW:
                raise DoeError(f"enqueue failed {MAX_FAILURES_IN_A_ROW} times in a row: {result.summary()}"
                               f"{_stdout_hint(result)}; resume with: {self.resume_command()}")
            self.log(f"warning: enqueue failed on some hosts, retrying next round: {result.summary()}"
                     f"{_stdout_hint(result)}")
        # A host whose enqueue failed did not get to the poll; that is no poll failure.
        self._read_poll(result, {host: request for host, request in poll_requests.items()
                                 if host not in requests or host in accepted})
        return True

    def _mark_queued(self, result: PlaybookResult, batch: dict[str, list[JobKey]]) -> set[str]:
        """The batch's jobs of experiments whose hosts all accepted them are queued (saved); returns
        the hosts that accepted. Marking twice changes nothing."""
        accepted: set[str] = set()
        for task in ENQUEUE_TASKS:
            for host, res in result.task_results(task).items():
                if not res.get("failed") and all(helper_report(item) is not None
                                                 for item in res.get("results", [])):
                    accepted.add(host)
        for name, keys in batch.items():
            exp = self.exps[name]
            if not all(host in accepted for host in exp.hosts):
                continue
            pending = [key for key in keys if exp.state.jobs[key].status == PENDING]
            for key in pending:
                exp.state.set(key, QUEUED)
                self._write_config_json(exp, key)
            for feed in exp.feeds.values():
                feed.outstanding.update(pending)
            exp.state.record(exp.state_path)
        return accepted

    def _write_config_json(self, exp: ExpRuntime, key: JobKey) -> None:
        from doe_cli.design import config_json

        path = self.suite_dir / job_dir(exp.name, key) / "config.json"
        if not path.exists():
            write_atomic(path, config_json(exp.runs[key[0]]), durable=False)

    def _poll_tick(self) -> None:
        requests = self._poll_requests()
        if not requests:
            return
        if self.host_check_pending:
            result = self._round({"doe_enqueue_requests": {}, "doe_poll_requests": requests,
                                  "job_queue_staging_dir": str(self.staging)}, limit=list(requests))
        else:
            result = self._playbook("poll.yml", {"job_queue_requests": requests,
                                                 "job_queue_staging_dir": str(self.staging)}, limit=list(requests))
        self._read_poll(result, requests)

    def _round(self, round_vars: dict[str, Any], limit: list[str],
               on_event: Callable[[dict[str, Any]], None] | None = None) -> PlaybookResult:
        """enqueue-and-poll.yml. The first round of a resumed suite on SSH hosts first checks and locks
        every host of the suite in the same run; one that fails stops them all before any enqueue."""
        if not self.host_check_pending:
            return self._playbook("enqueue-and-poll.yml", round_vars, limit=limit, on_event=on_event)
        assert self.ssh is not None
        result = self._playbook("enqueue-and-poll.yml",
                                {**round_vars, "doe_host_check": True, "ssh_host_force": self.options.force},
                                on_event=on_event)
        self.ssh.read_check(result, self.suite_dir.name, work_dir=self.suite_dir / ".doe",
                            control_path_dir=control_path_dir(self.suite_dir), log=self.log)
        self.host_check_pending = False
        return result

    def _poll_requests(self, queued_too: dict[str, list[JobKey]] | None = None) -> dict[str, dict]:
        """Per host with queued jobs (or jobs of queued_too, about to be queued): its poll request."""
        requests: dict[str, dict] = {}
        stops_pending = self._stops_pending()
        for exp in self.exps.values():
            about_to_queue = (queued_too or {}).get(exp.name, [])
            # The hosts' last jobs are named: their queues shut down once those are done.
            final = not self.options.keep and exp.state.counts()[PENDING] <= len(about_to_queue)
            for slot in exp.slots:
                feed = exp.feeds[slot.name]
                outstanding = feed.outstanding.union(about_to_queue)
                if not outstanding:
                    continue
                named, all_named = feed.named_jobs(outstanding, final)
                request: dict[str, Any] = {
                    "exp": exp.name, "cursor": feed.cursor, "max_report": MAX_REPORT,
                    "max_file_bytes": self.max_file_bytes,
                    "jobs": [[key[0], key[1], exp.state.jobs[key].attempt] for key in named],
                    # The polled hosts finished these multi-host jobs: stop the rest (servers) of each.
                    "stop": [job_dir(exp.name, key) for key, done in exp.host_done.items()
                             if exp.check_hosts <= set(done) and slot.name not in done]}
                if final and all_named:
                    request["final"] = True
                # Long poll on hosts whose jobs decide completion, unless a multi-host job waits to be
                # stopped or the journal has more to report; with jobs left to enqueue, the answer comes
                # once half the window is done.
                if slot.name in exp.check_hosts and not stops_pending and not feed.more:
                    request["wait"] = self.options.long_poll
                    left_after = 0 if final else ENQUEUE_WINDOW // 2
                    request["wait_for"] = max(1, len(outstanding) - left_after)
                requests[slot.name] = request
                (self.staging / slot.name).mkdir(parents=True, exist_ok=True)
        return {host: {"request": encode_request(request)} for host, request in requests.items()}

    def _read_poll(self, result: PlaybookResult, requests: dict[str, dict]) -> None:
        """Job states, fetched results and failures of the hosts polled with `requests`."""
        unreachable = self._unreachable(result)
        statuses = result.task_results(STATUS_TASK)
        reports = {host: helper_report(res) for host, res in statuses.items()}
        # A status without a readable report (it could not be parsed, or was too large to pass) is a failed poll.
        broken = result.failed_hosts() | set(unreachable) | {host for host, report in reports.items() if report is None}
        self._note_unreachable(unreachable, result)
        for host in requests:
            if host in unreachable:
                continue  # its jobs keep running; the other hosts are polled meanwhile
            if host in broken or host not in statuses:
                self.poll_failures[host] = self.poll_failures.get(host, 0) + 1
                if self.poll_failures[host] >= MAX_FAILURES_IN_A_ROW:
                    raise DoeError(f"polling host {host} failed {MAX_FAILURES_IN_A_ROW} times in a row: "
                                   f"{result.summary()}{_stdout_hint(result)}; jobs keep running; resume with: "
                                   f"{self.resume_command()}")
                continue
            self.poll_failures[host] = 0
        by_host = {slot.name: (exp, slot) for exp in self.exps.values() for slot in exp.slots}
        changed: set[str] = set()
        running: dict[str, set[JobKey]] = {name: set() for name in self.exps}  # a multi-host job counts once
        queue_running: dict[str, int] = dict.fromkeys(self.exps, 0)
        for host, report in reports.items():
            if host in broken or report is None or host not in requests:
                continue
            if "shut_down" in report:  # the host's last jobs are done: its queue is down, its lock gone
                self.shut_down.add(host)
            exp, slot = by_host[host]
            feed = exp.feeds[host]
            self._note_not_fetched(host, report.get("skipped", []))
            queue_running[exp.name] += int((report.get("queue") or {}).get("running") or 0)
            missed: list[str] = []
            for rel, info in report.get("jobs", {}).items():
                key = parse_job_key(rel)
                record = exp.state.jobs.get(key)
                if record is None or record.status != QUEUED or key not in feed.outstanding:
                    continue
                state = info.get("state")
                if state in ("done", "lost"):
                    if state == "done" and int(info.get("attempt") or 1) < record.attempt:
                        continue  # an earlier attempt's marker
                    if not self._place(exp, slot, key) and state == "done":
                        feed.not_arrived(key)
                        missed.append(rel)
                        continue
                    feed.done(key)
                    exp.host_done.setdefault(key, {})[host] = info
                    changed.add(exp.name)
                elif state == "unknown":
                    # Neither queued nor finished on its host (e.g. the controller died before the
                    # enqueue reached it): schedule again; enqueue skips hosts that have it.
                    exp.state.set(key, PENDING)
                    for other in exp.feeds.values():
                        other.done(key)
                    changed.add(exp.name)
                else:
                    feed.to_check.discard(key)
                    if state == "running":
                        running[exp.name].add(key)
            feed.after_report(bool(report.get("idle")), bool(report.get("more")), int(report.get("cursor") or 0))
            self._stop_if_results_never_arrive(host, feed, missed)
        for name, keys in running.items():
            self.exps[name].running = len(keys) if self.exps[name].multi else queue_running[name]
        for name in changed:
            exp = self.exps[name]
            for key, done in list(exp.host_done.items()):
                if set(exp.hosts) <= set(done):
                    self._complete(exp, key, done)
                    del exp.host_done[key]
            exp.state.record(exp.state_path)

    def fetch_finished(self) -> int:
        """Poll without waiting until the hosts have reported every job they finished, and fetch those
        (`doe clean` does before the hosts go); returns the number of jobs completed."""
        def completed() -> int:
            return sum(c[FINISHED] + c[FAILED] for c in (exp.state.counts() for exp in self.exps.values()))

        before = completed()
        feeds = [feed for exp in self.exps.values() for feed in exp.feeds.values()]
        # Pages of the journals, a round naming what an idle queue never reported, and room for refetches.
        for _ in range(sum(len(feed.outstanding) for feed in feeds) // MAX_REPORT + MAX_MISSING_POLLS + 2):
            requests = self._poll_requests()
            if not requests:
                break
            result = self._playbook("poll.yml", {"job_queue_requests": requests,
                                                 "job_queue_staging_dir": str(self.staging)}, limit=list(requests))
            self._read_poll(result, requests)
            if not any(feed.more or feed.to_check for feed in feeds):
                break
        return completed() - before

    def _stop_if_results_never_arrive(self, host: str, feed: HostFeed, missed_now: list[str]) -> None:
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
                       f"{self.suite_dir} and the jobs' files on the host (fetch_max_file_mb in group_vars/all "
                       f"skips larger ones), then resume with: {self.resume_command()}")

    def _max_file_bytes(self) -> int:
        """The fetch skips files larger than fetch_max_file_mb (group_vars/all, default 1024)."""
        value = load_group_vars(self.project, "all").get("fetch_max_file_mb", 1024)
        try:
            return int(float(value) * 1024 * 1024)
        except (TypeError, ValueError):
            raise UserError(f"expected a number of megabytes, got {value!r}", path="fetch_max_file_mb",
                            file="group_vars/all") from None

    def _note_not_fetched(self, host: str, skipped: list[dict]) -> None:
        """Files a fetch left out (symlinks, special files, files over the cap): said once, kept in
        .doe/not_fetched.log; the results folder gets nothing for them."""
        if not skipped:
            return
        lines = [f"{host}: {item.get('path')}: {item.get('reason')}" for item in skipped]
        for line in lines:
            self.log(f"warning: not fetched: {line}")
        with open(self.suite_dir / ".doe" / "not_fetched.log", "a", encoding="utf-8") as handle:
            handle.write("".join(f"{line}\n" for line in lines))

    @staticmethod
    def _unreachable(result: PlaybookResult) -> dict[str, str]:
        """Hosts that did not answer, and why: Ansible could not reach them, or the fetch's ssh could not
        (rsync exit code 255: the host dropped between its status and its fetch)."""
        found = {f.host: f.message for f in result.failures() if f.unreachable}
        for host, res in result.task_results(FETCH_TASK).items():
            if res.get("rc") == 255 and host not in found:
                lines = [line for line in str(res.get("stderr") or "").splitlines() if line.strip()]
                found[host] = f"the fetch could not connect: {lines[0] if lines else 'rsync exit code 255'}"
        return found

    def _note_unreachable(self, unreachable: dict[str, str], result: PlaybookResult) -> None:
        """A host that stops answering (network, sshd, reboot) is reported once and retried each round
        while the others go on; the run stops only after options.unreachable_timeout seconds."""
        now = time.monotonic()
        for host, reason in unreachable.items():
            if host not in self.unreachable_since:
                self.unreachable_since[host] = now
                self.log(f"warning: host {host} is unreachable ({reason or 'no answer'}); its jobs "
                         f"keep running there, the other hosts are polled meanwhile")
            elif now - self.unreachable_since[host] > self.options.unreachable_timeout:
                raise DoeError(f"host {host} has been unreachable for {self.options.unreachable_timeout:g} s "
                               f"({reason or 'no answer'}); its jobs keep running; resume with: "
                               f"{self.resume_command()}")
        for host in result.stats.get("processed", {}):
            if host not in unreachable and self.unreachable_since.pop(host, None) is not None:
                self.log(f"host {host} answers again")

    def _place(self, exp: ExpRuntime, slot: HostSlot, key: JobKey) -> bool:
        """Move a fetched job into the results tree; True once doe's record of it is there."""
        rel = job_dir(exp.name, key)
        source = self.staging / slot.name / rel / "results"
        target = self.suite_dir / rel / slot.host_type / host_dir_name(slot.idx)
        report = place_results(source, target)
        for name in report.refused:
            self.log(f"warning: {slot.name}: refused to fetch {rel}/results/{name} (symlink or unsafe name)")
        self.new_results_since_etl = True
        return (target / DOE_RECORD).is_file()

    def _complete(self, exp: ExpRuntime, key: JobKey, done: dict[str, dict]) -> None:
        record = exp.state.jobs[key]
        ordered = sorted(done, key=lambda host: host not in exp.check_hosts)
        failed = [host for host in ordered if done[host].get("state") == "lost"
                  or done[host].get("status") not in ("finished",)]
        exit_codes = [done[host].get("exit_code") for host in (failed or ordered)]
        exit_code = next((code for code in exit_codes if code), exit_codes[0] if exit_codes else None)
        exp.state.set(key, FAILED if failed else FINISHED, exit_code=exit_code)
        if failed:
            self.log(f"job {exp.name} run {key[0]} rep {key[1]} failed on {', '.join(failed)} "
                     f"(exit code {record.exit_code})")

    # --- ETL --------------------------------------------------------------------------------------
    def _maybe_etl(self, *, final: bool) -> None:
        """The suite's ETL after new results, at most every etl_minimum_delay_sec while jobs run, and
        once at the end; a suite without pipelines skips it (no pandas import)."""
        if not self.new_results_since_etl or not self.suite.etl:
            return
        min_delay = float(load_group_vars(self.project, "all").get("etl_minimum_delay_sec", 10) or 0)
        if not final and time.monotonic() - self.last_etl < min_delay:
            return
        self.new_results_since_etl = False
        self.last_etl = time.monotonic()
        self.etl_error = not run_etl(self.suite_dir, self.project)

    def summary(self) -> RunSummary:
        counts = {name: exp.state.counts() for name, exp in self.exps.items()}
        failed = failed_jobs(self.suite_dir, {name: exp.state for name, exp in self.exps.items()})
        return RunSummary(suite=self.options.suite, suite_id=self.suite_id, suite_dir=self.suite_dir,
                          complete=self._all_done(), counts=counts, failed_jobs=failed,
                          etl_error=self.etl_error or (self.suite_dir / "ETL_ERROR.log").exists())

    def close(self) -> None:
        for exp in self.exps.values():  # state.yml absorbs the journal while the lock is held
            if exp.state.journal_lines or exp.state.changed:
                exp.state.save(exp.state_path)
        lock = getattr(self, "lock", None)
        if lock is not None:
            lock.release()
        suite_dir = getattr(self, "suite_dir", None)
        if suite_dir is not None:
            # The control socket folder goes once no SSH master lives in it (always so on the local cloud).
            with contextlib.suppress(OSError):
                control_path_dir(suite_dir, create=False).rmdir()


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


def _true(value: Any) -> bool:
    """A group_vars flag: YAML booleans, or the strings Ansible reads as true."""
    return value is True or str(value).strip().lower() in ("true", "yes", "on", "1")



def ensure_ansible_on_path() -> None:
    """ansible-runner finds ansible-playbook on this process's PATH; `doe` may run without the venv
    activated, so its own bin/ (where ansible-playbook is installed next to it) goes first."""
    if shutil.which("ansible-playbook") is None:
        os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


def encode_request(request: dict) -> str:
    """Requests reach the host helper as base64 of JSON: shell-safe on any command line."""
    return base64.b64encode(json.dumps(request, separators=(",", ":")).encode()).decode()


def helper_report(res: dict) -> dict | None:
    """The helper's `DOE-JSON:` line from a task result (raw over ssh may add other lines)."""
    for line in str(res.get("stdout") or "").splitlines():
        if line.startswith("DOE-JSON:"):
            return _json_or_none(line[len("DOE-JSON:"):])
    return None


def _json_or_none(text: Any) -> Any:
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _stdout_hint(result: PlaybookResult) -> str:
    """When a playbook fails before it starts (syntax, arguments), only its stdout says why."""
    if result.failures() or result.errors() or result.data_dir is None:
        return ""
    for stdout in result.data_dir.glob("artifacts/*/stdout"):
        lines = [line.strip() for line in stdout.read_text(errors="replace").splitlines() if "ERROR" in line]
        if lines:
            return f" ({lines[0][:300]})"
    return ""


def control_path_dir(suite_dir: Path, create: bool = True) -> Path:
    """A short per-run folder for SSH control sockets (Unix socket paths are limited to 108 bytes)."""
    digest = hashlib.sha1(str(suite_dir).encode()).hexdigest()[:10]
    path = Path(tempfile.gettempdir()) / f"doe-cp-{digest}"
    if create:
        path.mkdir(mode=0o700, exist_ok=True)
    return path


def run_suite(project: Project, options: RunOptions, *, log: Callable[[str], None],
              progress: Progress | None = None) -> RunSummary:
    controller = Controller(project, options, log=log, progress=progress)
    try:
        controller.resolve_suite()
        finished = controller.finished_summary()
        if finished is not None:
            return finished
        controller.prepare()
        controller.setup()
        return controller.run()
    except Exception:
        # Provisioned hosts cost money: a failed run deletes them unless --keep (a resume provisions anew).
        teardown = getattr(getattr(controller, "ssh", None), "teardown", None)
        if teardown is not None and not options.keep:
            teardown()
        raise
    finally:
        controller.close()
