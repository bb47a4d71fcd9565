"""setup.yml, run again on hosts it already set up, changes nothing: the queue helpers are copied only
when they differ, the checkout stays at its commit. A setup that always reported changes would hide the
one that really changed something."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from doe_cli.ansible_adapter import AnsibleAdapter
from doe_cli.run.code_version import stored_file

from .conftest import Doe, make_config_dir

pytestmark = [pytest.mark.tsp, pytest.mark.slow]

DESIGN = """
once:
  n_repetitions: 1
  host_types:
    small:
      n: 2
      $CMD$: echo ran
  base_experiment:
    x: 1
"""


def _git(folder, *args: str) -> str:
    return subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True, text=True,
                          env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                               "GIT_COMMITTER_EMAIL": "t@t", "HOME": str(folder)}).stdout.strip()


@pytest.fixture(scope="module")
def kept_suite(short_tmp):
    root = short_tmp / "setup-twice"
    code = root / "code"
    code.mkdir(parents=True)
    _git(code, "init", "-q")
    (code / "VERSION").write_text("1\n")
    _git(code, "add", "VERSION")
    _git(code, "commit", "-q", "-m", "v1")
    config = make_config_dir(root, {"once": DESIGN})
    group_all = config / "group_vars" / "all" / "main.yml"
    settings = yaml.safe_load(group_all.read_text())
    group_all.write_text(yaml.safe_dump({**settings, "git_remote_repository": str(code)}, sort_keys=False))
    doe = Doe(config, root / "results", root / "hosts")
    doe("run", "--suite", "once", "--id", "new", "--keep")
    suite_dir = doe.suite_dir("once")
    yield doe, suite_dir
    doe("clean", "--cloud", "local", "--yes", check=False)


def test_a_second_setup_changes_nothing(kept_suite, tmp_path):
    doe, suite_dir = kept_suite
    inventory = suite_dir / ".inventory" / "local.yml"
    extravars = {"setup_suite_repositories": json.loads(stored_file(suite_dir).read_text()),
                 "setup_suite_host_var_names": []}
    adapter = AnsibleAdapter(tmp_path / "ansible", config_dir=doe.config)

    again = adapter.run("setup.yml", inventory=inventory, extravars=extravars)
    assert again.ok, again.summary()
    assert again.stats.get("ok"), "setup ran no task"
    assert again.changed_count() == 0, _changed(again)


def test_a_changed_helper_is_copied_again(kept_suite, tmp_path):
    doe, suite_dir = kept_suite
    inventory = suite_dir / ".inventory" / "local.yml"
    hosts = yaml.safe_load(inventory.read_text())["all"]["hosts"]
    name, host = next(iter(hosts.items()))
    helper = f"{host['job_queue_dir']}/bin/doe_queue.py"
    with open(helper, "a", encoding="utf-8") as handle:
        handle.write("# edited on the host\n")
    extravars = {"setup_suite_repositories": json.loads(stored_file(suite_dir).read_text()),
                 "setup_suite_host_var_names": []}
    result = AnsibleAdapter(tmp_path / "ansible", config_dir=doe.config).run("setup.yml", inventory=inventory,
                                                                              extravars=extravars)
    assert result.ok, result.summary()
    assert _changed(result) == {"Copy the queue helper and the job wrapper to a local host": [name]}
    assert "edited on the host" not in open(helper, encoding="utf-8").read()


def _changed(result) -> dict[str, list[str]]:
    changed: dict[str, list[str]] = {}
    for event in result.events:
        data = event.get("event_data", {})
        if event.get("event") == "runner_on_ok" and (data.get("res") or {}).get("changed"):
            changed.setdefault(data.get("task"), []).append(data.get("host"))
    return changed
