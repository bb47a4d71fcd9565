"""A Rust benchmark kept in a git repository runs on the local cloud with group_vars settings alone
(git_remote_repository, host_setup_roles): the hosts check it out at the suite's commit, cargo_build
builds it once per commit (the local hosts share one build, a later suite reuses it), and `$CMD$`
runs `exp_code_dir`/target/release/tiny. A commit that does not compile stops the run at setup with
rustc's error, compiled once for all hosts (those that waited fail with the recorded error) and again by a
later attempt; a resume keeps the suite's commit although the branch moved on; the build cache keeps the
most recently used builds."""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.integration.run.conftest import Doe, make_config_dir, tsp_servers_under
from tests.support.rust_crate import Crate, bench_design, machine_cargo

pytestmark = [pytest.mark.tsp, pytest.mark.slow]

# Two experiments: two local hosts, set up at the same time.
BENCH = bench_design({"first": [1, 2], "second": [3]})
# n = 0 fails: `--retry-failed` sets fresh hosts up and runs it again.
RETRY = bench_design({"once": [0, 4]})
ONE = bench_design({"one": [5]})


@pytest.fixture(scope="module")
def project():
    machine_cargo()
    root = Path(tempfile.mkdtemp(prefix="doe-rust-", dir="/tmp"))  # short: task spooler sockets
    crate = Crate(root)
    crate.first_commit = crate.commit("v1")
    config = make_config_dir(root, {"bench": BENCH, "retry": RETRY, "one": ONE})
    doe = Doe(config, root / "results", root / "hosts")
    doe.crate = crate
    yield doe
    shutil.rmtree(root, ignore_errors=True)


def use_branch(project: Doe, branch: str, roles: str = "[rust_toolchain, cargo_build]", more: str = "") -> None:
    (project.config / "group_vars" / "all" / "main.yml").write_text(
        f"prj_id: doe_test\ngit_remote_repository: {{repo: {project.crate.repo}, version: {branch}}}\n"
        f"host_setup_roles: {roles}\n{more}")


def counting_cargo(project: Doe) -> Path:
    """A cargo that logs each call (one line of its arguments) before it runs the machine's cargo: a build
    script's log misses builds cargo answers from its own cache, this counts every attempt."""
    wrapper = project.config.parent / "counting" / "cargo"
    if not wrapper.exists():
        wrapper.parent.mkdir()
        wrapper.write_text(f'#!/bin/sh\necho "$*" >> "{wrapper}.calls"\nexec "{machine_cargo()}" "$@"\n')
        wrapper.chmod(0o755)
    return wrapper


def cargo_calls(wrapper: Path) -> list[str]:
    calls = wrapper.with_name("cargo.calls")
    return calls.read_text().splitlines() if calls.exists() else []


def outputs(suite_dir: Path) -> dict[str, str]:
    return {str(path.relative_to(suite_dir)): path.read_text() for path in sorted(suite_dir.rglob("output.csv"))}


def build_stderr(suite_dir: Path) -> dict[str, str]:
    """Per host, the stderr of its failed build, from Ansible's display of the setup that doe keeps for
    post-mortems."""
    found = {}
    for path in sorted(suite_dir.glob(".doe/ansible/*setup*/artifacts/*/stdout")):
        for line in path.read_text().splitlines():
            failed = re.match(r"failed: \[([^]]+)\] \(item=.*?\) => (\{.*\})$", line)
            if failed:
                found[failed[1]] = json.loads(failed[2])["stderr"]
    return found


def test_every_job_writes_its_output_and_the_hosts_share_one_build(project):
    use_branch(project, "main")
    project("run", "--suite", "bench", "--id", "new")
    suite_dir = project.suite_dir("bench")
    assert outputs(suite_dir) == {
        "first/run_0/rep_0/small/host_0/output.csv": "version,n,square\nv1,1,1\n",
        "first/run_1/rep_0/small/host_0/output.csv": "version,n,square\nv1,2,4\n",
        "second/run_0/rep_0/small/host_0/output.csv": "version,n,square\nv1,3,9\n",
    }
    assert len(project.crate.builds()) == 1
    provenance = json.loads((suite_dir / "provenance.json").read_text())
    assert {repo["commit"] for repos in provenance["repositories"].values() for repo in repos} == \
        {project.crate.first_commit}


def test_a_later_suite_at_the_same_commit_builds_nothing(project):
    project("run", "--suite", "bench", "--id", "new")
    assert len(outputs(project.suite_dir("bench"))) == 3
    assert len(project.crate.builds()) == 1


