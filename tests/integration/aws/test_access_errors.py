"""AWS that cannot be used at all (endpoint unreachable, no credentials): `doe plan`, `doe clean` and
`doe run` each say so in the same one line, without a task name or a traceback."""

from __future__ import annotations

import subprocess

import pytest

from .conftest import VENV_BIN, free_port, write_config

pytestmark = [pytest.mark.aws_fake, pytest.mark.slow]

DESIGN = """\
demo_exp:
  host_types:
    small:
      $CMD$: "echo [% my_run.x %]"
  base_experiment:
    x: 1
"""
COMMANDS = {
    "plan": ["plan", "--suite", "demo", "--cloud", "aws"],
    "clean": ["clean", "--cloud", "aws"],
    "run": ["run", "--suite", "demo", "--cloud", "aws"],
}


def doe(project, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    argv = [str(VENV_BIN / "doe"), "--config-dir", str(project.config_dir), "--results-dir",
            str(project.results_dir), *args]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, check=False)


def bare_env(tmp_path) -> dict[str, str]:
    """No AWS variable, a home without ~/.aws, and no instance metadata (on an EC2 machine its role
    would otherwise be found as credentials)."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {"PATH": f"{VENV_BIN}:/usr/bin:/bin", "HOME": str(home), "AWS_EC2_METADATA_DISABLED": "true"}


def the_error_line(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr and "task '" not in result.stderr, result.stderr
    return lines[-1]


@pytest.mark.parametrize("command", list(COMMANDS))
def test_an_unreachable_endpoint_is_named_and_not_taken_for_rejected_credentials(tmp_path, ssh_key, command):
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there: connections are refused
    project = write_config(tmp_path / "config", ssh_key, project_id="access_test", aws_endpoint_url=endpoint)
    (project.designs_dir / "demo.yml").write_text(DESIGN)
    env = {**bare_env(tmp_path), "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    result = doe(project, COMMANDS[command], env)
    assert result.returncode == 1, result.stderr
    line = the_error_line(result)
    assert line.startswith(f"error: cannot reach the AWS endpoint {endpoint}/ for region eu-north-1 "
                           "(connection refused); check the network and proxy settings"), line
    assert "aws_endpoint_url" in line and "credentials" not in line
    assert "testing" not in result.stdout + result.stderr


@pytest.mark.parametrize("command", list(COMMANDS))
def test_missing_credentials_give_the_same_line_for_every_command(tmp_path, ssh_key, moto_endpoint, command):
    project = write_config(tmp_path / "config", ssh_key, project_id="access_test", aws_endpoint_url=moto_endpoint)
    (project.designs_dir / "demo.yml").write_text(DESIGN)
    result = doe(project, COMMANDS[command], bare_env(tmp_path))
    assert result.returncode == 2, result.stderr
    assert the_error_line(result) == ("error: no AWS credentials found; set AWS_PROFILE, or AWS_ACCESS_KEY_ID "
                                      "and AWS_SECRET_ACCESS_KEY")
