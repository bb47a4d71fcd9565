"""Delete (or list) a suite's or a whole project's AWS resources, found by their doe tags alone."""

from __future__ import annotations

from dataclasses import dataclass, field

from doe_cli.clouds.aws.playbooks import raise_for_failure, run_playbook
from doe_cli.config import Project
from doe_cli.errors import UserError
from etl.layout import last_suite_id

# The run's set_stats key (role aws_teardown) with what the tags found, per kind: [{id, ...}].
FOUND_KEY = "aws_teardown_found"
KINDS = ("instances", "security_groups", "route_tables", "internet_gateways", "subnets", "vpcs", "key_pairs",
         "launch_templates")


@dataclass(frozen=True)
class CleanReport:
    found: dict[str, list[str]] = field(default_factory=dict)
    deleted: bool = False

    @property
    def total(self) -> int:
        return sum(len(ids) for ids in self.found.values())

    def lines(self) -> list[str]:
        return [f"{kind}: {' '.join(self.found[kind])}" for kind in KINDS if self.found.get(kind)]


def clean(project: Project, *, suite: str | None = None, suite_id: str | int | None = None,
          dry_run: bool = False) -> CleanReport:
    """Resources of the project, narrowed to a suite name and/or a suite id when given."""
    variables = {"aws_teardown_dry_run": dry_run, "aws_teardown_suite": suite or "",
                 "doe_suite_id": "" if suite_id is None else str(suite_id)}
    result = run_playbook(project, "aws-teardown.yml", project.results_dir / ".ansible", variables)
    raise_for_failure(result, "AWS cleanup")
    listed = result.data.get(FOUND_KEY) or {}
    found = {kind: [str(entry["id"]) for entry in listed.get(kind, [])] for kind in KINDS}
    return CleanReport(found=found, deleted=not dry_run)


def resolve_suite_id(project: Project, suite: str | None, suite_id: str | None) -> str | None:
    """A numeric id as given; 'last' = the suite's newest results folder (needs local state)."""
    if suite_id is None:
        return None
    if suite is None:
        raise UserError("--id needs --suite", path="--id")
    if suite_id.isdigit():
        return suite_id
    if suite_id != "last":
        raise UserError(f"expected a suite id (digits) or 'last', got '{suite_id}'", path="--id")
    last = last_suite_id(project.results_dir, suite)
    if last is None:
        raise UserError(f"no results folder of suite '{suite}' in {project.results_dir}; pass the numeric id "
                        "(or omit --id to clean every id of the suite)", path="--id")
    return str(last)
