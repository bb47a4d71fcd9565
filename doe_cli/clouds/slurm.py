"""Slurm clusters: `doe run --cloud <name>` where the hosts of `inventory/<name>.yml` carry
`job_scheduler: slurm`: each is a login host (all host types may name the same one, as doe-suite's
`euler` inventory does; `ansible_connection: local` when the controller is a login node itself).

Setup runs on the login host as on any SSH host (code checkout, setup roles, the job wrapper), in
folders on the cluster's shared filesystem; then every job is one `sbatch` of the same job wrapper
(roles/job-queue/files/doe_slurm.py), with the host type's resources from its group_vars
(doe_cli/settings/slurm.py) and the job name `<prj>.<suite>.<id>.<exp>.<run>.<rep>`. A login host is shared
by every suite of every user: it is checked for sbatch, never locked, and as many slots as the suite
has may use it at once. `slurm_conf` (host var) becomes SLURM_CONF of every Slurm command;
`slurm_max_pending_minutes` (group_vars, default 60, 0: forever) cancels a job that stays pending.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from doe_cli.clouds.ssh import SshCloud, SshKeptHosts
from doe_cli.config import Project
from doe_cli.errors import UserError
from doe_cli.run.hosts import HostSlot
from doe_cli.settings import settings_of

SCHEDULER_KEY = "job_scheduler"


def node_token(slot_name: str) -> str:
    """How a design's commands name a host of a multi-host job before its node is known; only
    characters that shell quoting leaves as they are."""
    return f"@doe-node:{slot_name}@"


def is_slurm_inventory(cloud: SshCloud) -> bool:
    """Whether the inventory's hosts are Slurm login hosts; a mix of both is an error."""
    hosts = [host for listed in cloud.hosts_by_type.values() for host in listed]
    slurm = [host for host in hosts if str(host.vars.get(SCHEDULER_KEY) or "") == "slurm"]
    if slurm and len(slurm) != len(hosts):
        other = next(host for host in hosts if host not in slurm)
        raise UserError(f"host {other.name} has no `{SCHEDULER_KEY}: slurm` while others have: an inventory is "
                        "either Slurm login hosts or SSH hosts", file=cloud.file, path=f"{other.host_type}.hosts."
                        f"{other.name}")
    return bool(slurm)


@dataclass
class SlurmCloud(SshCloud):
    suite: str = ""
    suite_id: str = ""
    allocated_exps: set[str] = field(default_factory=set)  # multi-host: each job is one allocation

    @classmethod
    def from_ssh(cls, ssh: SshCloud, suite: str, suite_id: int | str) -> SlurmCloud:
        return cls(project=ssh.project, name=ssh.name, file=ssh.file, hosts_by_type=ssh.hosts_by_type,
                   force=ssh.force, log=ssh.log, prj_id=ssh.prj_id, suite=suite, suite_id=str(suite_id))

    def assign(self, slots: list[HostSlot]) -> None:
        """Every slot of a host type runs through the first login host of that type."""
        per_exp: dict[str, int] = {}
        for slot in slots:
            per_exp[slot.exp] = per_exp.get(slot.exp, 0) + 1
        self.allocated_exps = {exp for exp, count in per_exp.items() if count > 1}
        for slot in slots:
            listed = self.hosts_by_type.get(slot.host_type) or []
            if not listed:
                raise UserError(f"host type {slot.host_type!r} has no login host in the inventory", file=self.file,
                                path=slot.host_type)
            self.assignment[slot.name] = listed[0]

    def check_vars(self) -> dict[str, Any]:
        return {"ssh_host_scheduler": "slurm"}

    def host_vars(self, suite_dir_name: str, slot: HostSlot, check_status: bool,
                  setup_roles: list[dict]) -> dict[str, Any]:
        found = super().host_vars(suite_dir_name, slot, check_status, setup_roles)
        host = self.assignment[slot.name]
        config: dict[str, Any] = {**settings_of(self.project).slurm_host_type(slot.host_type).scheduler_config(),
                                  "job_name_prefix": f"{self.prj_id}.{self.suite}.{self.suite_id}"}
        if host.vars.get("slurm_conf"):
            config["slurm_conf"] = str(host.vars["slurm_conf"])
        # Slots share the login host (and its folders): each gets folders of its own, so the job dirs and
        # journals of two slots never meet and a slot's shutdown cancels only its own jobs.
        found.update({
            "job_queue_dir": f"{found['job_queue_dir']}/{slot.name}",
            "job_queue_root": f"{found['job_queue_root']}/{slot.name}",
            "job_queue_scheduler": "slurm",
            "job_queue_scheduler_config": config,
            "job_queue_lock_file": "",  # a login host is shared: no lock to release
            "ssh_host_scheduler": "slurm",
        })
        if slot.exp in self.allocated_exps:
            # The node is known only once the allocation runs: commands name it by a token, which the
            # allocation replaces with the node's name before the host's part starts.
            found["public_dns_name"] = found["private_dns_name"] = node_token(slot.name)
        return found

    def allocation_parts(self, slots: list[HostSlot], host_vars: dict[str, dict]) -> list[dict] | None:
        if len(slots) < 2:
            return None
        return [{"host": slot.name, "host_type": slot.host_type, "host_idx": slot.idx,
                 "root": host_vars[slot.name]["job_queue_root"], "token": node_token(slot.name)} for slot in slots]

    def release_hosts(self, suite_dir: Path, host_vars: dict[str, dict], *, still_locked: list[str]) -> None:
        """Nothing was locked; the job folders stay on the cluster's filesystem."""

    def abandon_hosts(self, suite_dir: Path) -> None:
        """Nothing was locked."""


