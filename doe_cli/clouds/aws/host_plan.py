"""Which hosts a suite needs: one slot per (experiment, host type, index within the experiment).

The slots come from the run machinery's host assignment, so every cloud counts hosts the same way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from doe_cli.config import Project
from doe_cli.run.hosts import assign_hosts


@dataclass(frozen=True)
class HostSlot:
    exp: str
    host_type: str
    idx: int

    def as_vars(self) -> dict[str, Any]:
        return {"exp": self.exp, "host_type": self.host_type, "idx": self.idx}


def host_plan_from(slots: Iterable[Any]) -> list[HostSlot]:
    """Normalise slots (HostSlot, doe_cli.run.hosts.HostSlot, or (exp, host_type, idx) tuples)."""
    plan = []
    for slot in slots:
        if isinstance(slot, tuple):
            exp, host_type, idx = slot[:3]
        else:
            exp, host_type, idx = slot.exp, slot.host_type, slot.idx
        plan.append(HostSlot(str(exp), str(host_type), int(idx)))
    return plan


def host_plan_for_suite(suite: Any) -> list[HostSlot]:
    return host_plan_from(assign_hosts(suite))


def hosts_per_type(plan: list[HostSlot]) -> dict[str, int]:
    """Instances per host type, in order of first appearance."""
    return dict(Counter(slot.host_type for slot in plan))


def plan_vars(plan: list[HostSlot]) -> list[dict[str, Any]]:
    return [slot.as_vars() for slot in plan]


def plan_inputs(project: Project, plan: list[HostSlot]) -> dict[str, Any]:
    """The extra vars of the AWS playbooks that take a host plan: the plan and its host types' settings
    (doe_aws_host_types, checked and with defaults, so the roles read no group_vars file themselves)."""
    from doe_cli.settings import settings_of  # pydantic: only for AWS

    return {"doe_host_plan": plan_vars(plan),
            "doe_aws_host_types": settings_of(project).aws_host_types([slot.host_type for slot in plan])}
