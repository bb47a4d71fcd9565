"""Host variables as designs see them: placeholders before the setup, rendered values after it
(commands are not checked here: no processes in unit tests)."""

from __future__ import annotations

import textwrap

import pytest

from doe_cli.config import discover
from doe_cli.design import load_suite
from doe_cli.errors import UserError
from doe_cli.run import hostvars


@pytest.fixture
def suite(tmp_path):
    root = tmp_path / "config"
    for name in ("all", "small"):
        (root / "group_vars" / name).mkdir(parents=True)
    (root / "group_vars" / "all" / "main.yml").write_text("prj_id: t\n")
    (root / "designs").mkdir()
    (root / "designs" / "s.yml").write_text(textwrap.dedent("""\
        exp:
          host_types:
            small:
              $CMD$: "[% 'exp_code_dir' | at_runtime(exp_host_lst) %]/run [% my_run.x %]"
          base_experiment:
            x: {$FACTOR$: [1, 2]}
    """))
    return load_suite(discover(root), "s")


def _hosts(variables: dict) -> dict:
    return {"exp": [{"host_type": "small", "host_type_idx": 0, "host_type_n": 1, "public_dns_name": "h",
                     "private_dns_name": "h", "hostvars": variables}]}


def _command(extended: dict) -> str:
    return extended["exp"][0]["$CMD$"]["small"][0]["main"]


def test_before_the_setup_values_with_templates_are_shell_safe_placeholders(suite):
    variables = hostvars.before_setup({"exp_code_dir": "{{ remote.dir }}/code", "n": 3})
    assert variables["n"] == 3
    assert _command(suite.extend(_hosts(variables), check_commands=False)) == "@exp_code_dir@/run 1"


def test_rendered_values_reach_the_command_and_unread_failures_do_no_harm(suite):
    report = {"host_vars": {"exp_code_dir": "/h/code"}, "unrendered": {"unused": "'x' is undefined"}}
    extended = suite.extend(_hosts(hostvars.from_report(report, "exp-small-0")), check_commands=False)
    assert _command(extended) == "/h/code/run 1"


def test_a_value_that_could_not_be_rendered_fails_the_template_that_reads_it(suite):
    report = {"host_vars": {}, "unrendered": {"exp_code_dir": "'remote' is undefined"}}
    with pytest.raises(UserError) as caught:
        suite.extend(_hosts(hostvars.from_report(report, "exp-small-0")), check_commands=False)
    assert "host variable 'exp_code_dir' of exp-small-0 could not be rendered: 'remote' is undefined" \
        in caught.value.detail
    assert caught.value.path == "experiments.exp.host_types.small.$CMD$"