class SlurmKeptHosts(SshKeptHosts):
    """A Slurm run's slots that were not cleaned up: their finished jobs are fetched first (as a poll
    would), then their jobs are cancelled by recorded id and their folders on the cluster removed."""

    @property
    def kind(self) -> str:
        return f"Slurm slot(s) of inventory {self.inventory}"

    @property
    def fetches_first(self) -> bool:
        return True

    def cleanup_vars(self) -> dict[str, Any]:
        return {"doe_remove_host_dir": True}


def plan_lines(project: Project, suite_name: str, cloud_name: str) -> list[str]:
    """`doe plan --cloud <slurm inventory>`: per experiment the login host, the number of sbatch jobs (a
    multi-host experiment's job is one allocation of a node per host) and their resources; submits nothing."""
    from doe_cli.clouds import design_host_types
    from doe_cli.clouds.inventory_template import inventory_vars
    from doe_cli.design import load_suite
    from doe_cli.run.hosts import assign_hosts

    variables = inventory_vars(project, suite=suite_name, cloud=cloud_name,
                               host_types=design_host_types(project, cloud_name, suite_name, None))
    ssh = SshCloud.load(project, cloud_name, variables)
    if not is_slurm_inventory(ssh):
        raise UserError(f"inventory/{cloud_name} has no Slurm login hosts (job_scheduler: slurm); `doe plan` plans "
                        "aws and Slurm clouds", path="--cloud")
    suite = load_suite(project, suite_name, variables={"suite": suite_name, "cloud": cloud_name}, strict=False)
    slots_by_exp: dict[str, list[HostSlot]] = {}
    for slot in assign_hosts(suite):
        slots_by_exp.setdefault(slot.exp, []).append(slot)
    lines = [f"suite {suite_name} on the Slurm cluster of {ssh.file}: every job is one sbatch job "
             "(a multi-host experiment's job one allocation of a node per host)"]
    for exp_name, exp in suite.experiments.items():
        slots = slots_by_exp[exp_name]
        first = slots[0]
        settings = settings_of(project).slurm_host_type(first.host_type)
        args = settings.sbatch_args()
        jobs = f"{'at most ' if exp.repetitions else ''}{exp.max_jobs()}"
        if len(slots) > 1:
            hosts = ", ".join(f"{slot.host_type} x{slot.n}" for slot in slots if slot.idx == 0)
            what = f"{jobs} allocation(s) of {len(slots)} nodes ({hosts})"
            args = [f"--nodes={len(slots)}", "--ntasks-per-node=1", "--exclusive", *args]
        else:
            what = f"{jobs} job(s)"
        resources = " ".join(args) or "(the partition's defaults)"
        modules = f"; modules: {' '.join(settings.slurm_modules)}" if settings.slurm_modules else ""
        lines.append(f"  {exp_name}: {what} via {_login_of(ssh, first.host_type)}: sbatch {resources}{modules}")
    return lines


def _login_of(ssh: SshCloud, host_type: str) -> str:
    listed = ssh.hosts_by_type.get(host_type) or []
    if not listed:
        return "(no login host of this type in the inventory)"
    if listed[0].vars.get("ansible_connection") == "local":
        return f"{listed[0].name} (this machine)"
    return listed[0].address
