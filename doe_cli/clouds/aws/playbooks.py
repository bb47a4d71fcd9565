"""Running the aws-*.yml playbooks for one project: shared variables and error mapping."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from doe_cli.ansible_adapter import AnsibleAdapter, PlaybookResult
from doe_cli.config import Project
from doe_cli.errors import DoeError, UserError

# The run's set_stats key (role config_error) of a failed configuration check, not a broken cloud: its
# message is already one line naming the file and key, and the exit code is 2.
CONFIG_ERROR_KEY = "doe_config_error"
CONFIG_ERROR_ROLE = "config_error"
# playbooks/module_utils/doe_aws_access.py: AWS cannot be used at all. Missing or rejected credentials
# are the user's to fix (exit code 2); an unreachable endpoint may be the network's (exit code 1).
ACCESS_PROBLEM_KEY = "aws_access_problem"
UNREACHABLE = "unreachable"


def run_playbook(project: Project, playbook: str, work_dir: Path, extravars: dict[str, Any]) -> PlaybookResult:
    adapter = AnsibleAdapter(work_dir, roles_paths=[project.roles_dir], config_dir=project.config_dir)
    return adapter.run(playbook, extravars={"doe_config_dir": str(project.config_dir), **extravars})


def raise_for_failure(result: PlaybookResult, what: str) -> None:
    """UserError for a failed configuration check or unusable credentials, DoeError for anything else
    (an unreachable endpoint as its one line); nothing if it went well."""
    if result.ok:
        return
    config_error = result.data.get(CONFIG_ERROR_KEY)
    if config_error:
        raise UserError(" ".join(str(config_error).split()))
    for failure in result.failures():
        problem = failure.result.get(ACCESS_PROBLEM_KEY)
        if problem == UNREACHABLE:
            raise DoeError(failure.message)
        if problem:
            raise UserError(failure.message)
    raise DoeError(f"{what} failed: {result.summary()}")
