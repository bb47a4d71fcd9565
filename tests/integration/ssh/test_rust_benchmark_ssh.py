"""The Rust benchmark of test_rust_benchmark.py on two sshd hosts, with group_vars settings alone: the
host type's host_setup_roles ([cargo_build], over group_vars/all's []) builds the repository's checkout
with the cargo it finds (rustup's in ~/.cargo/bin, or one on PATH), once per host and commit; a later
suite builds nothing, and a commit that does not compile stops the run at setup with rustc's error."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from tests.integration.run.conftest import Doe, make_config_dir
from tests.integration.ssh.conftest import write_inventory
from tests.support.rust_crate import Crate, bench_design, cargo_lent_to

pytestmark = [pytest.mark.ssh, pytest.mark.tsp, pytest.mark.slow]


@pytest.fixture(scope="module")
def project(ssh_hosts):
    hosts = ssh_hosts.hosts[:2]
    # /var/tmp: the hosts see it (their /tmp is their own), so they clone from it and log builds to it.
    root = Path(tempfile.mkdtemp(prefix="doe-rust-ssh-", dir="/var/tmp"))
    crate = Crate(root)
    crate.first_commit = crate.commit("v1")
    config = make_config_dir(root, {"bench": bench_design({"first": [1, 2], "second": [3]})})
    write_inventory(config, ssh_hosts, {"small": [0, 1]})
    (config / "group_vars" / "small" / "main.yml").write_text("host_setup_roles: [cargo_build]\n"
                                                              "cargo_build_projects: [code]\n")
    doe = Doe(config, root / "results", root / "local")
    doe.crate, doe.hosts = crate, hosts
    with cargo_lent_to(hosts):
        yield doe
    shutil.rmtree(root, ignore_errors=True)


def use_branch(project: Doe, branch: str) -> None:
    # The host type's own list (group_vars/small) wins over this empty one: else nothing would be built.
    (project.config / "group_vars" / "all" / "main.yml").write_text(
        f"prj_id: doe_rust\ngit_remote_repository: {{repo: {project.crate.repo}, version: {branch}}}\n"
        "host_setup_roles: []\n")


def outputs(suite_dir: Path) -> dict[str, str]:
    return {str(path.relative_to(suite_dir)): path.read_text() for path in sorted(suite_dir.rglob("output.csv"))}


def test_every_job_writes_its_output_built_once_per_host(project):
    use_branch(project, "main")
    project("run", "--suite", "bench", "--id", "new", "--cloud", "sshd")
    assert outputs(project.suite_dir("bench")) == {
        "first/run_0/rep_0/small/host_0/output.csv": "version,n,square\nv1,1,1\n",
        "first/run_1/rep_0/small/host_0/output.csv": "version,n,square\nv1,2,4\n",
        "second/run_0/rep_0/small/host_0/output.csv": "version,n,square\nv1,3,9\n",
    }
    assert len(project.crate.builds()) == 2  # two machines


def test_a_later_suite_at_the_same_commit_builds_nothing(project):
    project("run", "--suite", "bench", "--id", "new", "--cloud", "sshd")
    assert len(outputs(project.suite_dir("bench"))) == 3
    assert len(project.crate.builds()) == 2


def test_a_commit_that_does_not_compile_stops_the_run_at_setup_with_the_compilers_error(project):
    project.crate.commit("broken", broken=True, branch="broken")
    use_branch(project, "broken")
    done = project("run", "--suite", "bench", "--id", "new", "--cloud", "sshd", check=False)
    assert done.returncode == 1, done.stderr
    [error] = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert error.startswith("error: setup failed: ") and "of role cargo_build" in error, done.stderr
    assert "error[E0425]: cannot find value `undeclared_value` in this scope" in done.stderr
    suite_dir = project.suite_dir("bench")
    assert outputs(suite_dir) == {} and "Traceback" not in done.stderr
    for host in project.hosts:  # released
        assert not (host.root / "doe-suite" / "doe.lock").exists()
