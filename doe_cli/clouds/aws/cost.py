"""What a suite's EC2 instances have cost so far, against its budget (status page, budget_80 notification).

No AWS call: every instance the run launched or took over is recorded in the suite's
`.doe/aws_instances.json` when doe learns of it (the discovery inventory of provisioning or of a resume
carries each instance's type and launch time), priced by aws_price_usd_per_hour of group_vars/all at
that moment, and given the time it ended once doe deleted it or found it gone. An instance costs its
hourly price times the hours from its launch to its end (or now), at most aws_max_lifetime_hours (it
then terminates itself), and at least a minute: EC2 bills Linux instances per second, at least a
minute per launch (as `doe plan` reckons).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeGuard

from doe_cli.clouds.aws.plan import BILLING_MINIMUM_SECONDS
from doe_cli.clouds.base import CostSoFar
from doe_cli.fileio import write_atomic
from doe_cli.settings.aws import DEFAULT_LIFETIME_HOURS, AwsSettings

LEDGER = "aws_instances.json"


@dataclass
class InstanceCharge:
    slot: str
    instance_type: str
    usd_per_hour: float | None      # None: no price for the type in aws_price_usd_per_hour
    launched: float                 # epoch seconds
    ended: float | None = None      # None: running, as far as doe knows

    def seconds(self, now: float, lifetime_seconds: float) -> float:
        end = now if self.ended is None else self.ended
        return max(BILLING_MINIMUM_SECONDS, min(max(0.0, end - self.launched), lifetime_seconds))

    def usd(self, now: float, lifetime_seconds: float) -> float:
        return (self.usd_per_hour or 0.0) * self.seconds(now, lifetime_seconds) / 3600


@dataclass
class CostLedger:
    budget_usd: float = 0.0
    lifetime_hours: float = DEFAULT_LIFETIME_HOURS
    instances: dict[str, InstanceCharge] = field(default_factory=dict)  # instance id -> its charge

    # --- what the run learns -----------------------------------------------------------------------------
    def take_settings(self, settings: AwsSettings) -> None:
        """The budget and lifetime of group_vars/all as they are now (a resume may have raised the budget)."""
        self.budget_usd = settings.aws_budget_usd
        self.lifetime_hours = settings.aws_max_lifetime_hours

    def found(self, hosts: dict[str, dict[str, Any]], prices: Mapping[str, Any], now: float) -> None:
        """The instances a discovery found running (slot name -> its inventory vars): new ones are recorded
        with their price; recorded ones not found any more ended by now at the latest."""
        seen = set()
        for slot, host_vars in hosts.items():
            instance_id = str(host_vars.get("instance_id") or "")
            launched = launch_seconds(host_vars.get("launch_time"))
            if not instance_id or launched is None:
                continue
            seen.add(instance_id)
            if instance_id not in self.instances:
                instance_type = str(host_vars.get("instance_type") or "")
                price = prices.get(instance_type)
                self.instances[instance_id] = InstanceCharge(
                    slot=slot, instance_type=instance_type, launched=launched,
                    usd_per_hour=float(price) if _is_number(price) else None)
        for instance_id, charge in self.instances.items():
            if instance_id not in seen and charge.ended is None:
                charge.ended = now

    def all_ended(self, now: float) -> None:
        """doe deleted the suite's instances."""
        for charge in self.instances.values():
            if charge.ended is None:
                charge.ended = now

    # --- what it says -----------------------------------------------------------------------------------
    def cost(self, now: float) -> CostSoFar:
        lifetime = self.lifetime_hours * 3600
        return CostSoFar(usd=sum(c.usd(now, lifetime) for c in self.instances.values()),
                         budget_usd=self.budget_usd, instances=len(self.instances),
                         unpriced=tuple(sorted({c.instance_type for c in self.instances.values()
                                                if c.usd_per_hour is None})))

    # --- the file ---------------------------------------------------------------------------------------
    @classmethod
    def load(cls, suite_dir: Path) -> CostLedger | None:
        """The suite's ledger; None if it has none (not an AWS run) or it cannot be read."""
        try:
            data = json.loads(ledger_file(suite_dir).read_text(encoding="utf-8"))
            return cls(budget_usd=float(data["budget_usd"]), lifetime_hours=float(data["lifetime_hours"]),
                       instances={str(k): InstanceCharge(**v) for k, v in data["instances"].items()})
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def save(self, suite_dir: Path) -> None:
        data = {"budget_usd": self.budget_usd, "lifetime_hours": self.lifetime_hours,
                "instances": {k: asdict(v) for k, v in sorted(self.instances.items())}}
        write_atomic(ledger_file(suite_dir), json.dumps(data, indent=1) + "\n")


def ledger_file(suite_dir: Path) -> Path:
    return suite_dir / ".doe" / LEDGER


def stored_cost(suite_dir: Path, now: float) -> CostSoFar | None:
    """`doe status --html`: the cost of a suite run from its ledger; None if it ran on no AWS instance."""
    ledger = CostLedger.load(suite_dir)
    return None if ledger is None else ledger.cost(now)


def launch_seconds(value: Any) -> float | None:
    """An instance's launch time (ISO 8601, as ec2_instance_info gives it, or a datetime) in epoch seconds."""
    if isinstance(value, datetime):
        found = value
    elif isinstance(value, str) and value:
        try:
            found = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    return (found if found.tzinfo else found.replace(tzinfo=UTC)).timestamp()


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
