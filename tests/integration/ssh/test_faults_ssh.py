"""Faults a run on SSH hosts survives, on the real sshd test hosts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections import Counter

import pytest
import yaml

from doe_cli.run.state import ExperimentState
from tests.integration.run.conftest import process_gone, wait_for
from tests.integration.ssh.conftest import ran_log

pytestmark = [pytest.mark.ssh, pytest.mark.tsp, pytest.mark.slow]


def read_yaml(path):
    return yaml.safe_load(path.read_text())


def job_counts(path) -> dict[str, int]:
    """The controller's job state as `doe status` reads it (state.yml plus its journal of changes)."""
    if not path.exists():
        return {}
    return ExperimentState.load(path, "", 0, path.parent.name).counts()


def finished_jobs(suite_dir, exp) -> int:
    return job_counts(suite_dir / exp / "state.yml").get("finished", 0)


def queued_jobs(ssh_env, exp) -> int:
    paths = list(ssh_env.results.glob(f"killed_*/{exp}/state.yml"))
    return job_counts(paths[0]).get("queued", 0) if paths else 0


def remote_done(host, suite_name, exp) -> int:
    """Jobs of an experiment the host itself has finished (its done markers), seen from outside."""
    return len(list((host.root / "doe-suite-results").glob(f"{suite_name}_*/{exp}/run_*/rep_*/.doe_done")))


def test_a_host_whose_sshd_stops_is_reported_and_the_suite_finishes_after_it_returns(ssh_env):
    host0, host1, host2 = ssh_env.pool.hosts
    before = {host.name: Counter(ran_log(host)) for host in ssh_env.pool.hosts}
    process = ssh_env.popen("run", "--suite", "three", "--id", "new", "--cloud", "sshd3")
    try:
        wait_for(lambda: remote_done(host1, "three", "e1") >= 1, timeout=120, what="host1's first job")
        host1.stop_sshd_only()
        suite_dir = wait_for(lambda: next(iter(ssh_env.results.glob("three_*")), None), what="suite dir")
        # The other hosts keep being polled: their experiments complete while host1 is away.
        wait_for(lambda: finished_jobs(suite_dir, "e0") == 5 and finished_jobs(suite_dir, "e2") == 5,
                 timeout=120, what="e0 and e2 finished without host1")
        assert process.poll() is None
        # host1's jobs go on in its queue meanwhile.
        wait_for(lambda: remote_done(host1, "three", "e1") == 5, timeout=60, what="host1's jobs done")
        assert finished_jobs(suite_dir, "e1") < 5
    finally:
        if not host1.running:
            host1.start()
    _, err = process.communicate(timeout=180)
    assert process.returncode == 0, err
    assert "host e1-small-0 is unreachable" in err and "host e1-small-0 answers again" in err
    for exp in ("e0", "e1", "e2"):
        assert finished_jobs(suite_dir, exp) == 5
        for k in range(5):
            stdout = suite_dir / exp / f"run_{k}/rep_0/small/host_0/stdout.log"
            assert stdout.read_text() == f"done {k}\n"
    # No job lost or duplicated: every job ran exactly once, on its own host.
    for host, exp in ((host0, "e0"), (host1, "e1"), (host2, "e2")):
        runs = Counter(ran_log(host)) - before[host.name]
        assert sorted(runs.values()) == [1] * 5 and all(f"/{exp}/" in path for path in runs)


def test_a_hanging_job_times_out_and_unsafe_files_are_not_fetched(ssh_env):
    done = ssh_env("run", "--suite", "hazards", "--id", "new", "--cloud", "sshd_slow", check=False)
    assert done.returncode == 1, done.stderr  # the timed-out job counts as failed
    suite_dir = ssh_env.suite_dir("hazards")
    hung = suite_dir / "hazards/run_0/rep_0/slow/host_0"
    info = read_yaml(hung / ".doe_runtime_info.yaml")
    assert info["status"] == "timeout" and info["wall_seconds"] < 60
    assert process_gone(int((hung / "hang.pid").read_text()))
    assert read_yaml(suite_dir / "hazards/state.yml")["jobs"]["run_0/rep_0"]["status"] == "failed"
    # The suite went on: the other job ran and its plain files were fetched, nothing else.
    host = suite_dir / "hazards/run_1/rep_0/slow/host_0"
    assert (host / "stdout.log").read_text() == "ok\n"
    assert (host / "..dots").read_text() == "x\n" and (host / "sub/inner.txt").read_text() == "y\n"
    for name in ("passwd_link", "root_link", "big.bin"):
        assert not (host / name).exists() and not (host / name).is_symlink()
    assert not [path for path in ssh_env.results.rglob("*") if path.is_symlink()]
    notes = (suite_dir / ".doe/not_fetched.log").read_text()
    assert "passwd_link: symlink to /etc/passwd" in notes and "root_link: symlink to /" in notes
    assert "big.bin: 2000000 bytes, over the fetch cap of 1048576 bytes" in notes
    assert "not fetched: hazards-slow-0: hazards/run_1/rep_0/results/big.bin" in done.stderr


