"""Existing machines over SSH: `doe run --cloud <name>` with the hosts of `inventory/<name>.yml`.

The user's inventory is standard Ansible YAML: one group per host type, hosts in file order, each
with `ansible_host`, `ansible_port`, `ansible_user`, `ansible_ssh_private_key_file` and optionally
`private_dns_name`, `job_scheduler`, `remote_dir`, `remote_results_dir`. The suite's slots take the
hosts of their type in file order (surplus hosts are unused). Everything else is the local cloud's
machinery: doe writes a static inventory in the suite's `.inventory/` whose host names are the
slots' names, with the user's connection settings and the queue's folders on each host.

Before anything is set up: the inventory is read and validated (too few hosts of a type, the same
machine twice), then one Ansible run checks every host (answers, folders writable, free) and takes
its lock (`<remote_dir>/doe.lock` holding `<suite>_<id>`); `--force` takes a lock held by another
suite, with a warning. A resumed suite whose hosts are set up knows their folders from its stored
inventory, so the same check is the first play of its first round (one Ansible start-up less); a
host that fails it stops every host before anything is enqueued. The lock is released with the
queue's final shutdown when the suite is complete, and when its setup failed.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from doe_cli.ansible_adapter import AnsibleAdapter, PlaybookResult
from doe_cli.clouds.base import CostSoFar
from doe_cli.clouds.inventory import read_suite_inventory_hosts, write_suite_inventory
from doe_cli.clouds.inventory_template import InventoryVars, inventory_vars, render
from doe_cli.config import Project, holds_template
from doe_cli.errors import DoeError, UserError
from doe_cli.run import hostvars
from doe_cli.run.ansible_env import control_path_dir, ensure_ansible_on_path
from doe_cli.run.hosts import HostSlot
from doe_cli.run.poll_reply import helper_report

PREFLIGHT_TASK = "Check the host's folders and take its lock"
# The host check's answers that let a suite use a host (none: a Slurm login host, shared by all suites).
USABLE_LOCKS = ("taken", "forced", "ours", "none")
# Settings the user's inventory gives and doe passes on to Ansible unchanged.
CONNECTION_VARS = ("ansible_host", "ansible_port", "ansible_user", "ansible_ssh_private_key_file",
                   "ansible_ssh_common_args", "ansible_ssh_extra_args", "ansible_python_interpreter",
                   "ansible_become", "ansible_become_user", "ansible_become_method", "ansible_connection")
# Host vars doe sets itself; an inventory must not override them.
_OWN_PREFIXES = ("job_queue_", "doe_", "ssh_host_")


@dataclass
class InventoryHost:
    """One machine of the user's inventory, with its variables merged (all < group < host)."""

    name: str
    host_type: str
    vars: dict[str, Any]

    @property
    def address(self) -> str:
        user = self.vars.get("ansible_user")
        host = self.vars.get("ansible_host", self.name)
        port = self.vars.get("ansible_port", 22)
        return f"{user + '@' if user else ''}{host}:{port}"

    @property
    def machine(self) -> tuple[str, str]:
        """Two entries naming the same host and port are the same machine (whatever the user)."""
        return str(self.vars.get("ansible_host", self.name)), str(self.vars.get("ansible_port", 22))


@dataclass
class RemotePaths:
    remote_dir: str     # doe's folder on the host (holds doe.lock)
    results_dir: str    # the job dirs of every suite


