"""`doe run --cloud aws`: the suite's EC2 instances, then the SSH cloud's machinery on them.

Before anything is set up: the plan (hosts per type, cost against the budget; `--yes` accepts more),
the AWS preflight, then provisioning (network, instances, a discovery inventory), all idempotent. A
resume of a suite whose hosts were set up (after a crash, a kill or Ctrl-C) only finds its running
instances by their tags and goes on with them: no plan, no provisioning, no setup. If one of them is
gone (expired, or terminated by AWS), replacements are provisioned and every host is set up again.
The instances then are SSH hosts: checked, locked, set up (with the cloud's setup roles,
`aws_setup_roles` in group_vars/all, as the discovery inventory names them) and given jobs like any
other. Releasing the hosts (cleanup after a complete run, or a failure) deletes everything of the suite
id; Ctrl-C keeps the instances for a resume (`doe clean --cloud aws --suite S --id ID` deletes them;
they expire anyway).

`aws_inventory_host_overrides` in group_vars/all ({host_type: {index: {ansible_host, ...}}}) replaces
discovered host vars: tests map an emulator's instances onto local sshd hosts with it.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from doe_cli.clouds.aws import clean as aws_clean
from doe_cli.clouds.aws import plan as aws_plan
from doe_cli.clouds.aws import provision as aws_provision
from doe_cli.clouds.aws.cost import CostLedger
from doe_cli.clouds.aws.host_plan import host_plan_from
from doe_cli.clouds.base import CostSoFar
from doe_cli.clouds.ssh import InventoryHost, SshCloud, prj_id_of
from doe_cli.config import Project
from doe_cli.errors import DoeError
from doe_cli.run.hosts import HostSlot
from doe_cli.run.state import setup_marker as suite_setup_marker
from doe_cli.settings import AwsSettings, settings_of
from etl.layout import suite_folder

CLOUD_NAME = "aws"


@dataclass
class AwsCloud(SshCloud):
    suite: str = ""
    suite_id: str = ""
    accept_cost: bool = False
    settings: AwsSettings = field(default_factory=AwsSettings)  # group_vars/all's AWS keys, checked
    provisioned: bool = False
    ledger: CostLedger = field(default_factory=CostLedger)  # the instances' cost so far (cost.py)

    @classmethod
    def create(cls, project: Project, suite: str, suite_id: int | str, *, accept_cost: bool,
               log: Callable[[str], None], force: bool = False) -> AwsCloud:
        settings = settings_of(project).aws
        return cls(project=project, name=CLOUD_NAME, file="group_vars/all/main.yml", hosts_by_type={},
                   force=force, log=log, prj_id=prj_id_of(project), suite=suite, suite_id=str(suite_id),
                   accept_cost=accept_cost, settings=settings)

    def assign(self, slots: list[HostSlot]) -> None:
        """Plan and budget, preflight, provision; then each slot gets the instance tagged with it.
        Resuming a suite whose hosts are set up: its running instances, found by their tags."""
        overrides = self.settings.aws_inventory_host_overrides
        setup_marker = suite_setup_marker(suite_folder(self.project.results_dir, self.suite, self.suite_id))
        if setup_marker.exists():
            with tempfile.TemporaryDirectory(prefix="doe-aws-") as tmp:
                found = aws_provision.write_inventory(self.project, self.suite_id, Path(tmp),
                                                      host_overrides=overrides)
                hosts = _hosts_of(yaml.safe_load(found.read_text()) or {}, self.suite_id)
            gone = [slot.name for slot in slots if slot.name not in hosts]
            self.provisioned = True  # a failed resume deletes the instances too (unless --keep)
            if not gone:
                self.log(f"resuming on the {len(slots)} running instance(s) of suite id {self.suite_id}")
                self._take(slots, hosts)
                return
            self.log(f"no running instance for {', '.join(gone)} (expired or terminated): launching "
                     "replacements; every host is set up again, the jobs lost with them run again")
            setup_marker.unlink(missing_ok=True)
        host_plan = host_plan_from((slot.exp, slot.host_type, slot.idx) for slot in slots)
        plan = aws_plan.build_plan(self.project, self.suite, host_plan)
        for line in plan.lines():
            self.log(line)
        aws_plan.check_budget(plan, accept=self.accept_cost)
        aws_plan.preflight(self.project, host_plan)
        with tempfile.TemporaryDirectory(prefix="doe-aws-") as tmp:
            self.provisioned = True  # from here on, a failure deletes whatever was created
            result = aws_provision.provision(self.project, self.suite, self.suite_id, host_plan, Path(tmp),
                                             host_overrides=overrides)
            self.log(f"provisioned {len(slots)} instance(s) in {result.seconds:.0f} s")
            discovered = yaml.safe_load(result.inventory_file.read_text()) or {}
        hosts = _hosts_of(discovered, self.suite_id)
        missing = [slot.name for slot in slots if slot.name not in hosts]
        if missing:
            raise DoeError(f"no running instance for {', '.join(missing)} after provisioning")
        self._take(slots, hosts)

    def _take(self, slots: list[HostSlot], hosts: dict[str, InventoryHost]) -> None:
        for slot in slots:
            self.assignment[slot.name] = hosts[slot.name]
            self.hosts_by_type.setdefault(slot.host_type, []).append(hosts[slot.name])
        # What the instances cost from here on, recorded in the suite folder with its inventory.
        self.ledger = CostLedger.load(self._suite_dir) or CostLedger()
        self.ledger.take_settings(self.settings)
        self.ledger.found({slot.name: hosts[slot.name].vars for slot in slots},
                          self.settings.aws_price_usd_per_hour, time.time())

    @property
    def _suite_dir(self) -> Path:
        return suite_folder(self.project.results_dir, self.suite, self.suite_id)

    def write_inventory(self, suite_dir: Path, slots: list[HostSlot], host_vars: dict[str, dict],
                        context: dict[str, Any], *, keep: bool) -> Path:
        inventory = super().write_inventory(suite_dir, slots, host_vars, context, keep=keep)
        self.ledger.save(suite_dir)  # the suite folder exists from here on
        return inventory

    def cost(self, now: float) -> CostSoFar | None:
        return self.ledger.cost(now)

    def host_vars(self, suite_dir_name: str, slot: HostSlot, check_status: bool,
                  setup_roles: list[dict]) -> dict[str, Any]:
        found = super().host_vars(suite_dir_name, slot, check_status, setup_roles)
        instance = self.assignment[slot.name].vars
        # The discovery inventory names them (aws_setup_roles), so plain ansible-playbook runs them too.
        found["doe_cloud_setup_roles"] = list(instance.get("doe_cloud_setup_roles") or [])
        found["instance_id"] = instance.get("instance_id")
        found["private_dns_name"] = instance.get("private_dns_name") or found["private_dns_name"]
        return found

    def release(self, suite_dir: Path, *, work_dir: Path, only: list[str] | None = None) -> bool:
        """The suite is done with its hosts (complete, or failed): delete everything of the suite id."""
        answered = super().release(suite_dir, work_dir=work_dir, only=only)
        self.teardown()
        return answered

    def teardown(self) -> None:
        if not self.provisioned:
            return
        report = aws_clean.clean(self.project, suite_id=self.suite_id)
        self.provisioned = False
        if self.ledger.instances and self._suite_dir.is_dir():
            self.ledger.all_ended(time.time())
            self.ledger.save(self._suite_dir)
        self.log(f"deleted {report.total} AWS resource(s) of suite id {self.suite_id}")


def _hosts_of(inventory: dict, suite_id: str) -> dict[str, InventoryHost]:
    """Instances of the discovery inventory by slot name (<exp>-<host_type>-<idx>), with all vars."""
    common = dict(inventory.get("all", {}).get("vars") or {})
    groups = inventory.get("all", {}).get("children", {}).get(f"suite_{suite_id}", {}).get("children") or {}
    hosts = {}
    for host_type, group in groups.items():
        for name, host_vars in (group.get("hosts") or {}).items():
            hosts[name] = InventoryHost(name=name, host_type=host_type, vars={**common, **(host_vars or {})})
    return hosts