def test_controller_killed_in_a_multi_host_job_resumes_and_single_host_jobs_kept_running(ssh_env):
    host0, host1, host2 = ssh_env.pool.hosts
    before = {host.name: Counter(ran_log(host)) for host in ssh_env.pool.hosts}
    process = ssh_env.popen("run", "--suite", "killed", "--id", "new", "--cloud", "sshd")
    started = host2.root / "doe-suite-results"
    wait_for(lambda: list(started.glob("killed_*/duo/run_0/rep_0/.doe_started")) and queued_jobs(ssh_env, "duo"),
             timeout=120, what="the first multi-host job started and recorded as queued")
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    solo_done_at_kill = remote_done(host0, "killed", "solo")
    assert solo_done_at_kill < 6
    # With no controller, the single-host experiment's queue goes on to the end.
    wait_for(lambda: remote_done(host0, "killed", "solo") == 6, timeout=60, what="solo jobs done without doe")
    # doe status asks the SSH hosts (the suite's stored inventory) while no controller runs.
    status = json.loads(ssh_env("status", "--suite", "killed", "--id", "last", "--json").stdout)
    assert status["experiments"]["solo"]["on_hosts"]["done"] == status["experiments"]["solo"]["queued"] == 6

    # Resuming without --cloud continues on the suite's own cloud.
    resumed = ssh_env("run", "--suite", "killed", "--id", "last")
    assert "runs on cloud 'sshd'; resuming there" in resumed.stderr

    suite_dir = ssh_env.suite_dir("killed")
    assert finished_jobs(suite_dir, "solo") == 6 and finished_jobs(suite_dir, "duo") == 2
    for k in range(2):
        assert (suite_dir / f"duo/run_{k}/rep_0/client/host_0/.doe_runtime_info.yaml").is_file()
    for host, exp, n in ((host0, "solo", 6), (host1, "duo", 2), (host2, "duo", 2)):
        runs = Counter(ran_log(host)) - before[host.name]
        assert sorted(runs.values()) == [1] * n and all(f"/{exp}/" in path for path in runs), runs
    assert not (host1.root / "doe-suite" / "doe.lock").exists()


GATED = """
gated:
  host_types:
    small:
      $CMD$: echo "$PWD" >> /tmp/ran.log; while [ ! -e /tmp/doe-gate-open ]; do sleep 0.05; done; echo through
  base_experiment:
    k: 1
"""


def test_a_host_that_drops_between_its_status_and_its_fetch_counts_as_unreachable(ssh_env, tmp_path):
    """The host's sshd listener dies while its job runs: the status still gets through Ansible's open
    connection, the fetch's new ssh connection does not. That is an unreachable host (retried while
    the run goes on), not a failed poll (five of which stop the run); its results arrive once it is back."""
    host0 = ssh_env.pool.hosts[0]
    (ssh_env.config / "designs" / "gated.yml").write_text(GATED)
    gate = host0.dir / "tmp" / "doe-gate-open"
    gate.unlink(missing_ok=True)
    before = Counter(ran_log(host0))
    log = tmp_path / "doe.log"
    with open(log, "w") as stderr:
        process = subprocess.Popen(ssh_env.argv("run", "--suite", "gated", "--id", "new", "--cloud", "sshd"),
                                   stdout=subprocess.DEVNULL, stderr=stderr, env=ssh_env.env(),
                                   start_new_session=True)
    try:
        started = host0.root / "doe-suite-results"
        wait_for(lambda: list(started.glob("gated_*/gated/run_0/rep_0/.doe_started")), timeout=120,
                 what="the job started")
        host0.process.kill()  # the listener only: open sessions (Ansible's connection) stay
        host0.process.wait()
        gate.touch()

        def reported() -> bool:
            assert process.poll() is None, log.read_text()
            return "host gated-small-0 is unreachable (the fetch could not connect" in log.read_text()

        wait_for(reported, timeout=120, what="the host reported unreachable")
        host0.start()
        assert process.wait(timeout=180) == 0, log.read_text()
    finally:
        gate.unlink(missing_ok=True)
        if not host0.running:
            host0.start()
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    err = log.read_text()
    assert "host gated-small-0 answers again" in err and "polling host" not in err
    suite_dir = ssh_env.suite_dir("gated")
    assert (suite_dir / "gated/run_0/rep_0/small/host_0/stdout.log").read_text() == "through\n"
    assert finished_jobs(suite_dir, "gated") == 1
    assert sorted((Counter(ran_log(host0)) - before).values()) == [1]
    assert not (host0.root / "doe-suite" / "doe.lock").exists()