@dataclass
class SshCloud:
    project: Project
    name: str
    file: str                                  # for messages: inventory/<name>.yml
    hosts_by_type: dict[str, list[InventoryHost]]
    assignment: dict[str, InventoryHost] = field(default_factory=dict)   # slot name -> host
    paths: dict[str, RemotePaths] = field(default_factory=dict)         # slot name -> paths
    force: bool = False                        # --force: take hosts locked by another suite
    log: Callable[[str], None] = print
    prj_id: str = "doe"                        # group_vars/all's prj_id: the queues' folder on the hosts

    # --- reading and validating the inventory -----------------------------------------------------
    @classmethod
    def load(cls, project: Project, name: str, variables: InventoryVars | None = None, *, force: bool = False,
             log: Callable[[str], None] = print) -> SshCloud:
        path = inventory_file(project, name)
        file = f"inventory/{path.name}"
        text = path.read_text(encoding="utf-8")
        if holds_template(text):
            text = render(text, file, variables or inventory_vars(project, suite=None, cloud=name))
        try:
            content = yaml.safe_load(text)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            raise UserError(f"not valid YAML: {getattr(error, 'problem', error)}", file=file,
                            line=mark.line + 1 if mark else None) from None
        if not isinstance(content, dict) or not content:
            raise UserError("expected an Ansible YAML inventory: a mapping of groups "
                            "(one per host type) with hosts", file=file)
        return cls(project=project, name=name, file=file, hosts_by_type=_hosts_by_group(content, file),
                   force=force, log=log, prj_id=prj_id_of(project))

    @property
    def runs_experiments_one_at_a_time(self) -> bool:
        return False  # every slot is a machine of its own

    def allocation_parts(self, slots: list[HostSlot], host_vars: dict[str, dict]) -> list[dict] | None:
        return None  # every host's part goes through its own queue

    def context_vars(self, suite: str, first_repository_dir: str) -> dict[str, Any]:
        return {**hostvars.context_vars(self.project, suite, self.name, first_repository_dir),
                "remote_dir": "{{ ssh_host_remote_dir }}"}

    def assign(self, slots: list[HostSlot]) -> None:
        """The n-th slot of a host type gets the n-th host of that type in the file; checks there are
        enough hosts and that no machine serves two slots."""
        needed: dict[str, list[HostSlot]] = {}
        for slot in slots:
            needed.setdefault(slot.host_type, []).append(slot)
        for host_type, type_slots in needed.items():
            available = self.hosts_by_type.get(host_type, [])
            if len(available) < len(type_slots):
                per_exp: dict[str, int] = {}
                for slot in type_slots:
                    per_exp[slot.exp] = per_exp.get(slot.exp, 0) + 1
                usage = ", ".join(f"{exp}: {n}" for exp, n in per_exp.items())
                listed = f" ({', '.join(h.name for h in available)})" if available else ""
                raise UserError(f"host type {host_type!r} needs {len(type_slots)} host(s) ({usage}) but the "
                                f"inventory lists {len(available)}{listed}", file=self.file, path=host_type)
        by_machine: dict[tuple[str, str], tuple[HostSlot, InventoryHost]] = {}
        for slot in slots:
            host = self.hosts_by_type[slot.host_type][slot.type_index]
            other = by_machine.get(host.machine)
            if other is not None:
                raise UserError(f"host {host.name} ({host.address}) would serve both {other[0].name} and "
                                f"{slot.name}: it is the same machine as {other[1].name}; every slot needs "
                                f"its own host", file=self.file, path=f"{slot.host_type}.hosts.{host.name}")
            by_machine[host.machine] = (slot, host)
            self.assignment[slot.name] = host

    # --- checking the hosts and taking their locks ------------------------------------------------
    def check_hosts(self, suite_dir: Path, *, set_up: bool) -> dict[str, Any] | None:
        """Enough hosts, each answering, writable and free: checked (and locked) before anything is set
        up. A resumed suite whose hosts are set up knows their folders; its first round checks them."""
        ensure_ansible_on_path()
        if set_up and self.paths_from_inventory(suite_dir):
            return {"doe_host_check": True, "ssh_host_force": self.force}
        self.preflight(suite_dir)
        return None

    def preflight(self, suite_dir: Path) -> None:
        """One Ansible run over all assigned hosts: each must answer, have writable folders and be
        free (or locked by this suite already). Fills self.paths; raises DoeError naming every host
        that failed and why, after releasing the locks this run took."""
        suite_dir_name = suite_dir.name
        work_dir = Path(tempfile.gettempdir())
        hosts: dict[str, dict[str, Any]] = {}
        for slot_name, host in self.assignment.items():
            hosts[slot_name] = {
                **self.connection_vars(host),
                "ssh_host_remote_dir": str(host.vars.get("remote_dir") or ""),
                "ssh_host_results_dir": str(host.vars.get("remote_results_dir") or ""),
                "ssh_host_lock_owner": suite_dir_name, "ssh_host_force": self.force,
                "ssh_host_suite_dir_name": suite_dir_name, **self.check_vars()}
        work_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="preflight-", dir=work_dir) as tmp:
            inventory_path = Path(tmp) / "inventory.yml"
            inventory_path.write_text(yaml.safe_dump({"all": {"hosts": hosts}}, sort_keys=False))
            adapter = AnsibleAdapter(Path(tmp) / "ansible", control_path_dir=control_path_dir(suite_dir),
                                     config_dir=self.project.config_dir)
            result = adapter.run("ssh-preflight.yml", inventory=inventory_path)
        self._read_check(result, suite_dir, work_dir=work_dir)

    def check_vars(self) -> dict[str, Any]:
        """Further variables of the host check (a Slurm login host is checked for sbatch, not locked)."""
        return {}

    def read_check(self, result: PlaybookResult, suite_dir: Path) -> None:
        self._read_check(result, suite_dir, work_dir=suite_dir / ".doe")

    def _read_check(self, result: PlaybookResult, suite_dir: Path, *, work_dir: Path) -> None:
        """The host check's answers (a preflight run, or the first play of a resumed suite's first round):
        fills self.paths; raises DoeError naming every host that failed and why, after releasing the
        locks this check took."""
        outputs = result.task_results(PREFLIGHT_TASK)
        # Only the check's own failures: in a round, later tasks fail for other reasons.
        reasons = {f.host: f.message for f in result.failures() if f.task == PREFLIGHT_TASK}
        problems, taken = [], []
        for slot_name, host in self.assignment.items():
            where = f"host {host.name} ({host.address}, for {slot_name})"
            report = helper_report(outputs.get(slot_name, {})) or {}
            if "error" in report:
                problems.append(f"{where}: {report['error']}")
                continue
            lock = report.get("lock")
            if lock == "busy":
                problems.append(f"{where} is in use by suite {report.get('holder') or '?'} (lock file "
                                f"{report.get('remote_dir')}/doe.lock); use --force to take it over")
                continue
            if lock == "forced":
                self.log(f"warning: {where}: took over the lock of suite {report.get('holder') or '?'} (--force)")
            if lock in ("taken", "forced"):
                taken.append(slot_name)
            if report and slot_name not in reasons and lock not in USABLE_LOCKS:
                problems.append(f"{where}: unexpected answer from the host check: {report}")
                continue
            if slot_name in reasons or lock not in USABLE_LOCKS:
                kind = "does not answer" if slot_name in result.unreachable_hosts() else "failed the check"
                problems.append(f"{where} {kind}: {reasons.get(slot_name) or result.summary()}")
                continue
            self.paths[slot_name] = RemotePaths(remote_dir=str(report["remote_dir"]),
                                                results_dir=str(report["results_dir"]))
        if problems:
            if taken:
                self.release(suite_dir, work_dir=work_dir, only=taken)
            raise DoeError(f"{self.file}: {len(problems)} host(s) cannot be used, nothing was set up: "
                           + "; ".join(problems))

    def paths_from_inventory(self, suite_dir: Path) -> bool:
        """A resumed suite's remote folders, from the inventory doe stored for it (the queues live there);
        False if it does not name them for every slot (then a preflight finds them)."""
        stored = read_suite_inventory_hosts(suite_dir, self.name)
        paths = {}
        for slot_name in self.assignment:
            host_vars = stored.get(slot_name) or {}
            remote_dir, results_dir = host_vars.get("ssh_host_remote_dir"), host_vars.get("ssh_host_results_dir")
            if not remote_dir or not results_dir:
                return False
            paths[slot_name] = RemotePaths(remote_dir=str(remote_dir), results_dir=str(results_dir))
        self.paths.update(paths)
        return True

    def release_hosts(self, suite_dir: Path, host_vars: dict[str, dict], *, still_locked: list[str]) -> None:
        """Results stay on the hosts; the suite's locks go (the queues' shutdowns released most)."""
        if not self.release(suite_dir, work_dir=suite_dir / ".doe", only=still_locked):
            self.log("warning: could not release the lock on every host (doe.lock under the remote dir)")

    def abandon_hosts(self, suite_dir: Path) -> None:
        self.release(suite_dir, work_dir=Path(tempfile.gettempdir()))

    def teardown(self) -> None:
        """Existing hosts stay."""

    def cost(self, now: float) -> CostSoFar | None:
        return None  # existing machines: what they cost is not doe's to know

    def hosts_gone(self, host_vars: dict[str, dict]) -> bool:
        return False  # folders on remote hosts are not looked at from here

    def release(self, suite_dir: Path, *, work_dir: Path, only: list[str] | None = None) -> bool:
        """Release this suite's locks (best effort); True if every host answered."""
        suite_dir_name = suite_dir.name
        names = [name for name in (list(self.paths) if only is None else only) if name in self.paths]
        if not names:
            return True
        inventory = {"all": {"hosts": {name: {**self.connection_vars(self.assignment[name]),
                                              "ssh_host_remote_dir": self.paths[name].remote_dir,
                                              "ssh_host_lock_owner": suite_dir_name} for name in names}}}
        work_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="release-", dir=work_dir) as tmp:
            inventory_path = Path(tmp) / "inventory.yml"
            inventory_path.write_text(yaml.safe_dump(inventory, sort_keys=False))
            adapter = AnsibleAdapter(Path(tmp) / "ansible", control_path_dir=control_path_dir(suite_dir),
                                     config_dir=self.project.config_dir)
            return adapter.run("ssh-release.yml", inventory=inventory_path).ok

    # --- what the run machinery needs -------------------------------------------------------------
    def connection_vars(self, host: InventoryHost) -> dict[str, Any]:
        found = {key: host.vars[key] for key in CONNECTION_VARS if key in host.vars}
        found.setdefault("ansible_host", host.name)
        # Setup clones private repositories with the controller's SSH agent (as doe-suite does).
        extra = str(found.get("ansible_ssh_extra_args") or "")
        if "ForwardAgent" not in extra:
            found["ansible_ssh_extra_args"] = f"{extra} -o ForwardAgent=yes".strip()
        return found

    def host_vars(self, suite_dir_name: str, slot: HostSlot, check_status: bool,
                  setup_roles: list[dict]) -> dict[str, Any]:
        host = self.assignment[slot.name]
        paths = self.paths[slot.name]
        queue_dir = f"{paths.remote_dir}/{self.prj_id}/{suite_dir_name}"
        # Per suite and host: its own task spooler server. /tmp keeps the socket path short.
        digest = hashlib.sha1(f"{queue_dir}/{slot.name}".encode()).hexdigest()[:16]
        user_vars = {key: value for key, value in host.vars.items()
                     if key not in CONNECTION_VARS and not key.startswith(_OWN_PREFIXES)}
        return {
            **user_vars,
            **self.connection_vars(host),
            "job_queue_dir": queue_dir,
            "job_queue_root": f"{paths.results_dir}/{suite_dir_name}",
            "job_queue_ts_socket": f"/tmp/doe-ts-{digest}.sock",
            # Kept across suites: a build at one commit is made once per host (cargo_build).
            "doe_host_cache_dir": f"{paths.remote_dir}/cache",
            "doe_exp": slot.exp,
            "doe_host_type": slot.host_type,
            "doe_host_idx": slot.idx,
            "doe_check_status": check_status,
            "doe_setup_roles": setup_roles,
            "doe_inventory_host": host.name,
            "job_queue_lock_file": f"{paths.remote_dir}/doe.lock",
            "job_queue_lock_owner": suite_dir_name,
            "ssh_host_remote_dir": paths.remote_dir,
            "ssh_host_results_dir": paths.results_dir,
            "ssh_host_lock_owner": suite_dir_name,
            "ssh_host_suite_dir_name": suite_dir_name,
            "public_dns_name": str(host.vars.get("ansible_host", host.name)),
            "private_dns_name": str(host.vars.get("private_dns_name") or host.vars.get("ansible_host", host.name)),
        }

    def write_inventory(self, suite_dir: Path, slots: list[HostSlot], host_vars: dict[str, dict],
                        context: dict[str, Any], *, keep: bool) -> Path:
        """Write `.inventory/<name>.yml` (+ a copy of group_vars/), usable with plain ansible-playbook.
        The hosts' folders stay, kept or not: results stay on the hosts."""
        return write_suite_inventory(self.project, suite_dir, self.name,
                                     f"Written by doe from {self.file}: one inventory host per slot of the suite.",
                                     {**context, "doe_remove_host_dir": False}, slots, host_vars)