def test_a_commit_that_does_not_compile_stops_the_run_at_setup_with_the_compilers_error(project):
    project.crate.commit("broken", broken=True, branch="broken")
    cargo = counting_cargo(project)
    use_branch(project, "broken", roles="[cargo_build]", more=f"cargo_build_cargo: {cargo}\n")
    done = project("run", "--suite", "bench", "--id", "new", check=False)
    assert done.returncode == 1, done.stderr
    suite_dir = project.suite_dir("bench")
    first, *output = done.stderr.split("error: setup failed: ", 1)[1].splitlines()
    assert "failed in task 'Build the projects not yet built at their commit' of role cargo_build: One or more " \
           "items failed: non-zero return code;" in first, done.stderr
    suite_id = suite_dir.name.rsplit("_", 1)[1]
    assert first.endswith(f"fix it, then set up again with: doe run --suite bench --id {suite_id}"), first
    assert output[0].startswith("last ") and " line(s) of the command's output on " in output[0]
    assert any("error[E0425]: cannot find value `undeclared_value` in this scope" in line for line in output)
    assert any("src/main.rs:2" in line for line in output)
    assert "Traceback" not in done.stderr
    assert outputs(suite_dir) == {} and not list(suite_dir.glob("*/run_*/rep_*/small"))  # no job ran
    assert tsp_servers_under(project.local) == []
    assert not (project.local / suite_dir.name).exists()
    # Both hosts share the build: cargo compiled the commit once, the host that waited failed with its error.
    assert cargo_calls(cargo) == ["build --release"]
    failures = build_stderr(suite_dir)
    assert sorted(failures) == ["first-small-0", "second-small-0"], failures
    for host, text in failures.items():
        assert "error[E0425]: cannot find value `undeclared_value` in this scope" in text, (host, text)
    assert sum("not built again: this commit failed to build a moment ago" in text for text in failures.values()) == 1

    # A later attempt compiles again (the environment may have been fixed): once, for both hosts.
    again = project("run", "--suite", "bench", "--id", suite_id, check=False)
    assert again.returncode == 1 and "error[E0425]" in again.stderr, again.stderr
    assert cargo_calls(cargo) == ["build --release"] * 2


def test_a_host_without_cargo_is_told_to_list_rust_toolchain(project):
    use_branch(project, "main", roles="[cargo_build]")
    home = project.config.parent / "empty-home"
    home.mkdir()
    machine_path = os.environ["PATH"]
    env = project.env

    def without_cargo() -> dict[str, str]:
        found = env()
        cargo_dirs = {str(Path(p)) for p in found["PATH"].split(os.pathsep) if (Path(p) / "cargo").exists()}
        return {**found, "HOME": str(home),
                "PATH": os.pathsep.join(p for p in machine_path.split(os.pathsep) if p not in cargo_dirs)}

    project.env = without_cargo
    try:
        if shutil.which("cargo", path=without_cargo()["PATH"]):
            pytest.skip("cargo is in a system folder here")
        done = project("run", "--suite", "bench", "--id", "new", check=False)
    finally:
        project.env = env
    assert done.returncode == 1, done.stderr
    [error] = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert "no cargo on first-small-0 (neither on PATH nor in ~/.cargo/bin): list rust_toolchain before " \
           "cargo_build in host_setup_roles" in error, done.stderr


def test_a_resume_after_the_branch_moved_keeps_the_suites_commit(project):
    use_branch(project, "main")
    done = project("run", "--suite", "retry", "--id", "new", check=False)
    assert done.returncode == 1 and "1 failed" in done.stderr, done.stderr
    suite_dir = project.suite_dir("retry")
    second_commit = project.crate.commit("v2")
    builds = len(project.crate.builds())
    done = project("run", "--suite", "retry", "--id", "last", "--retry-failed", check=False)
    assert "setting up 1 host(s)" in done.stderr, done.stderr
    # The job ran again on a fresh host, with the suite's commit: v1's binary, not v2's.
    assert (suite_dir / "once/run_0/rep_0/small/host_0/stdout.log").read_text() == "v1 n=0\n"
    assert (suite_dir / "once/run_1/rep_0/small/host_0/output.csv").read_text() == "version,n,square\nv1,4,16\n"
    stored = json.loads((suite_dir / ".doe" / "repositories.json").read_text())
    assert [repo["commit"] for repo in stored] == [project.crate.first_commit] != [second_commit]
    assert len(project.crate.builds()) == builds  # the same commit: built before


def test_the_build_cache_keeps_the_most_recently_used_builds_of_a_project(project):
    cargo = counting_cargo(project)
    use_branch(project, "cache", more=f"cargo_build_cargo: {cargo}\n")  # default cargo_build_cache_keep: 3
    builds = project.local / "cache" / "cargo"
    calls = len(cargo_calls(cargo))

    def build(version: str) -> str:
        commit = project.crate.commit(version, branch="cache")
        project("run", "--suite", "one", "--id", "new")
        assert outputs(project.suite_dir("one")) == {
            "one/run_0/rep_0/small/host_0/output.csv": f"version,n,square\n{version},5,25\n"}
        return commit

    commits = [build(f"c{n}") for n in range(1, 4)]
    [key] = [folder for folder in builds.iterdir() if (folder / commits[0]).is_dir()]
    # Another host holds the lock of the oldest build (it builds or links it): it stays.
    with open(key / commits[0] / ".lock") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        commits.append(build("c4"))
        assert {p.name for p in key.iterdir()} == set(commits)  # beyond 3, but c1 was held
    commits.append(build("c5"))
    assert {p.name for p in key.iterdir()} == set(commits[-3:])
    newest = key / commits[-1] / "release"
    assert (newest / ".doe-built-commit").read_text() == f"{commits[-1]}\n" and os.access(newest / "tiny", os.X_OK)
    assert len(cargo_calls(cargo)) == calls + 5  # each commit built once
