"""Delete (or list) a suite's or a whole project's AWS resources, found by their doe tags alone."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from doe_cli.cloud.aws_playbooks import raise_for_failure, run_playbook
from doe_cli.config import Project

FOUND_TASK = "Report what was found"
KINDS = ("instances", "security_groups", "route_tables", "internet_gateways", "subnets", "vpcs", "key_pairs")


@dataclass(frozen=True)
class CleanReport:
    found: dict[str, list[str]] = field(default_factory=dict)
    deleted: bool = False

    @property
    def total(self) -> int:
        return sum(len(ids) for ids in self.found.values())

    def lines(self) -> list[str]:
        return [f"{kind}: {' '.join(self.found[kind])}" for kind in KINDS if self.found.get(kind)]


def clean(project: Project, *, suite_id: str | int | None = None, dry_run: bool = False,
          work_dir: Path | None = None) -> CleanReport:
    """Without suite_id: every resource tagged with the project id (all suites)."""
    variables = {"aws_teardown_dry_run": dry_run, "doe_suite_id": "" if suite_id is None else str(suite_id)}
    runs_dir = work_dir or project.results_dir / ".ansible"
    result = run_playbook(project, "aws-teardown.yml", runs_dir, variables)
    raise_for_failure(result, "AWS cleanup")
    facts = result.task_results(FOUND_TASK).get("localhost", {}).get("ansible_facts", {})
    found = {kind: list(facts.get("aws_teardown_found", {}).get(kind, [])) for kind in KINDS}
    return CleanReport(found=found, deleted=not dry_run)
