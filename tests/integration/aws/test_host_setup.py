"""The AWS cloud's host setup roles on three real sshd hosts: packages, AWS CLI, Rust, cargo build,
S3 artifacts from the emulator. Runs playbooks/setup.yml and playbooks/host-setup.yml through the adapter.

The hosts share this machine's /usr (nothing is installed there: every package asked for is present).
Their /root is their own, so the machine's toolchains in /root are lent to them: each host mounts the
plain root file system at /run/doe-rootfs, and host0/host1 link ~/.cargo, ~/.rustup and ~/.pyenv to it.
host2 has no cargo: rustup-init comes from a file URL (the machine's rustup binary) with toolchain
"none", which needs no network. The AWS CLI is found on every host (test_aws_cli_pypi.py installs it
from PyPI).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import boto3
import pytest
import yaml

from doe_cli.ansible_adapter import AnsibleAdapter
from tests.support.sshd_hosts import SshHostPool, close_control_masters

from .conftest import REGION

pytestmark = [pytest.mark.aws_fake, pytest.mark.slow]

ROOTFS = "/run/doe-rootfs"
BUCKET = "doe-artifacts"
CLOUD_ROLES = ["host_packages", "aws_cli", "rust_toolchain", "cargo_build", "s3_artifacts"]
# Build and install tasks whose run (not skip) the tests look for.
BUILD_TASK = "Build the projects not yet built at their commit"
RUSTUP_TASK = "Run rustup-init with the pinned toolchain"
AWS_CLI_TASK = "Install the AWS CLI from PyPI into a virtualenv"
APT_TASK = "Install the missing packages"


def _real(path: str) -> Path:
    return Path(path).resolve()


def _lend_root_file_system(host) -> None:
    """Mount the plain root file system (without the host's own /root over it) inside the host."""
    script = f"mkdir -p {ROOTFS}; mountpoint -q {ROOTFS} || mount --bind / {ROOTFS}"
    subprocess.run(["nsenter", "-t", str(host.process.pid), "-m", "sh", "-ec", script], check=True)


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=doe", "-c", "user.email=doe@test", *args],
                          check=True, capture_output=True, text=True).stdout.strip()


def _write_crate(crate: Path, message: str) -> str:
    (crate / "src" / "main.rs").write_text(f'fn main() {{\n    println!("{message}");\n}}\n')
    _git(crate, "add", "-A")
    _git(crate, "commit", "-q", "-m", message)
    return _git(crate, "rev-parse", "HEAD")


