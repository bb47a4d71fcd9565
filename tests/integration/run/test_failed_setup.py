"""A project role that fails during the setup stops the run at once: one line naming the task, the
host and why (a command's last lines of stderr below it; an unknown module and the role file using it), no
job runs, the hosts are released, and after the fix `--id last` sets them up again."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from tests.integration.run.conftest import Doe, make_config_dir, tsp_servers_under

pytestmark = [pytest.mark.tsp, pytest.mark.slow]

DESIGN = """
exp:
  common_roles: [{role}]
  host_types:
    server:
      check_status: false
      $CMD$: exec sleep 300
    client:
      n: 2
      $CMD$: echo "$PWD" >> {ran_log}
  base_experiment:
    i:
      $FACTOR$: [1, 2]
"""

# A build whose compiler errors come before make's own last line, on the second client only.
BUILD_FAILS = """\
- name: Build the tool
  ansible.builtin.command:
    argv: [sh, -c, 'echo compiling; echo "tool.c:3: error: x undeclared" >&2; echo "make: *** [all] Error 1" >&2; exit 2']
  changed_when: true
  when: doe_host_type == 'client' and doe_host_idx == 1
"""

# A module of a collection doe does not ship: Ansible resolves it only when the role is loaded.
MODULE_MISSING = """\
- name: Pull the tool's image
  community.docker.docker_image:
    name: tool
    source: pull
"""

FIXED = """\
- name: Note that the setup ran
  ansible.builtin.command:
    argv: [touch, "{marker}"]
  changed_when: true
"""


@pytest.fixture(scope="module")
def project():
    root = Path(tempfile.mkdtemp(prefix="doe-setup-", dir="/tmp"))  # short: task spooler sockets
    ran_log = root / "ran.log"
    config = make_config_dir(root, {
        "build_fails": DESIGN.format(role="builds_tool", ran_log=ran_log),
        "module_missing": DESIGN.format(role="pulls_image", ran_log=ran_log),
    })
    for role, tasks in (("builds_tool", BUILD_FAILS), ("pulls_image", MODULE_MISSING)):
        (config / "roles" / role / "tasks").mkdir(parents=True)
        (config / "roles" / role / "tasks" / "main.yml").write_text(tasks)
    doe = Doe(config, root / "results", root / "hosts")
    doe.ran_log = ran_log
    yield doe
    shutil.rmtree(root, ignore_errors=True)


def playbooks_run(suite_dir: Path) -> list[str]:
    """The playbooks of the suite's Ansible runs, in order: each run has a folder <time>-<pid>-<n>-<playbook>."""
    folders = sorted(folder.name for folder in (suite_dir / ".doe" / "ansible").iterdir() if folder.is_dir())
    return [name.split("-", 3)[3] for name in folders]


def assert_failed_setup_released_the_hosts(project: Doe, suite_dir: Path, stderr: str) -> None:
    assert "enqueue failed" not in stderr and "Traceback" not in stderr
    # One round: the setup (with its first enqueue) and the cleanup that releases the hosts.
    assert playbooks_run(suite_dir) == ["setup-and-enqueue", "cleanup"]
    assert "releasing the 3 host(s)" in stderr
    assert tsp_servers_under(project.local) == []
    assert not (project.local / suite_dir.name).exists()
    assert not project.ran_log.exists()  # no job ran on any host


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_a_failing_setup_command_stops_the_run_at_once_naming_task_host_and_stderr(project):
    done = project("run", "--suite", "build_fails", "--id", "new", check=False)
    assert done.returncode == 1, done.stderr
    suite_dir = project.suite_dir("build_fails")
    suite_id = suite_dir.name.rsplit("_", 1)[1]
    error = (f"error: setup failed: exp-client-1 failed in task 'Build the tool' of role builds_tool: non-zero "
             f"return code; fix it, then set up again with: doe run --suite build_fails --id {suite_id}")
    assert error_lines(done.stderr) == [error], done.stderr
    # The command's last lines of stderr follow, each on its own line (a compiler's error stays readable).
    assert (f"{error}\nlast 2 line(s) of the command's output on exp-client-1:\n"
            "  tool.c:3: error: x undeclared\n  make: *** [all] Error 1\n") in done.stderr
    assert_failed_setup_released_the_hosts(project, suite_dir, done.stderr)


def test_an_unknown_module_is_a_setup_error_and_after_the_fix_the_suite_sets_up_again(project):
    done = project("run", "--suite", "module_missing", "--id", "new", check=False)
    assert done.returncode == 1, done.stderr
    [error] = error_lines(done.stderr)
    role_file = project.config / "roles" / "pulls_image" / "tasks" / "main.yml"
    assert error.startswith("error: setup failed: Ansible stopped at task 'Run the project's setup roles for this "
                            "host': couldn't resolve module/action 'community.docker.docker_image'"), error
    assert f"({role_file}:1:3)" in error
    suite_dir = project.suite_dir("module_missing")
    assert_failed_setup_released_the_hosts(project, suite_dir, done.stderr)

    marker = project.config.parent / "setup-ran"
    role_file.write_text(FIXED.format(marker=marker))
    done = project("run", "--suite", "module_missing", "--id", "last")
    assert "exp: 2/2 jobs, 0 failed" in done.stderr and marker.exists()
    assert len(project.ran_log.read_text().splitlines()) == 4  # 2 jobs on 2 clients
    assert tsp_servers_under(project.local) == []
