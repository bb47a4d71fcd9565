"""Preflight rejections (one line, exit 2, nothing created), `doe plan`, and cleanup after failures."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from doe_cli.clouds.aws import provision as aws_provision
from doe_cli.clouds.aws.host_plan import HostSlot
from doe_cli.errors import UserError
from doe_cli.main import app

from .conftest import EMULATOR_AMI, non_default_leftovers, write_config

pytestmark = [pytest.mark.aws_fake, pytest.mark.slow]

DESIGN = """\
two_types:
  n_repetitions: 2
  host_types:
    small:
      $CMD$: "echo [% my_run.x %]"
    medium:
      n: 2
      $CMD$: "echo [% my_run.x %]"
  base_experiment:
    x:
      $FACTOR$: [1, 2, 3]
"""
TYPES = {"small": {"aws_instance_type": "r6i.8xlarge", "aws_ami_id": EMULATOR_AMI},
         "medium": {"aws_instance_type": "r6i.16xlarge", "aws_ami_id": EMULATOR_AMI}}


def make_project(tmp_path, ssh_key, host_types=None, **settings):
    project = write_config(tmp_path / "config", ssh_key, project_id="pre_test",
                           host_types=TYPES if host_types is None else host_types, **settings)
    (project.designs_dir / "demo.yml").write_text(DESIGN)
    return project


def doe_plan(project, *extra):
    return CliRunner().invoke(app, ["--config-dir", str(project.config_dir), "--results-dir",
                                    str(project.results_dir), "plan", "--suite", "demo", "--cloud", "aws", *extra])


def error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_plan_prints_hosts_jobs_and_cost_and_refuses_above_budget(tmp_path, ssh_key, moto_endpoint, ec2):
    project = make_project(tmp_path, ssh_key, aws_budget_usd=50)
    refused = doe_plan(project)
    assert refused.exit_code == 2
    assert "small: 1 x r6i.8xlarge" in refused.stdout and "medium: 2 x r6i.16xlarge" in refused.stdout
    assert "jobs: 6" in refused.stdout and "estimated wall time: unknown" in refused.stdout
    assert "estimated cost: $60.48" in refused.stdout  # (2.016 + 2 x 4.032) $/h x 6 h max lifetime
    assert "aws_budget_usd: estimated cost $60.48 exceeds the budget $50.00" in error_line(refused)
    accepted = doe_plan(project, "--yes")
    assert accepted.exit_code == 0, accepted.output
    assert not any(non_default_leftovers(ec2).values())


def test_placeholder_ami_is_rejected_naming_the_file_and_key(tmp_path, ssh_key, moto_endpoint):
    types = {**TYPES, "medium": {"aws_instance_type": "r6i.16xlarge", "aws_ami_id": "ami-PLACEHOLDER"}}
    result = doe_plan(make_project(tmp_path, ssh_key, host_types=types))
    assert result.exit_code == 2
    line = error_line(result)
    assert "group_vars/medium/main.yml: aws_ami_id: expected the id of an AMI in region eu-north-1" in line
    assert "ami-PLACEHOLDER" in line


def test_missing_ami_is_rejected(tmp_path, ssh_key, moto_endpoint):
    types = {**TYPES, "small": {"aws_instance_type": "r6i.8xlarge", "aws_ami_id": "ami-0123456789abcdef0"}}
    result = doe_plan(make_project(tmp_path, ssh_key, host_types=types))
    assert result.exit_code == 2
    assert ("group_vars/small/main.yml: aws_ami_id: AMI ami-0123456789abcdef0 does not exist in region eu-north-1"
            in error_line(result))


def test_missing_key_pair_is_rejected(tmp_path, ssh_key, moto_endpoint):
    result = doe_plan(make_project(tmp_path, ssh_key, aws_key_name="no-such-key"))
    assert result.exit_code == 2
    assert "group_vars/all/main.yml: aws_key_name: key pair 'no-such-key' does not exist" in error_line(result)


def test_key_pair_named_by_the_environment_is_checked_when_group_vars_leave_it_empty(tmp_path, ssh_key,
                                                                                       moto_endpoint, monkeypatch):
    monkeypatch.setenv("DOES_SSH_KEY_NAME", "key-from-env")
    result = doe_plan(make_project(tmp_path, ssh_key, aws_key_name=""))
    assert result.exit_code == 2
    assert "aws_key_name: key pair 'key-from-env' does not exist" in error_line(result)
    assert "$DOES_SSH_KEY_NAME" in error_line(result)


def test_key_pair_of_group_vars_wins_over_the_environment(tmp_path, ssh_key, moto_endpoint, monkeypatch):
    monkeypatch.setenv("DOES_SSH_KEY_NAME", "key-from-env")
    result = doe_plan(make_project(tmp_path, ssh_key, aws_key_name="key-from-group-vars"))
    assert "key pair 'key-from-group-vars' does not exist" in error_line(result)


def test_unavailable_instance_type_is_rejected(tmp_path, ssh_key, moto_endpoint):
    types = {**TYPES, "small": {"aws_instance_type": "x9.nonexistent", "aws_ami_id": EMULATOR_AMI}}
    result = doe_plan(make_project(tmp_path, ssh_key, host_types=types,
                                   aws_price_usd_per_hour={"x9.nonexistent": 1, "r6i.16xlarge": 4.032}))
    assert result.exit_code == 2
    assert ("group_vars/small/main.yml: aws_instance_type: instance type x9.nonexistent is not offered in "
            "region eu-north-1") in error_line(result)


def test_undetectable_ssh_source_fails_clearly_before_creating_anything(tmp_path, ssh_key, moto_endpoint, ec2):
    # Nothing listens on port 9 (discard) here; the detection must fail, never fall back to 0.0.0.0/0.
    project = make_project(tmp_path, ssh_key, aws_ssh_ingress_cidr="", aws_public_ip_url="http://127.0.0.1:9/")
    with pytest.raises(UserError) as failed:
        aws_provision.provision(project, "demo", "1700000200", [HostSlot("e", "small", 0)],
                                project.results_dir / "demo_1700000200")
    assert "cannot detect the controller's public address from http://127.0.0.1:9/" in str(failed.value)
    assert "aws_ssh_ingress_cidr" in str(failed.value)
    assert not any(non_default_leftovers(ec2).values())


def test_plan_after_a_short_run_counts_provisioning_setup_and_says_what_it_assumes(tmp_path, ssh_key, moto_endpoint):
    project = make_project(tmp_path, ssh_key)
    record = (project.results_dir / "demo_1700000100" / "two_types" / "run_0" / "rep_0" / "small" / "host_0"
              / ".doe_runtime_info.yaml")
    record.parent.mkdir(parents=True)
    record.write_text("wall_seconds: 3.0\nexit_code: 0\nstatus: finished\n")
    result = doe_plan(project)
    assert result.exit_code == 0, result.output
    # 6 jobs x 3 s + 10 min provisioning and setup, at (2.016 + 2 x 4.032) $/h
    assert ("estimated wall time: 0h 10m 18s (jobs 0h 00m 18s + provisioning and setup 0h 10m 00s)"
            in result.stdout)
    assert "estimated cost: $1.73 (at the estimated wall time: 0.172 h x $10.0800/h)" in result.stdout
    assert (f"assumes: job times from the records of demo_1700000100; 0h 10m 00s for provisioning and setup "
            f"(aws_setup_allowance_minutes); at least 60 s billed per instance; prices from aws_price_usd_per_hour "
            f"in {project.group_vars_dir / 'all' / 'main.yml'}") in result.stdout
