"""Running the aws-*.yml playbooks for one project: shared variables and error mapping."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from doe_cli.ansible_adapter import AnsibleAdapter, PlaybookResult
from doe_cli.config import Project
from doe_cli.errors import DoeError, UserError

# Tasks of aws_preflight (and of the other roles) whose failure means bad configuration, not a broken
# cloud: their message is already one line naming the file and key, and the exit code is 2.
CONFIG_CHECK_PREFIXES = ("Reject ", "Explain how to set")


def base_vars(project: Project) -> dict[str, Any]:
    return {"doe_config_dir": str(project.config_dir)}


def run_playbook(project: Project, playbook: str, work_dir: Path, extravars: dict[str, Any]) -> PlaybookResult:
    adapter = AnsibleAdapter(work_dir, roles_paths=[project.roles_dir])
    return adapter.run(playbook, extravars={**base_vars(project), **extravars})


def raise_for_failure(result: PlaybookResult, what: str) -> None:
    """UserError for a failed configuration check, DoeError for anything else; nothing if it went well."""
    if result.ok:
        return
    for failure in result.failures():
        if failure.task.startswith(CONFIG_CHECK_PREFIXES):
            raise UserError(failure.message)
    raise DoeError(f"{what} failed: {result.summary()}")
