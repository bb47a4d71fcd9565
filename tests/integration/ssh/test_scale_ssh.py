"""3 x 2,000 jobs on three real sshd hosts: requests, reports and fetch lists stay bounded over SSH."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.integration.ssh.conftest import ran_log

pytestmark = [pytest.mark.ssh, pytest.mark.tsp, pytest.mark.slow]

N_PER_HOST = 2000
GRID = "".join(f"""
big{i}:
  host_types:
    small:
      $CMD$: echo "$PWD" >> /tmp/ran.log
  base_experiment:
    k:
      $FACTOR$: {{{{ range(0, {N_PER_HOST}) | list }}}}
""" for i in range(3))


def test_two_thousand_jobs_on_each_of_three_ssh_hosts_run_once_and_arrive(ssh_env):
    (ssh_env.config / "designs" / "big.yml").write_text(GRID)
    before = {host.name: Counter(ran_log(host)) for host in ssh_env.pool.hosts}
    done = ssh_env("run", "--suite", "big", "--id", "new", "--cloud", "sshd3", timeout=900)
    assert "Traceback" not in done.stderr
    suite_dir = ssh_env.suite_dir("big")
    for i, host in enumerate(ssh_env.pool.hosts):
        ran = Counter(ran_log(host)) - before[host.name]
        assert len(ran) == N_PER_HOST and set(ran.values()) == {1}, host.name
        assert all(f"/big{i}/" in path for path in ran)
        fetched = list(suite_dir.glob(f"big{i}/run_*/rep_0/small/host_0/.doe_runtime_info.yaml"))
        assert len(fetched) == N_PER_HOST
    assert f"big0: {N_PER_HOST}/{N_PER_HOST} jobs, 0 failed" in done.stderr