@dataclass(frozen=True)
class SshKeptHosts:
    """SSH hosts (and Slurm login hosts) of a run that did not clean up after itself (its setup marker
    stays until it does); the queues' shutdown releases the suite's host locks, the files stay."""

    inventory: str

    @property
    def kind(self) -> str:
        return f"host(s) of inventory {self.inventory}"

    @property
    def fetches_first(self) -> bool:
        return False

    def hosts_left(self, suite_dir: Path, hosts: dict[str, dict]) -> dict[str, dict]:
        from doe_cli.run.state import setup_marker

        return hosts if setup_marker(suite_dir).exists() else {}

    def cleanup_vars(self) -> dict[str, Any]:
        return {"doe_remove_host_dir": False}

    def after_cleanup(self, suite_dir: Path, hosts: dict[str, dict]) -> None:
        """The shutdown released the locks; results stay on the hosts."""


def inventory_file(project: Project, name: str) -> Path:
    """inventory/<name>.yml (or .yaml) of the config dir; a UserError if there is none."""
    for suffix in (".yml", ".yaml"):
        path = project.inventory_dir / f"{name}{suffix}"
        if path.is_file():
            return path
    known = sorted(p.stem for p in project.inventory_dir.glob("*.y*ml")) if project.inventory_dir.is_dir() else []
    hint = f" (inventories: {', '.join(known)})" if known else ""
    raise UserError(f"expected `local` or the name of an inventory in inventory/, but inventory/{name}.yml "
                    f"does not exist{hint}", path="--cloud")


