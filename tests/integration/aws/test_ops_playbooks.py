"""The playbooks as ops staff run them: plain `ansible-playbook` from the repository root (or from
elsewhere with ANSIBLE_CONFIG), simple inputs (-e suite=S -e id=ID), settings from group_vars.

Every call is a real ansible-playbook process against the moto server; none goes through doe_cli.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
import yaml

from doe_cli.config import ANSIBLE_CFG, TOOL_ROOT

from .conftest import REGION, non_default_leftovers, tagged, write_config

pytestmark = [pytest.mark.aws_fake, pytest.mark.slow]

ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")
DESIGN = """
bench:
  n_repetitions: 1
  host_types:
    small:
      n: 2
      $CMD$: echo [% my_run.x %]
    medium:
      $CMD$: echo server
  base_experiment:
    x:
      $FACTOR$: [1, 2]
"""
OTHER_REGION = "us-west-2"


def playbook(config_dir: Path, *args: str, cwd: Path = TOOL_ROOT, env: dict[str, str] | None = None) \
        -> subprocess.CompletedProcess:
    """`ansible-playbook <args>` as a shell user types it; the config dir comes from the environment."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    environment.update(DOE_CONFIG_DIR=str(config_dir), ANSIBLE_NOCOLOR="1", **(env or {}))
    return subprocess.run([ANSIBLE_PLAYBOOK, *args], check=False, cwd=cwd, env=environment, capture_output=True, text=True,
                          timeout=600)


def set_group_vars(config_dir: Path, group: str, **values) -> None:
    path = config_dir / "group_vars" / group / "main.yml"
    path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), **values}, sort_keys=False))


@pytest.fixture
def config_dir(tmp_path, ssh_key, moto_endpoint, moto_reset) -> Path:
    project = write_config(tmp_path / "config", ssh_key, project_id="ops_test")
    (project.designs_dir / "bench.yml").write_text(DESIGN)
    return project.config_dir


def results_folders(config_dir: Path) -> list[Path]:
    results = config_dir / "doe-suite-results"  # doe's default beside a config dir
    return sorted(results.iterdir()) if results.is_dir() else []


def hosts_of(group: dict) -> dict[str, dict]:
    found = {**(group.get("hosts") or {})}
    for child in (group.get("children") or {}).values():
        found.update(hosts_of(child))
    return found


def test_preflight_by_hand_checks_the_group_vars_and_creates_nothing(config_dir, ec2):
    passed = playbook(config_dir, "playbooks/aws-preflight.yml", "-e", "suite=bench")
    assert passed.returncode == 0, passed.stdout[-3000:]
    assert not any(non_default_leftovers(ec2).values())
    assert results_folders(config_dir) == []

    # Editing the AMI of a host type is what retargets it: the preflight now checks the new one.
    set_group_vars(config_dir, "medium", aws_ami_id="ami-0123456789abcdef0")
    failed = playbook(config_dir, "playbooks/aws-preflight.yml", "-e", "suite=bench")
    assert failed.returncode != 0
    assert "group_vars/medium/main.yml: aws_ami_id: AMI ami-0123456789abcdef0 does not exist" in failed.stdout


def test_preflight_from_another_folder_with_ansible_config(config_dir, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = playbook(config_dir, str(TOOL_ROOT / "playbooks" / "aws-preflight.yml"), "-e", "suite=bench",
                      cwd=elsewhere, env={"ANSIBLE_CONFIG": str(ANSIBLE_CFG)})
    assert result.returncode == 0, result.stdout[-3000:]


def test_preflight_without_a_suite_says_how_to_name_it(config_dir):
    result = playbook(config_dir, "playbooks/aws-preflight.yml")
    assert result.returncode != 0
    assert "name the suite: -e suite=<a design in designs/>" in result.stdout


def test_provision_then_teardown_by_hand_in_the_region_group_vars_name(config_dir, moto_endpoint):
    set_group_vars(config_dir, "all", aws_region=OTHER_REGION, aws_ssh_user="")
    provisioned = playbook(config_dir, "playbooks/aws-provision.yml", "-e", "suite=bench",
                           env={"DOES_AWS_USER": "admin"})
    assert provisioned.returncode == 0, provisioned.stdout[-3000:]
    (suite_dir,) = results_folders(config_dir)
    assert suite_dir.name.startswith("bench_")
    suite_id = suite_dir.name.removeprefix("bench_")
    inventory = yaml.safe_load((suite_dir / ".inventory" / "aws.yml").read_text())
    hosts = hosts_of(inventory["all"])
    assert len(hosts) == 3  # two small, one medium, as the design says
    assert inventory["all"]["vars"]["ansible_user"] == "admin"  # $DOES_AWS_USER, as in doe-suite
    assert f"aws-teardown.yml -e suite=bench -e id={suite_id}" in provisioned.stdout

    moved = boto3.client("ec2", region_name=OTHER_REGION, endpoint_url=moto_endpoint)
    assert len(tagged(moved, "doe:suite_id", suite_id)["instances"]) == 3
    home = boto3.client("ec2", region_name=REGION, endpoint_url=moto_endpoint)
    assert not any(tagged(home, "doe:suite_id", suite_id).values())

    refused = playbook(config_dir, "playbooks/aws-teardown.yml")
    assert refused.returncode != 0
    assert "name what to delete: -e suite=S" in refused.stdout
    assert len(tagged(moved, "doe:suite_id", suite_id)["instances"]) == 3

    removed = playbook(config_dir, "playbooks/aws-teardown.yml", "-e", "suite=bench", "-e", "id=last")
    assert removed.returncode == 0, removed.stdout[-3000:]
    assert not any(tagged(moved, "doe:suite_id", suite_id).values())
    assert not any(non_default_leftovers(moved).values())


def test_teardown_by_id_keeps_the_other_suites(config_dir, ec2):
    for suite_id in ("1700000501", "1700000502"):
        done = playbook(config_dir, "playbooks/aws-provision.yml", "-e", "suite=bench", "-e", f"id={suite_id}")
        assert done.returncode == 0, done.stdout[-3000:]
    removed = playbook(config_dir, "playbooks/aws-teardown.yml", "-e", "id=1700000501")
    assert removed.returncode == 0, removed.stdout[-3000:]
    assert not any(tagged(ec2, "doe:suite_id", "1700000501").values())
    assert len(tagged(ec2, "doe:suite_id", "1700000502")["instances"]) == 3
    everything = playbook(config_dir, "playbooks/aws-teardown.yml", "-e", "all_suites=true")
    assert everything.returncode == 0, everything.stdout[-3000:]
    assert not any(non_default_leftovers(ec2).values())


def test_host_setup_by_hand_on_this_machine_copies_the_s3_artifacts(config_dir, tmp_path, moto_endpoint):
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=moto_endpoint)
    s3.create_bucket(Bucket="ops-models", CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket="ops-models", Key="models/m1.bin", Body=b"weights-1")
    dest = tmp_path / "artifacts"
    set_group_vars(config_dir, "all", host_setup_roles=["host_packages", "s3_artifacts"],
                   host_packages_names=["git"],
                   s3_artifacts_sources=[{"bucket": "ops-models", "prefix": "models/", "dest": str(dest)}],
                   s3_artifacts_cache_dir=str(tmp_path / "s3-cache"))
    result = playbook(config_dir, "-i", "inventory/localhost.yml", "playbooks/host-setup.yml")
    assert result.returncode == 0, result.stdout[-3000:]
    assert (dest / "m1.bin").read_bytes() == b"weights-1"
