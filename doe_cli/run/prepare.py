"""Before a suite's first round: its design loaded (a new suite's checked and written, a resumed one's
read back), a host for every slot, every command rendered and checked (bad input creates nothing),
the suite inventory written and each experiment's job state loaded. The result is a PreparedRun."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from doe_cli.clouds import Cloud
from doe_cli.config import Project, load_group_vars
from doe_cli.errors import DoeError, UserError
from doe_cli.fileio import write_atomic
from doe_cli.run import code_version, hostvars
from doe_cli.run.adaptive import AdaptiveRuns, initial_order, load_orders, order_entry, save_orders
from doe_cli.run.hosts import HostSlot, assign_hosts, slots_of
from doe_cli.run.order import RMIT
from doe_cli.run.runtime import ExpRuntime, RunOptions, SuiteLock, SuiteRun, set_attempt_aside
from doe_cli.run.state import FAILED, PENDING, ExperimentState, setup_marker
from doe_cli.run.suite_id import resolve_suite_id
from etl.layout import suite_folder

if TYPE_CHECKING:
    from doe_cli.design import Suite
    from doe_cli.settings import AllSettings


@dataclass(frozen=True)
class PreparedRun:
    project: Project
    options: RunOptions
    run: SuiteRun
    cloud: Cloud
    design: Suite
    slots: list[HostSlot]
    repositories: list[dict]
    context_vars: dict[str, Any]
    host_vars: dict[str, dict]                  # per slot: its inventory variables
    host_var_reports: dict[str, dict] | None    # a resumed suite's host variables as its setup reported them
    host_check_vars: dict[str, Any] | None      # the first round's extra vars when it checks the hosts
    inventory: Path
    lock: SuiteLock
    exps: dict[str, ExpRuntime]
    job_timeouts: dict[str, float | None]
    max_file_bytes: int
    settings: AllSettings                       # group_vars/all as doe reads it, checked once

    @property
    def suite_dir(self) -> Path:
        return self.run.suite_dir

    @property
    def staging(self) -> Path:
        return self.suite_dir / ".doe" / "staging"

    def unrendered_host_vars(self) -> dict[str, dict]:
        return unrendered_host_vars(self.project, self.slots, self.context_vars, self.host_vars)

    def exp_host_lst(self, reports: dict[str, dict] | None) -> dict[str, list[dict]]:
        return exp_host_lst(self.project, self.slots, self.context_vars, self.host_vars, reports)


def resolve_suite(project: Project, options: RunOptions) -> SuiteRun:
    suite_id, is_new = resolve_suite_id(project.results_dir, options.suite, options.id)
    return SuiteRun(suite=options.suite, suite_id=suite_id, is_new=is_new,
                    suite_dir=suite_folder(project.results_dir, options.suite, suite_id))


def prepare(project: Project, options: RunOptions, run: SuiteRun, cloud: Cloud,
            log: Callable[[str], None]) -> PreparedRun:
    from doe_cli.design import dump_yaml

    design = _load_design(project, options, run, cloud.name, log)
    slots = assign_hosts(design)
    cloud.assign(slots)
    host_check_vars = cloud.check_hosts(run.suite_dir, set_up=not run.is_new and setup_marker(run.suite_dir).exists())
    try:
        repositories = code_version.fixed_repositories(
            normalise_repositories(load_group_vars(project, "all").get("git_remote_repository")),
            run.suite_dir, new=run.is_new)
        context = cloud.context_vars(options.suite, repositories[0]["dir"] if repositories else "code")
        host_vars = _host_vars(project, design, slots, cloud, run.suite_dir.name)
        # The host variables a resumed suite's hosts reported at setup; a new suite's come with its setup.
        reports = None if run.is_new else hostvars.load_reports(run.suite_dir)
        # Render and check every command before anything is created (bad input creates nothing).
        extended = design.extend(exp_host_lst(project, slots, context, host_vars, reports))
    except BaseException:
        if run.is_new:
            cloud.abandon_hosts(run.suite_dir)
        raise
    if run.is_new:
        _create_suite_dir(run.suite_dir, design, repositories)
    lock = SuiteLock(run.suite_dir / ".doe" / "lock")
    try:
        write_atomic(run.suite_dir / "suite_design_ext.yml", dump_yaml(extended))
        inventory = cloud.write_inventory(run.suite_dir, slots, host_vars, context, keep=options.keep)
        shutil.rmtree(run.suite_dir / ".doe" / "staging", ignore_errors=True)
        job_timeouts = _job_timeouts(project, options, design, slots, host_vars, cloud)
        from doe_cli.settings import all_settings  # pydantic: only when a run really starts

        settings = all_settings(project)
        max_file_bytes = settings.fetch_max_file_bytes
        return PreparedRun(
            project=project, options=options, run=run, cloud=cloud, design=design, slots=slots,
            repositories=repositories, context_vars=context, host_vars=host_vars, host_var_reports=reports,
            host_check_vars=host_check_vars, inventory=inventory, lock=lock,
            exps=_experiments(options, run, design, slots, extended, log), job_timeouts=job_timeouts,
            max_file_bytes=max_file_bytes, settings=settings)
    except BaseException:
        lock.release()
        raise


def _load_design(project: Project, options: RunOptions, run: SuiteRun, cloud: str, log: Callable[[str], None]) -> Suite:
    from doe_cli.design import load_stored_suite, load_suite

    if not run.is_new:
        if options.expfilter:
            log(f"note: --expfilter applies to new runs only; {run.suite_dir.name} keeps its experiments")
        return load_stored_suite(project, run.suite_dir / "suite_design.yml", options.suite)
    variables = {"suite": options.suite, "id": run.suite_id, "cloud": cloud}
    design = load_suite(project, options.suite, variables=variables, strict=True)
    return design.filter(options.expfilter) if options.expfilter else design


def _create_suite_dir(suite_dir: Path, design: Suite, repositories: list[dict]) -> None:
    suite_dir.mkdir(parents=True, exist_ok=False)
    design.write_resolved(suite_dir / "suite_design.yml")
    code_version.store(suite_dir, repositories)
    (suite_dir / "etl_results").mkdir(exist_ok=True)
    (suite_dir / "etl_results" / ".gitkeep").touch()


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


def _host_vars(project: Project, design: Suite, slots: list[HostSlot], cloud: Cloud,
               suite_dir_name: str) -> dict[str, dict]:
    hosts = {}
    for slot in slots:
        exp = design.experiments[slot.exp]
        host_type = exp.host_types[slot.host_type]
        # A role's tasks for this cloud (tasks/<cloud>.yml) where it has them.
        setup_roles = [{"name": role, "tasks_from": cloud.name if (project.roles_dir / role / "tasks" /
                                                                    f"{cloud.name}.yml").is_file() else "main"}
                       for role in [*exp.common_roles, *host_type.init_roles]]
        hosts[slot.name] = cloud.host_vars(suite_dir_name, slot, host_type.check_status, setup_roles)
    return hosts


def unrendered_host_vars(project: Project, slots: list[HostSlot], context: dict[str, Any],
                         host_vars: dict[str, dict]) -> dict[str, dict]:
    """Per host, its variables as written: doe's context, group_vars (all, then the host type's),
    then its inventory vars."""
    group_all = load_group_vars(project, "all")
    return {slot.name: {**context, **group_all, **load_group_vars(project, slot.host_type),
                        **host_vars[slot.name], "inventory_hostname": slot.name} for slot in slots}


def exp_host_lst(project: Project, slots: list[HostSlot], context: dict[str, Any], host_vars: dict[str, dict],
                 reports: dict[str, dict] | None) -> dict[str, list[dict]]:
    """Each experiment's hosts as designs see them: hostvars as the setup rendered them on each host
    (before the setup, values with templates are placeholders)."""
    unrendered = unrendered_host_vars(project, slots, context, host_vars)
    result: dict[str, list[dict]] = {}
    for slot in slots:
        if reports is not None:
            merged = hostvars.from_report(reports.get(slot.name, {}), slot.name)
        else:
            merged = hostvars.before_setup(unrendered[slot.name])
        result.setdefault(slot.exp, []).append({
            "host_type": slot.host_type, "host_type_idx": slot.idx, "host_type_n": slot.n,
            "public_dns_name": host_vars[slot.name].get("public_dns_name"),
            "private_dns_name": host_vars[slot.name].get("private_dns_name"), "hostvars": merged})
    return result


def _job_timeouts(project: Project, options: RunOptions, design: Suite, slots: list[HostSlot],
                  host_vars: dict[str, dict], cloud: Cloud) -> dict[str, float | None]:
    """Per host: --job-timeout, else the experiment's job_timeout in the design, else the inventory's
    host var (SSH), else group_vars (host type, then all)."""
    if options.job_timeout:
        return {slot.name: options.job_timeout for slot in slots}
    from doe_cli.settings import settings_of  # pydantic: only when a run really starts

    timeouts: dict[str, float | None] = {}
    for slot in slots:
        designed = design.experiments[slot.exp].job_timeout
        if designed is not None:  # validated with the design
            timeouts[slot.name] = float(designed)
        elif "job_timeout" in host_vars[slot.name]:  # an SSH inventory's host var wins over group_vars
            timeouts[slot.name] = _host_var_timeout(host_vars[slot.name]["job_timeout"], slot, cloud)
        else:
            timeouts[slot.name] = settings_of(project).host_type(slot.host_type).job_timeout
    return timeouts


def _host_var_timeout(value: object, slot: HostSlot, cloud: Cloud) -> float | None:
    from pydantic import ValidationError

    from doe_cli.settings import HostTypeSettings

    try:
        return HostTypeSettings.model_validate({"job_timeout": value}).job_timeout
    except ValidationError:
        # The inventory's host var of the slot's host (an SSH cloud names its inventory file).
        raise UserError(f"expected a number of seconds, got {value!r} (host {slot.name})",
                        file=getattr(cloud, "file", None), path="job_timeout") from None


def _experiments(options: RunOptions, run: SuiteRun, design: Suite, slots: list[HostSlot],
                 extended: dict[str, list[dict]], log: Callable[[str], None]) -> dict[str, ExpRuntime]:
    orders = load_orders(run.suite_dir)
    stored = dict(orders)

    def save_order() -> None:
        save_orders(run.suite_dir, orders)

    exps = {}
    for name, exp in design.experiments.items():
        n_runs = len(extended[name])
        if name not in orders and (exp.order == RMIT or exp.repetitions is not None):
            orders[name] = order_entry(exp.order, exp.seed, n_runs, exp.n_repetitions)
        if orders != stored:
            save_order()  # before any job of the experiment is enqueued
            stored = dict(orders)
        state = _job_state(options, run, name, n_runs, exp.n_repetitions,
                           exp.repetitions.max if exp.repetitions else exp.n_repetitions)
        order = initial_order(orders.get(name))
        if order is not None:
            state.reorder(order)
        if options.retry_failed:
            for key in state.with_status(FAILED):
                record = state.jobs[key]
                set_attempt_aside(run.suite_dir, name, list(exp.host_types), key, record.attempt)
                state.set(key, PENDING, attempt=record.attempt + 1)
        adaptive = None
        if exp.repetitions is not None:
            adaptive = AdaptiveRuns(exp=name, spec=exp.repetitions, minimum=exp.n_repetitions, n_runs=n_runs,
                                    entry=orders[name], suite_dir=run.suite_dir, host_types=list(exp.host_types),
                                    save_order=save_order, log=log)
            adaptive.resume(state)
            adaptive.flush()
        path = run.suite_dir / name / "state.yml"
        state.save(path)
        exp_slots = slots_of(slots, name)
        checked = {s.name for s in exp_slots if exp.host_types[s.host_type].check_status}
        if not checked:  # no polled host: every host decides
            checked = {s.name for s in exp_slots}
        exps[name] = ExpRuntime(name=name, state=state, state_path=path, slots=exp_slots, check_hosts=checked,
                                first_phase={s.name for s in exp_slots if s.name not in checked},
                                runs=extended[name], n_reps=exp.n_repetitions, adaptive=adaptive)
    return exps


def _job_state(options: RunOptions, run: SuiteRun, name: str, n_runs: int, n_reps: int,
               max_reps: int) -> ExperimentState:
    """The experiment's stored job state, or a new one; an adaptive experiment's holds between n_reps and
    max_reps reps per run."""
    path = run.suite_dir / name / "state.yml"
    if not path.exists():
        return ExperimentState.new(options.suite, run.suite_id, name, n_runs, n_reps)
    state = ExperimentState.load(path, options.suite, run.suite_id, name)
    if not n_runs * n_reps <= len(state.jobs) <= n_runs * max_reps:
        expected = f"{n_runs * n_reps}" if n_reps == max_reps else f"{n_runs * n_reps} to {n_runs * max_reps}"
        raise DoeError(f"{path}: {len(state.jobs)} jobs, but the stored design has {expected}")
    return state
