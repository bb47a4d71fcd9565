"""A config dir written for doe-suite runs unchanged on the local cloud: its group_vars build host
variables with Jinja (rendered by Ansible in each host's context before designs read them through
at_runtime), its code is checked out where its exp_code_dir says, and its roles use modules of the
collections doe-suite projects rely on (community.general)."""

from __future__ import annotations

import subprocess

import pytest

from tests.integration.run.conftest import Doe, make_config_dir, tsp_servers_under

pytestmark = [pytest.mark.tsp, pytest.mark.slow]

COMPAT = """
compat:
  common_roles: [setup-common]
  host_types:
    small:
      $CMD$: >-
        echo "prj=[% 'prj_id' | at_runtime(exp_host_lst) %]";
        echo "python=[% 'demo_project_python' | at_runtime(exp_host_lst) %]";
        echo "results=[% exp_host_lst[0].hostvars.remote.results_dir %]";
        cat "[% 'exp_code_dir' | at_runtime(exp_host_lst) %]/tool.sh"; cat {{ bench_settings_file }}
  base_experiment:
    i: 1
"""

BAD = """
bad:
  host_types:
    small:
      $CMD$: ls [% 'broken_dir' | at_runtime(exp_host_lst) %]
  base_experiment:
    i: 1
"""

# group_vars/all as doe-suite projects write them (broken_dir is used by the `bad` suite only).
GROUP_VARS = """\
prj_id: example_{{{{ does_project_id_suffix }}}}
git_remote_repository:
  - repo: file://{repo}
    version: main
remote:
  dir: "{{{{ remote_dir | default('/home/' + ansible_user + '/doe-suite/' + prj_id + '/' + suite) }}}}"
  results_dir: "{{{{ remote_dir }}}}/results-of-{{{{ suite }}}}"
exp_code_dir: "{{{{ remote.dir }}}}/code"
demo_project_python: "{{{{ exp_code_dir + '/demo_project/.venv/bin/python' }}}}"
broken_dir: "{{{{ not_defined_anywhere }}}}/data"
bench_settings_file: {settings}
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


class ProjectDoe(Doe):
    def env(self) -> dict[str, str]:
        return {**super().env(), "DOES_PROJECT_ID_SUFFIX": "t13"}


@pytest.fixture(scope="module")
def project(short_tmp):
    root = short_tmp / "doe-suite-project"
    config = make_config_dir(root, {"compat": COMPAT, "bad": BAD})
    (config / "roles" / "setup-common" / "tasks").mkdir(parents=True)
    (config / "roles" / "setup-common" / "tasks" / "main.yml").write_text(SETUP_COMMON)
    repo = root / "code-repo"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    (repo / "tool.sh").write_text("echo tool\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(repo)]
    subprocess.run([*git, "add", "tool.sh"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "one"], check=True)
    (config / "group_vars" / "all" / "main.yml").write_text(
        GROUP_VARS.format(repo=repo, settings=root / "settings.ini"))
    return ProjectDoe(config, root / "results", root / "hosts")


def test_jinja_host_vars_are_rendered_on_the_host_and_roles_use_community_general(project):
    done = project("run", "--suite", "compat", "--id", "new", "--keep")
    assert "compat: 1/1 jobs, 0 failed" in done.stderr
    suite_dir = project.suite_dir("compat")
    host = project.local / suite_dir.name / "compat-small-0"
    stdout = (suite_dir / "compat" / "run_0" / "rep_0" / "small" / "host_0" / "stdout.log").read_text()
    # The code is checked out where the project's exp_code_dir says (remote.dir/code, remote_dir being
    # the host's folder on the local cloud); the role wrote its settings with community.general.ini_file.
    assert [line for line in stdout.splitlines() if line] == [
        "prj=example_t13", f"python={host}/code/demo_project/.venv/bin/python",
        f"results={host}/results-of-compat", "echo tool", "[bench]", "threads = 4"]
    assert "{{" not in (suite_dir / "suite_design_ext.yml").read_text()
    project("clean", "--cloud", "local", "--suite", "compat", "--id", "last", "--yes")


def test_a_host_var_that_cannot_be_rendered_is_a_one_line_error_naming_it(project):
    done = project("run", "--suite", "bad", "--id", "new", check=False)
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if "broken_dir" in line]
    assert len(errors) == 1 and "not_defined_anywhere" in errors[0], done.stderr
    assert "bad.yml" in errors[0] and "Traceback" not in done.stderr
    assert tsp_servers_under(project.local) == []