def prj_id_of(project: Project) -> str:
    """group_vars/all's prj_id, its template rendered as Ansible renders it (doe-suite's demo has
    `prj_id: example_{{ does_project_id_suffix }}`): the folder on the hosts and the Slurm job names."""
    from doe_cli.settings import all_settings  # pydantic: not at every doe start

    return all_settings(project).prj_id.strip()


def _hosts_by_group(content: dict, file: str) -> dict[str, list[InventoryHost]]:
    """Ansible YAML inventory -> hosts per group (file order), vars merged all < group < host.
    A host in a nested group also counts for the parent groups. As in Ansible, a host's own variables
    hold wherever it is listed: `login: {}` under a second group is the same login host."""
    groups, root_vars, prefix = _top_level(content, file)
    listings: list[tuple[str, dict, list[str], str]] = []  # host, its group's vars, groups, path
    own_vars: dict[str, dict] = {}

    def walk(group: str, spec: Any, inherited: dict, path: str, parents: list[str]) -> None:
        if spec is None:
            spec = {}
        if not isinstance(spec, dict):
            raise UserError("expected a group: a mapping with hosts, vars or children", file=file, path=path)
        unknown = set(spec) - {"hosts", "vars", "children"}
        if unknown:
            raise UserError(f"unknown key(s) {', '.join(sorted(unknown))}; a group has hosts, vars and children",
                            file=file, path=path)
        group_vars = {**inherited, **(spec.get("vars") or {})}
        hosts = spec.get("hosts") or {}
        if not isinstance(hosts, dict):
            raise UserError("expected a mapping of host names to their variables", file=file, path=f"{path}.hosts")
        for name, host_vars in hosts.items():
            host_path = f"{path}.hosts.{name}"
            if host_vars is not None and not isinstance(host_vars, dict):
                raise UserError("expected the host's variables as a mapping", file=file, path=host_path)
            own_vars.setdefault(str(name), {}).update(host_vars or {})
            listings.append((str(name), group_vars, [*parents, group], host_path))
        for child, child_spec in (spec.get("children") or {}).items():
            walk(str(child), child_spec, group_vars, f"{path}.children.{child}", [*parents, group])

    for group, spec in groups.items():
        walk(str(group), spec, root_vars, f"{prefix}{group}", [])
    result: dict[str, list[InventoryHost]] = {}
    for name, group_vars, in_groups, path in listings:
        _add_host(result, name, _merged_host_vars(group_vars, own_vars[name], file, path), in_groups, file, path)
    return result


