"""The $CMD$ check: bash -n and shellcheck read commands on stdin; nothing is executed."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from doe_cli.config import TOOL_ROOT, discover
from doe_cli.design import load_suite
from doe_cli.design.cmdcheck import command_error, first_invalid
from doe_cli.errors import UserError

needs_shellcheck = pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")


def test_every_shipped_example_passes_the_check():
    project = discover(TOOL_ROOT)
    for suite in project.suites():
        load_suite(project, suite).extend(check_commands=True)


def test_quotes_heredocs_and_substitutions_are_valid_and_not_run(tmp_path):
    marker = tmp_path / "ran"
    commands = [
        f"""echo "it's" 'a "test"' $(touch {marker}) `touch {marker}`""",
        f"python3 - <<'EOF'\nopen('{marker}', 'w')\nEOF",
        f"touch {marker} & wait",
    ]
    assert first_invalid(commands) is None
    assert not marker.exists()


def test_the_invalid_command_is_found_among_many():
    commands = [f"echo {i}" for i in range(50)]
    commands.insert(37, "if true; then echo broken")
    command, message = first_invalid(commands)
    assert command == "if true; then echo broken"
    assert "syntax error" in message or "end of file" in message


@needs_shellcheck
def test_shellcheck_errors_that_bash_accepts_are_reported():
    assert command_error("echo ok") == ""
    assert "SC" in command_error("[[ a = b ]")


def test_run_check_names_experiment_run_and_host_type(tmp_path):
    root = tmp_path / "config"
    for name in ("all", "client"):
        (root / "group_vars" / name).mkdir(parents=True)
    (root / "group_vars" / "all" / "main.yml").write_text("prj_id: t\n")
    (root / "designs").mkdir()
    (root / "designs" / "s.yml").write_text(textwrap.dedent("""\
        exp:
          host_types:
            client:
              $CMD$: "echo [% 'ok' if my_run.x == 1 else '(' %]"
          base_experiment:
            x: {$FACTOR$: [1, 2]}
    """))
    suite = load_suite(discover(root), "s")
    hosts = {"exp": [{"host_type": "client", "host_type_idx": 0, "host_type_n": 1, "public_dns_name": "h",
                      "private_dns_name": "h", "hostvars": {}}]}
    with pytest.raises(UserError) as caught:
        suite.extend(hosts)
    assert caught.value.path == "experiments.exp.host_types.client.$CMD$"
    assert caught.value.detail.startswith("run 1: $CMD$ is invalid bash syntax")
    assert Path(caught.value.file).name == "s.yml"
    suite.extend(hosts, check_commands=False)


def test_expressions_kept_for_run_time_pass_the_design_time_check(tmp_path):
    root = tmp_path / "config"
    for name in ("all", "small"):
        (root / "group_vars" / name).mkdir(parents=True)
    (root / "group_vars" / "all" / "main.yml").write_text("prj_id: t\n")
    (root / "designs").mkdir()
    (root / "designs" / "s.yml").write_text(textwrap.dedent("""\
        exp:
          host_types:
            small:
              $CMD$: "{{ app_python }} {{ code_dir }}/run.py --size [% my_run.size %]"
          base_experiment: {size: 3}
    """))
    runs = load_suite(discover(root), "s").extend(check_commands=True)["exp"]
    assert runs[0]["$CMD$"]["small"][0]["main"] == "{{ app_python }} {{ code_dir }}/run.py --size 3"


def _config_with(tmp_path: Path, design: str):
    root = tmp_path / "config"
    for name in ("all", "small"):
        (root / "group_vars" / name).mkdir(parents=True)
    (root / "group_vars" / "all" / "main.yml").write_text("prj_id: t\n")
    (root / "designs").mkdir()
    (root / "designs" / "s.yml").write_text(textwrap.dedent(design))
    return discover(root)


def test_broken_quoting_in_any_run_is_found_beyond_the_shellcheck_sample(tmp_path):
    project = _config_with(tmp_path, """\
        exp:
          host_types: {small: {$CMD$: "echo '[% my_run.word %]'"}}
          base_experiment:
            word: {$FACTOR$: [{{ range(60) | join(', ') }}, "it's"]}
    """)
    with pytest.raises(UserError) as caught:
        load_suite(project, "s").extend(check_commands=True)
    assert caught.value.detail.startswith("run 60: $CMD$ is invalid bash syntax")


@needs_shellcheck
def test_shellcheck_errors_are_reported_for_the_sample(tmp_path):
    project = _config_with(tmp_path, """\
        exp:
          host_types: {small: {$CMD$: "[[ [% my_run.x %] = b ]"}}
          base_experiment:
            x: {$FACTOR$: [a, b]}
    """)
    with pytest.raises(UserError) as caught:
        load_suite(project, "s").extend(check_commands=True)
    assert "SC" in caught.value.detail and caught.value.detail.startswith("run 0:")


# doe-suite's project template: without hosts the helper hands back the undefined host list, and the
# design's `default` prints the project's own stand-in.
DOE_SUITE_DNS_HELPER = '''\
from jinja2.runtime import Undefined


def to_private_dns_name(hostlist, host_type, host_type_idx=0, default=None):
    if isinstance(hostlist, Undefined):
        return default if default is not None else hostlist
    return [h for h in hostlist if h["host_type"] == host_type][host_type_idx]["private_dns_name"]


class FilterModule:
    def filters(self):
        return {"to_private_dns_name": to_private_dns_name}
'''

CLIENT_OF_SERVER = """\
    exp:
      host_types:
        small:
          $CMD$: "echo hi | netcat -q 1 [% exp_host_lst | to_private_dns_name('small') | default('<UNDEFINED-DNS>') %] 2807"
      base_experiment: {}
"""


@needs_shellcheck
def test_a_projects_stand_in_for_a_host_value_passes_the_design_time_check(tmp_path):
    project = _config_with(tmp_path, CLIENT_OF_SERVER)
    plugins = project.config_dir / "designs" / "filter_plugins"
    plugins.mkdir()
    (plugins / "helper.py").write_text(DOE_SUITE_DNS_HELPER)
    runs = load_suite(project, "s").extend(check_commands=True)["exp"]
    assert runs[0]["$CMD$"]["small"][0]["main"] == "echo hi | netcat -q 1 <UNDEFINED-DNS> 2807"


@needs_shellcheck
def test_angle_bracketed_words_are_redirections_again_once_hosts_are_known(tmp_path):
    # shellcheck: "This redirection overrides piped input" once `<x>` is no stand-in
    project = _config_with(tmp_path, """\
        exp:
          host_types: {small: {$CMD$: "echo hi | netcat -q 1 <x> 2807"}}
          base_experiment: {}
    """)
    hosts = {"exp": [{"host_type": "small", "host_type_idx": 0, "host_type_n": 1, "public_dns_name": "h",
                      "private_dns_name": "h", "hostvars": {}}]}
    suite = load_suite(project, "s")
    suite.extend(check_commands=True)
    with pytest.raises(UserError) as caught:
        suite.extend(hosts)
    assert "SC2259" in caught.value.detail
