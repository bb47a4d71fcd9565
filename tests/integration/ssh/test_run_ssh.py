"""`doe run --cloud sshd` on three real sshd hosts: the same run machinery as the local cloud, with
hosts from the config dir's inventory/sshd.yml."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import yaml

from tests.integration.ssh.conftest import ran_log

pytestmark = [pytest.mark.ssh, pytest.mark.tsp, pytest.mark.slow]


def read_yaml(path):
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def mixed_run(ssh_env):
    before = {host.name: Counter(ran_log(host)) for host in ssh_env.pool.hosts}
    done = ssh_env("run", "--suite", "mixed", "--id", "new", "--cloud", "sshd")
    return ssh_env.suite_dir("mixed"), done, before


def test_single_and_multi_host_experiments_run_on_their_hosts(mixed_run, ssh_env):
    suite_dir, _, before = mixed_run
    host0, host1, host2 = ssh_env.pool.hosts
    for run in range(2):
        for rep in range(2):
            out = suite_dir / f"single/run_{run}/rep_{rep}/small/host_0"
            assert (out / "stdout.log").read_text() == f"x={run + 1}\nhost0\n"
            info = read_yaml(out / "runtime_info.yaml")
            assert info["status"] == "finished" and info["host"] == "single-small-0"
            assert json.loads((suite_dir / f"single/run_{run}/rep_{rep}/config.json").read_text())["x"] == run + 1
        pair = suite_dir / f"pair/run_{run}/rep_0"
        assert (pair / "client/host_0/stdout.log").read_text() == f"client {run + 1} talks to 127.0.0.1\n"
        assert (pair / "server/host_0/stdout.log").read_text() == "server-up\n"
    # Each job ran once, on its own host (each host has its own /tmp).
    new_runs = {h.name: Counter(ran_log(h)) - before[h.name] for h in (host0, host1, host2)}
    assert sorted(new_runs["host0"].values()) == [1, 1, 1, 1]
    assert all("/single/" in path for path in new_runs["host0"])
    assert sorted(new_runs["host1"].values()) == [1, 1] and all("/pair/" in p for p in new_runs["host1"])
    assert sorted(new_runs["host2"].values()) == [1, 1] and all("/pair/" in p for p in new_runs["host2"])
    # Results stay on the host (under its home) and the lock is released.
    assert (host0.root / "doe-suite-results" / suite_dir.name / "single/run_1/rep_1/results/stdout.log").is_file()
    for host in (host0, host1, host2):
        assert not (host.root / "doe-suite" / "doe.lock").exists()
    inventory = read_yaml(suite_dir / ".inventory/sshd.yml")
    assert inventory["all"]["hosts"]["pair-client-0"]["ansible_port"] == host2.port
    assert set(inventory["all"]["children"]["small"]["hosts"]) == {"single-small-0"}
