"""Provision a suite's AWS hosts (network, instances, inventory) through playbooks/aws-provision.yml."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from doe_cli.clouds.aws.host_plan import HostSlot, plan_inputs
from doe_cli.clouds.aws.playbooks import raise_for_failure, run_playbook
from doe_cli.clouds.inventory import copy_group_vars
from doe_cli.config import Project

INVENTORY_NAME = "aws.yml"


@dataclass(frozen=True)
class ProvisionResult:
    inventory_file: Path
    changed: int
    seconds: float


def inventory_file(suite_dir: Path) -> Path:
    return suite_dir / ".inventory" / INVENTORY_NAME


def provision(project: Project, suite: str, suite_id: str | int, host_plan: list[HostSlot], suite_dir: Path, *,
              host_overrides: dict[str, dict[int, dict[str, Any]]] | None = None) -> ProvisionResult:
    """Create (or complete) the suite's resources and write its inventory; idempotent.

    On failure after preflight the playbook deletes everything of the suite before this raises.
    host_overrides: {host_type: {index within the type: {ansible_host, ansible_port, ...}}}.
    """
    target = inventory_file(suite_dir)
    variables: dict[str, Any] = {
        "doe_suite": suite,
        "doe_suite_id": str(suite_id),
        **plan_inputs(project, host_plan),
        "doe_inventory_file": str(target),
        "aws_inventory_host_overrides": _string_keys(host_overrides or {}),
    }
    started = time.monotonic()
    result = run_playbook(project, "aws-provision.yml", suite_dir / ".ansible", variables)
    raise_for_failure(result, f"provisioning suite {suite} {suite_id} on AWS")
    copy_group_vars(project, target.parent)  # so `ansible-playbook -i .inventory/aws.yml` works by hand
    return ProvisionResult(inventory_file=target, changed=result.changed_count(),
                           seconds=time.monotonic() - started)


def _string_keys(overrides: dict) -> dict[str, dict[str, Any]]:
    # Extra vars travel as JSON, whose object keys are strings.
    return {str(t): {str(i): dict(v) for i, v in per_type.items()} for t, per_type in overrides.items()}


def write_inventory(project: Project, suite_id: str | int, suite_dir: Path, *,
                    host_overrides: dict[str, dict[int, dict[str, Any]]] | None = None) -> Path:
    """Rewrite the suite's inventory from its running instances (found by tags), e.g. on resume."""
    target = inventory_file(suite_dir)
    variables = {"doe_suite_id": str(suite_id), "doe_inventory_file": str(target),
                 "aws_inventory_host_overrides": _string_keys(host_overrides or {})}
    result = run_playbook(project, "aws-inventory.yml", suite_dir / ".ansible", variables)
    raise_for_failure(result, f"writing the AWS inventory of suite id {suite_id}")
    copy_group_vars(project, target.parent)
    return target