def _top_level(content: dict, file: str) -> tuple[dict, dict, str]:
    """The inventory's groups, the variables every host gets and the groups' path prefix in errors
    (`all: {vars, children}` or bare groups)."""
    top = content.get("all") if set(content) == {"all"} and isinstance(content.get("all"), dict) else None
    if top is None:
        return content, {}, ""
    if top.get("hosts"):
        raise UserError("hosts directly under `all` have no host type; list them under a group named "
                        "after their host type", file=file, path="all.hosts")
    groups = top.get("children") or {}
    if not isinstance(groups, dict):
        raise UserError("expected a mapping of groups", file=file, path="all.children")
    return groups, top.get("vars") or {}, "all.children."


def _merged_host_vars(group_vars: dict, host_vars: dict, file: str, path: str) -> dict:
    merged = {**group_vars, **host_vars}
    for own in merged:
        if own.startswith(_OWN_PREFIXES):
            raise UserError(f"{own} is set by doe and cannot be given in an inventory", file=file, path=path)
    return merged


def _add_host(result: dict[str, list[InventoryHost]], name: str, merged: dict, groups: list[str], file: str,
              path: str) -> None:
    """The host in its group and in each of the group's parents."""
    for target in groups:
        listed = result.setdefault(target, [])
        if any(h.name == name for h in listed):
            raise UserError(f"host {name} is listed twice in group {target}", file=file, path=path)
        listed.append(InventoryHost(name=name, host_type=target, vars=merged))
