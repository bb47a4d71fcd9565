"""roles/aws_cli on a host without an AWS CLI: pip installs awscli from PyPI into a virtualenv, and the
installed `aws` then talks to the emulator's S3. Runs playbooks/host-setup.yml through the adapter.

The sshd test host has its own /root and /tmp, and a login over SSH gets the system PATH, so this
machine's own AWS CLI (e.g. a pyenv shim under /root) cannot hide the install path; the test checks that
first. Needs PyPI (the CI machine reaches it); the install takes tens of seconds, once per module.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import boto3
import pytest
import yaml

from doe_cli.ansible_adapter import AnsibleAdapter
from tests.support.sshd_hosts import SshHostPool, close_control_masters

from .conftest import AWS_ENV, REGION

pytestmark = [pytest.mark.aws_fake, pytest.mark.ssh, pytest.mark.slow]

BUCKET = "doe-cli-check"
OBJECT_KEY = "listing/hello.txt"
OBJECT_BODY = b"hello from the emulator\n"
VENV_DIR = "/root/doe-host/aws-cli"
INSTALL_TASK = "Install the AWS CLI from PyPI into a virtualenv"
FACT_TASK = "Remember where the AWS CLI is"


def _write_inventory(folder: Path, host, **role_vars) -> Path:
    inventory = {"all": {"hosts": {host.name: {**host.inventory_vars(), "job_queue_dir": "/root/doe-host"}},
                         "vars": {"doe_cloud_setup_roles": ["aws_cli"], **role_vars}}}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "hosts.yml"
    path.write_text(yaml.safe_dump(inventory, sort_keys=False))
    return path


def _on_host(host, script: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(host.ssh_argv(script), input=stdin, capture_output=True, text=True, timeout=120,
                          check=False)


@pytest.fixture(scope="module")
def pypi_env(moto_endpoint):
    if shutil.which("nsenter") is None or not Path("/usr/sbin/sshd").exists():
        pytest.skip("needs openssh-server")
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=moto_endpoint)
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket=BUCKET, Key=OBJECT_KEY, Body=OBJECT_BODY)
    control = Path(tempfile.mkdtemp(prefix="doecp", dir="/tmp"))
    work = Path(tempfile.mkdtemp(prefix="doe-awscli-", dir="/var/tmp"))
    pool = SshHostPool(1).start()
    try:
        host = pool.hosts[0]
        adapter = AnsibleAdapter(work / "ansible", control_path_dir=control,
                                 config_dir=work)  # only the inventory's vars, no group_vars
        yield {"host": host, "adapter": adapter, "work": work, "endpoint": moto_endpoint}
    finally:
        close_control_masters(control)
        pool.close()
        shutil.rmtree(control, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def first_install(pypi_env):
    host = pypi_env["host"]
    # Precondition: nothing on the host's PATH answers to `aws`, so only the PyPI path can provide one.
    found = _on_host(host, "command -v aws")
    assert found.returncode != 0 and not found.stdout.strip(), f"the host already has aws: {found.stdout}"
    inventory = _write_inventory(pypi_env["work"] / "inventory", host)
    result = pypi_env["adapter"].run("host-setup.yml", inventory=inventory)
    assert result.ok, result.summary()
    return result, inventory


def _aws_on_host(pypi_env, aws: str, *args: str) -> subprocess.CompletedProcess:
    """Run the host's `aws` with the test credentials and the emulator's endpoint given on stdin (as
    environment), so they appear on no command line and in no file."""
    env_lines = {**AWS_ENV, "AWS_ENDPOINT_URL": pypi_env["endpoint"]}
    stdin = "".join(f"export {key}='{value}'\n" for key, value in env_lines.items())
    script = f'eval "$(cat)"; exec {aws} ' + " ".join(args)
    return _on_host(pypi_env["host"], script, stdin)


def test_pip_installs_the_cli_from_pypi_and_it_reaches_s3(pypi_env, first_install):
    result, _ = first_install
    host = pypi_env["host"]
    installed = result.task_results(INSTALL_TASK)
    assert installed[host.name].get("changed") is True, installed
    fact = result.task_results(FACT_TASK)[host.name]["ansible_facts"]["aws_cli_command"]
    assert fact == f"{VENV_DIR}/bin/aws"
    assert (host.root / "doe-host" / "aws-cli" / "bin" / "aws").is_file()

    version = _aws_on_host(pypi_env, fact, "--version")
    assert version.returncode == 0 and version.stdout.startswith("aws-cli/"), version.stderr
    listing = _aws_on_host(pypi_env, fact, "s3", "ls", f"s3://{BUCKET}/listing/")
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.split()[-1] == "hello.txt" and str(len(OBJECT_BODY)) in listing.stdout.split()
    copied = _aws_on_host(pypi_env, fact, "s3", "cp", f"s3://{BUCKET}/{OBJECT_KEY}", "-")
    assert copied.returncode == 0 and copied.stdout.encode() == OBJECT_BODY, copied.stderr


def test_a_second_run_finds_the_install_and_changes_nothing(pypi_env, first_install):
    _, inventory = first_install
    host = pypi_env["host"]
    aws = host.root / "doe-host" / "aws-cli" / "bin" / "aws"
    before = aws.stat().st_mtime_ns
    result = pypi_env["adapter"].run("host-setup.yml", inventory=inventory)
    assert result.ok, result.summary()
    assert result.changed_count() == 0
    assert INSTALL_TASK not in {e["event_data"]["task"] for e in result.events if e["event"] == "runner_on_ok"}
    assert result.task_results(FACT_TASK)[host.name]["ansible_facts"]["aws_cli_command"] == f"{VENV_DIR}/bin/aws"
    assert aws.stat().st_mtime_ns == before


def test_a_host_without_a_usable_python_venv_is_told_what_to_install(pypi_env):
    """Without python3-venv (Debian/Ubuntu ship it apart), the role stops with a message saying so."""
    host = pypi_env["host"]
    inventory = _write_inventory(pypi_env["work"] / "broken-inventory", host,
                                 aws_cli_venv_dir="/root/doe-host/other-aws-cli",
                                 aws_cli_python="/usr/bin/no-such-python3")
    result = pypi_env["adapter"].run("host-setup.yml", inventory=inventory)
    assert not result.ok
    messages = [f.message for f in result.failures()]
    assert any("python3-venv" in message and "aws_cli_python" in message for message in messages), messages
    assert not (host.root / "doe-host" / "other-aws-cli").exists()