@pytest.fixture(scope="module")
def setup_env(moto_endpoint, tmp_path_factory):
    if shutil.which("cargo") is None or shutil.which("nsenter") is None or not Path("/usr/sbin/sshd").exists():
        pytest.skip("needs cargo, nsenter and openssh-server")
    if shutil.which("aws") is None:
        pytest.skip("needs an AWS CLI on this machine to lend to the hosts")
    cargo_home = _real(os.environ.get("CARGO_HOME") or str(Path.home() / ".cargo"))
    rustup_home = _real(os.environ.get("RUSTUP_HOME") or str(Path.home() / ".rustup"))
    # pyenv's `aws` is a shim; the real one sits in <python prefix>/bin.
    found = subprocess.run(["sh", "-c", "pyenv which aws 2>/dev/null || command -v aws"], check=True,
                           capture_output=True, text=True).stdout.strip()
    aws_prefix = _real(found).parent.parent
    if any(not str(path).startswith("/root/") for path in (cargo_home, rustup_home, aws_prefix)):
        pytest.skip("lending toolchains to the hosts expects cargo, rustup and the AWS CLI under /root")

    control = Path(tempfile.mkdtemp(prefix="doecp", dir="/tmp"))
    pool = SshHostPool(3).start()
    # The crate lives where the hosts see it (their /tmp is their own).
    work = Path(tempfile.mkdtemp(prefix="doe-crate-", dir="/var/tmp"))
    try:
        for index, host in enumerate(pool.hosts):
            _lend_root_file_system(host)
            links = [cargo_home, rustup_home] if index < 2 else []
            links.append(Path("/root") / aws_prefix.relative_to("/root").parts[0])  # e.g. ~/.pyenv
            for target in links:
                relative = target.relative_to("/root")
                (host.root / relative).symlink_to(f"{ROOTFS}{target}")

        crate = work / "tiny"
        subprocess.run(["cargo", "init", "-q", "--vcs", "none", "--name", "tiny", str(crate)], check=True,
                       env={**os.environ, "CARGO_NET_OFFLINE": "true"})
        _git(crate, "init", "-q")
        first_commit = _write_crate(crate, "tiny v1")

        s3 = boto3.client("s3", region_name=REGION, endpoint_url=moto_endpoint)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        artifacts = {"data/model.bin": os.urandom(300_000), "data/sub/params.json": b'{"k": 1}\n',
                     "other/ignored.txt": b"not under the prefix\n"}
        for key, body in artifacts.items():
            s3.put_object(Bucket=BUCKET, Key=key, Body=body)

        inventory = _write_inventory(work / "inventory", pool, moto_endpoint, aws_prefix)
        adapter = AnsibleAdapter(work / "ansible", control_path_dir=control,
                                 config_dir=work)  # only the inventory's vars, no group_vars
        extravars = {"setup_suite_repositories": [{"repo": str(crate), "version": "HEAD", "dir": "code"}]}
        yield {"pool": pool, "adapter": adapter, "inventory": inventory, "crate": crate, "extravars": extravars,
               "first_commit": first_commit, "artifacts": artifacts, "aws_prefix": aws_prefix}
    finally:
        close_control_masters(control)
        pool.close()
        shutil.rmtree(control, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def _write_inventory(folder: Path, pool: SshHostPool, endpoint: str, aws_prefix: Path) -> Path:
    hosts = {}
    for index, host in enumerate(pool.hosts):
        hosts[host.name] = {**host.inventory_vars(), "job_queue_dir": "/root/doe-host",
                            "job_queue_root": "/root/doe-host/results",
                            "job_queue_ts_socket": f"/tmp/doe-ts-{index}.sock"}
    # host2 has no cargo: rustup-init from a file URL, no toolchain (no network), nothing to build.
    hosts[pool.hosts[2].name].update({
        "rust_toolchain_version": "none",
        "rust_toolchain_rustup_init_url": f"file://{ROOTFS}{_real(shutil.which('rustup'))}",
        "cargo_build_projects": [],
    })
    inventory = {"all": {"hosts": hosts, "vars": {
        "doe_cloud_setup_roles": CLOUD_ROLES,
        # Everything asked for is installed on this machine, whose /usr the hosts share.
        "host_packages_names": ["task-spooler", "git", "rsync"],
        "aws_cli_venv_dir": str(aws_prefix),
        "rust_toolchain_version": "1.95.0",
        "cargo_build_projects": ["code"],
        "aws_region": REGION,
        "aws_endpoint_url": endpoint,
        "s3_artifacts_sources": [{"bucket": BUCKET, "prefix": "data/", "dest": "/root/artifacts"}],
    }}}
    folder.mkdir(parents=True)
    path = folder / "hosts.yml"
    path.write_text(yaml.safe_dump(inventory, sort_keys=False))
    return path


def _ran(result, task: str) -> set[str]:
    """Hosts on which the task ran (not skipped) and changed something."""
    ran = set()
    for host, res in result.task_results(task).items():
        items = res.get("results", [res])
        if any(item.get("changed") and not item.get("skipped") for item in items):
            ran.add(host)
    return ran


def _host_run(host, *argv: str) -> str:
    return subprocess.run(host.ssh_argv(*argv), check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def first_setup(setup_env):
    result = setup_env["adapter"].run("setup.yml", inventory=setup_env["inventory"],
                                      extravars=setup_env["extravars"])
    assert result.ok, result.summary()
    return result


def test_first_setup_installs_only_what_is_missing_and_builds(setup_env, first_setup):
    hosts = {host.name for host in setup_env["pool"].hosts}
    assert _ran(first_setup, APT_TASK) == set()
    assert _ran(first_setup, AWS_CLI_TASK) == set()
    # host0/host1 have cargo: rustup skipped; host2 had none: rustup installed into its own home.
    assert _ran(first_setup, RUSTUP_TASK) == {"host2"}
    host2 = setup_env["pool"].hosts[2]
    assert (host2.root / ".cargo" / "bin" / "cargo").is_file() and not (host2.root / ".cargo").is_symlink()
    assert _ran(first_setup, BUILD_TASK) == {"host0", "host1"}
    for host in setup_env["pool"].hosts[:2]:
        assert _host_run(host, "/root/doe-host/code/target/release/tiny") == "tiny v1"
        marker = host.root / "doe-host" / "code" / "target" / "release" / ".doe-built-commit"
        assert marker.read_text().strip() == setup_env["first_commit"]
    facts = first_setup.task_results("Remember where cargo is")
    assert facts["host0"]["ansible_facts"]["rust_toolchain_cargo"].endswith("/.cargo/bin/cargo")
    assert set(facts) == hosts


def test_s3_artifacts_reach_every_host_with_equal_bytes(setup_env, first_setup):
    artifacts = setup_env["artifacts"]
    for host in setup_env["pool"].hosts:
        target = host.root / "artifacts"
        assert (target / "model.bin").read_bytes() == artifacts["data/model.bin"]
        assert (target / "sub" / "params.json").read_bytes() == artifacts["data/sub/params.json"]
        assert sorted(p.name for p in target.rglob("*") if p.is_file()) == ["model.bin", "params.json"]


def test_rerun_changes_nothing(setup_env, first_setup):
    result = setup_env["adapter"].run("host-setup.yml", inventory=setup_env["inventory"],
                                      extravars=setup_env["extravars"])
    assert result.ok, result.summary()
    assert result.changed_count() == 0
    assert set(result.stats.get("ok", {})) == {host.name for host in setup_env["pool"].hosts}
    assert not _ran(result, BUILD_TASK) and not _ran(result, RUSTUP_TASK)


def test_new_commit_is_built_again(setup_env, first_setup):
    second_commit = _write_crate(setup_env["crate"], "tiny v2")
    builders = setup_env["pool"].hosts[:2]
    for host in builders:  # what setup's checkout does; the rerun below is the cloud roles alone
        _host_run(host, "git", "-C", "/root/doe-host/code", "pull", "-q", "--ff-only")
    result = setup_env["adapter"].run("host-setup.yml", inventory=setup_env["inventory"],
                                      extravars=setup_env["extravars"], limit="host0,host1")
    assert result.ok, result.summary()
    assert _ran(result, BUILD_TASK) == {"host0", "host1"}
    for host in builders:
        assert _host_run(host, "/root/doe-host/code/target/release/tiny") == "tiny v2"
        marker = host.root / "doe-host" / "code" / "target" / "release" / ".doe-built-commit"
        assert marker.read_text().strip() == second_commit

