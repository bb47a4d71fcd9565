"""What Python reads back from the playbooks exists in the YAML: task names it looks results up by, the
set_stats keys the playbooks off the hot path report their results under, and the markers of the host
helper's output. A task renamed or a key changed in a role would otherwise make doe silently find nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from doe_cli.clouds import ssh as ssh_cloud
from doe_cli.clouds.aws import clean as aws_clean
from doe_cli.clouds.aws import playbooks as aws_playbooks
from doe_cli.config import PLAYBOOKS_DIR, TOOL_ROLES_DIR
from doe_cli.run import ansible_env

_NESTED = ("block", "rescue", "always", "tasks", "pre_tasks", "post_tasks", "handlers")


def _tasks(node) -> Iterator[dict]:
    if isinstance(node, list):
        for item in node:
            yield from _tasks(item)
    elif isinstance(node, dict):
        yield node
        for key in _NESTED:
            yield from _tasks(node.get(key))


def _names(node) -> Iterator[str]:
    if isinstance(node, list):
        for item in node:
            yield from _names(item)
    elif isinstance(node, dict):
        if isinstance(node.get("name"), str):
            yield node["name"]
        for key in _NESTED:
            yield from _names(node.get(key))


def _task_files() -> list[Path]:
    return sorted([*TOOL_ROLES_DIR.glob("*/tasks/*.yml"), *PLAYBOOKS_DIR.glob("*.yml")])


@pytest.fixture(scope="module")
def task_names() -> set[str]:
    names: set[str] = set()
    for path in _task_files():
        names.update(_names(yaml.safe_load(path.read_text(encoding="utf-8"))))
    return names


@pytest.mark.parametrize("name", [
    ansible_env.STATUS_TASK, ansible_env.CLEANUP_TASK, ansible_env.FETCH_TASK, *ansible_env.ENQUEUE_TASKS,
    ansible_env.SETUP_FACTS_TASK, ansible_env.SETUP_GIT_TASK, ansible_env.SETUP_HOST_VARS_TASK,
    ssh_cloud.PREFLIGHT_TASK,
])
def test_every_task_python_reads_exists(task_names, name):
    assert name in task_names


@pytest.fixture(scope="module")
def all_tasks() -> list[tuple[Path, dict]]:
    return [(path, task) for path in _task_files()
            for task in _tasks(yaml.safe_load(path.read_text(encoding="utf-8")))]


def _set_stats_keys(all_tasks, role_dir: Path | None = None) -> set[str]:
    return {key for path, task in all_tasks if role_dir is None or role_dir in path.parents
            for key in ((task.get("ansible.builtin.set_stats") or {}).get("data") or {})}


@pytest.mark.parametrize(("key", "role"), [
    (aws_playbooks.CONFIG_ERROR_KEY, aws_playbooks.CONFIG_ERROR_ROLE),
    (aws_clean.FOUND_KEY, "aws_teardown"),
])
def test_every_set_stats_key_python_reads_is_reported_by_its_role(all_tasks, key, role):
    assert key in _set_stats_keys(all_tasks, TOOL_ROLES_DIR / role)
    # run-wide, as the adapter reads it (ansible-runner hands on only the data that is not per host)
    for _, task in all_tasks:
        stats = task.get("ansible.builtin.set_stats") or {}
        if key in (stats.get("data") or {}):
            assert not stats.get("per_host", False)


def test_configuration_checks_stop_through_the_role_that_reports_them(all_tasks):
    """A check that fails with its own message would be a broken cloud to doe (exit 1), not bad input."""
    checks = [task for _, task in all_tasks if str(task.get("name", "")).startswith("Reject ")]
    assert len(checks) >= 9
    for task in checks:
        include = task.get("ansible.builtin.include_role") or {}
        assert include.get("name") == aws_playbooks.CONFIG_ERROR_ROLE, task["name"]
        assert "config_error_message" in (task.get("vars") or {}), task["name"]


def test_the_task_walk_sees_nested_tasks(task_names):
    # Guards the walk itself: this task sits in a block's rescue of aws-provision.yml.
    assert "Delete everything of the suite" in task_names


def test_the_host_scripts_write_the_one_report_line_python_reads():
    helper = (TOOL_ROLES_DIR / "job-queue" / "files" / "doe_queue.py").read_text(encoding="utf-8")
    assert "DOE-JSON:" in helper
    for script in ("preflight.sh", "release.sh"):
        text = (TOOL_ROLES_DIR / "ssh-host" / "files" / script).read_text(encoding="utf-8")
        assert "DOE-JSON:" in text and "DOE-LOCK" not in text, script
    # The keys ssh.py reads are the ones the check prints.
    preflight = (TOOL_ROLES_DIR / "ssh-host" / "files" / "preflight.sh").read_text(encoding="utf-8")
    for key in ("home", "remote_dir", "results_dir", "error", "lock", "holder"):
        assert f'"{key}":' in preflight, key


def test_the_aws_modules_report_access_problems_under_the_key_python_reads():
    module_utils = (PLAYBOOKS_DIR / "module_utils" / "doe_aws_access.py").read_text(encoding="utf-8")
    assert f'"{aws_playbooks.ACCESS_PROBLEM_KEY}"' in module_utils
