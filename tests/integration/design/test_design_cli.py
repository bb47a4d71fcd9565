"""The design commands end to end (in-process CLI; the command check runs bash -n and shellcheck)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from doe_cli.config import TOOL_ROOT
from doe_cli.main import app

SHIPPED = ["--config-dir", str(TOOL_ROOT)]


@pytest.fixture(scope="module")
def cli():
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args), catch_exceptions=False)

    return invoke


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    root = tmp_path / "config"
    for name in ("all", "small"):
        (root / "group_vars" / name).mkdir(parents=True)
    (root / "group_vars" / "all" / "main.yml").write_text("prj_id: t\n")
    (root / "designs").mkdir()
    return root


def test_design_lists_every_job_command(cli):
    result = cli(*SHIPPED, "design", "--suite", "example01-minimal")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("experiment minimal: 4 runs x 2 repetitions = 8 jobs")
    assert lines[1] == "  run=000 host=small-0: echo 'payload=64 rate=1 seed=1234'"
    assert lines[4] == "  run=003 host=small-0: echo 'payload=128 rate=2 seed=1234'"


def test_design_json_prints_only_the_extended_design(cli):
    result = cli(*SHIPPED, "design", "--suite", "example04-multi", "--format", "json")
    assert result.exit_code == 0
    extended = json.loads(result.stdout)
    assert [r["requests"] for r in extended["client_server"]] == [1, 5]
    assert list(extended["client_server"][0]["$CMD$"]) == ["server", "client"]


def test_design_validate_prints_the_resolved_design(cli):
    result = cli(*SHIPPED, "design-validate", "--suite", "example01-minimal")
    assert result.exit_code == 0
    resolved = yaml.safe_load(result.stdout)
    assert resolved["minimal"]["host_types"]["small"]["$CMD$"][0]["main"].startswith("echo")
    assert resolved["$ETL$"] == {}


def test_info_lists_suites_with_run_counts(cli):
    result = cli(*SHIPPED, "info")
    assert result.exit_code == 0
    assert "  minimal: 4 runs x 2 repetitions = 8 jobs" in result.stdout.splitlines()


def test_schema_is_json_schema(cli):
    result = cli("schema")
    schema = json.loads(result.stdout)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert "host_types" in schema["additionalProperties"]["properties"]


def test_bad_design_exits_2_with_one_line_naming_file_key_and_line(cli, config_dir):
    (config_dir / "designs" / "bad.yml").write_text(textwrap.dedent("""\
        exp:
          host_types:
            small:
              n: 2
              $CMD$: ["echo a"]
          base_experiment: {}
    """))
    result = cli("--config-dir", str(config_dir), "design", "--suite", "bad")
    assert result.exit_code == 2
    assert result.stdout == ""
    message = " ".join(result.stderr.split())
    assert "bad.yml:5: experiments.exp.host_types.small.$CMD$:" in message
    assert "n=2" in message
    assert "Traceback" not in result.output


def test_invalid_bash_is_reported_without_being_executed(cli, config_dir, tmp_path):
    marker = tmp_path / "executed"
    (config_dir / "designs" / "sh.yml").write_text(textwrap.dedent(f"""\
        exp:
          host_types:
            small:
              $CMD$: "touch {marker} $(touch {marker}) `touch {marker}`; if then"
          base_experiment: {{}}
    """))
    result = cli("--config-dir", str(config_dir), "design-validate", "--suite", "sh")
    assert result.exit_code == 2
    assert "$CMD$ is invalid bash syntax" in result.stderr
    assert not marker.exists()


def test_info_reports_an_invalid_suite_and_exits_2(cli, config_dir):
    (config_dir / "designs" / "broken.yml").write_text("exp: [1]\n")
    result = cli("--config-dir", str(config_dir), "info")
    assert result.exit_code == 2
    assert "broken: invalid" in result.stdout
    assert "broken.yml:1: experiments.exp:" in result.stderr


# doe-suite projects ship their own at_runtime filter; at design time it prints `<name@runtime>`.
DOE_SUITE_AT_RUNTIME = '''\
from jinja2.runtime import Undefined


def at_runtime(var, exp_host_lst, host_type=None, host_type_idx=0):
    if isinstance(exp_host_lst, Undefined):
        return f"<{var}@runtime>"
    return exp_host_lst[0]["hostvars"][var]


class FilterModule:
    def filters(self):
        return {"at_runtime": at_runtime}
'''


def _design_with_project_at_runtime(config_dir: Path, command: str) -> None:
    plugins = config_dir / "designs" / "filter_plugins"
    plugins.mkdir()
    (plugins / "helper.py").write_text(DOE_SUITE_AT_RUNTIME)
    (config_dir / "designs" / "rt.yml").write_text(textwrap.dedent(f"""\
        exp:
          host_types:
            small:
              $CMD$: "{command}"
          base_experiment:
            size: {{$FACTOR$: [1, 2]}}
    """))


def test_run_time_values_of_a_project_filter_show_readably_and_pass_the_check(cli, config_dir):
    # As a last word, bash would read `<exp_code_dir@runtime>` as redirections missing their target.
    _design_with_project_at_runtime(
        config_dir, "[% 'exp_code_dir' | at_runtime(exp_host_lst) %]/src/bin/test.zsh --size [% my_run.size %]"
                    " --out [% 'exp_code_dir' | at_runtime(exp_host_lst) %]")
    result = cli("--config-dir", str(config_dir), "design", "--suite", "rt")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1] == ("  run=000 host=small-0: <exp_code_dir@runtime>/src/bin/test.zsh"
                                             " --size 1 --out <exp_code_dir@runtime>")


def test_invalid_bash_around_a_run_time_value_is_still_reported(cli, config_dir):
    _design_with_project_at_runtime(config_dir,
                                    "[% 'exp_code_dir' | at_runtime(exp_host_lst) %]/run [% my_run.size %] (")
    result = cli("--config-dir", str(config_dir), "design", "--suite", "rt")
    assert result.exit_code == 2
    assert "rt.yml" in result.stderr and "$CMD$ is invalid bash syntax" in result.stderr
    assert "Traceback" not in result.output
