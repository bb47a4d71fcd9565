"""A config dir written for doe-suite runs unchanged on the local cloud: its roles use modules of the
collections doe-suite projects rely on (community.general)."""

from __future__ import annotations

import pytest

from tests.integration.run.conftest import Doe, make_config_dir

pytestmark = [pytest.mark.tsp, pytest.mark.slow]

DESIGN = """
compat:
  common_roles: [setup-common]
  host_types:
    small:
      $CMD$: cat {{ bench_settings_file }}
  base_experiment:
    i: 1
"""

# A project role as doe-suite projects write them, with a module outside ansible.builtin.
SETUP_COMMON = """\
- name: Write the benchmark settings
  community.general.ini_file:
    path: "{{ bench_settings_file }}"
    section: bench
    option: threads
    value: "4"
    mode: "0644"
"""


@pytest.fixture(scope="module")
def project(short_tmp):
    root = short_tmp / "doe-suite-project"
    config = make_config_dir(root, {"compat": DESIGN})
    (config / "roles" / "setup-common" / "tasks").mkdir(parents=True)
    (config / "roles" / "setup-common" / "tasks" / "main.yml").write_text(SETUP_COMMON)
    (config / "group_vars" / "all" / "main.yml").write_text(
        f"prj_id: compat\nbench_settings_file: {root / 'settings.ini'}\n")
    return Doe(config, root / "results", root / "hosts")


def test_a_project_role_runs_a_community_general_module(project):
    done = project("run", "--suite", "compat", "--id", "new")
    assert "compat: 1/1 jobs, 0 failed" in done.stderr
    stdout = project.suite_dir("compat") / "compat" / "run_0" / "rep_0" / "small" / "host_0" / "stdout.log"
    assert stdout.read_text().split() == ["[bench]", "threads", "=", "4"]
