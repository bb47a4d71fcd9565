"""Running the aws-*.yml playbooks for one project: shared variables and error mapping."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from doe_cli.ansible_adapter import AnsibleAdapter, PlaybookResult
from doe_cli.config import Project
from doe_cli.errors import DoeError, UserError
from doe_cli.fileio import load_yaml

# Tasks of aws_preflight (and of the other roles) whose failure means bad configuration, not a broken
# cloud: their message is already one line naming the file and key, and the exit code is 2.
CONFIG_CHECK_PREFIXES = ("Reject ", "Explain how to set")
# playbooks/module_utils/doe_aws_access.py: AWS cannot be used at all. Missing or rejected credentials
# are the user's to fix (exit code 2); an unreachable endpoint may be the network's (exit code 1).
ACCESS_PROBLEM_KEY = "aws_access_problem"
UNREACHABLE = "unreachable"


# doe-suite projects name the EC2 key pair and the instances' SSH user in the environment; a value set in
# group_vars/all/main.yml wins over it.
ENV_SETTINGS = {"aws_key_name": "DOES_SSH_KEY_NAME", "aws_ssh_user": "DOES_AWS_USER"}


def base_vars(project: Project) -> dict[str, Any]:
    return {"doe_config_dir": str(project.config_dir), **settings_from_env(project)}


def settings_from_env(project: Project) -> dict[str, str]:
    """The ENV_SETTINGS that group_vars/all/main.yml leaves empty, from their environment variables."""
    all_vars_file = project.group_vars_dir / "all" / "main.yml"
    group_all = (load_yaml(all_vars_file.read_text(encoding="utf-8")) if all_vars_file.is_file() else None) or {}
    return {setting: os.environ[variable] for setting, variable in ENV_SETTINGS.items()
            if os.environ.get(variable) and not group_all.get(setting)}


def run_playbook(project: Project, playbook: str, work_dir: Path, extravars: dict[str, Any]) -> PlaybookResult:
    adapter = AnsibleAdapter(work_dir, roles_paths=[project.roles_dir])
    return adapter.run(playbook, extravars={**base_vars(project), **extravars})


def raise_for_failure(result: PlaybookResult, what: str) -> None:
    """UserError for a failed configuration check or unusable credentials, DoeError for anything else
    (an unreachable endpoint as its one line); nothing if it went well."""
    if result.ok:
        return
    for failure in result.failures():
        problem = failure.result.get(ACCESS_PROBLEM_KEY)
        if problem == UNREACHABLE:
            raise DoeError(failure.message)
        if problem or failure.task.startswith(CONFIG_CHECK_PREFIXES):
            raise UserError(failure.message)
    raise DoeError(f"{what} failed: {result.summary()}")
