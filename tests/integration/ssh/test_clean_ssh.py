"""`doe clean --cloud <inventory>`: the queues and locks a kept (or stopped) run left on SSH hosts."""

from __future__ import annotations

import pytest
import yaml

from tests.integration.run.conftest import tsp_servers_under, wait_for

pytestmark = [pytest.mark.ssh, pytest.mark.tsp, pytest.mark.slow]

KEPT = """
kept:
  host_types:
    small:
      $CMD$: echo kept
  base_experiment:
    k: 1
"""


def test_clean_stops_the_kept_queue_and_frees_the_host_but_keeps_every_result(ssh_env):
    host0 = ssh_env.pool.hosts[0]
    lock = host0.root / "doe-suite" / "doe.lock"
    (ssh_env.config / "designs" / "kept.yml").write_text(KEPT)  # a suite of its own: others count theirs
    ssh_env("run", "--suite", "kept", "--id", "new", "--cloud", "sshd", "--keep")
    suite_dir = ssh_env.suite_dir("kept")
    assert lock.read_text() == f"{suite_dir.name}\n"  # --keep keeps the host locked
    inventory = yaml.safe_load((suite_dir / ".inventory" / "sshd.yml").read_text())
    queue_socket = inventory["all"]["hosts"]["kept-small-0"]["job_queue_ts_socket"]
    assert tsp_servers_under(queue_socket), "the kept host's queue should still run"

    listed = ssh_env("clean", "--cloud", "sshd", "--suite", "kept", "--id", "last", "--dry-run")
    assert listed.stdout.strip() == f"{suite_dir.name}: 1 host(s) of inventory sshd (kept-small-0)"
    assert lock.exists() and tsp_servers_under(queue_socket)  # a dry run changes nothing

    ssh_env("clean", "--cloud", "sshd", "--suite", "kept", "--id", "last", "--yes")
    assert not lock.exists()
    wait_for(lambda: tsp_servers_under(queue_socket) == [], timeout=30, what="the queue to stop")
    assert (suite_dir / "kept/run_0/rep_0/small/host_0/stdout.log").read_text() == "kept\n"
    again = ssh_env("clean", "--cloud", "sshd")
    assert again.stdout == "" and "stopped the queues of 0 host(s) of 0 suite run(s)" in again.stderr
    # Another run may use the host now, without --force; it frees the host when done.
    ssh_env("run", "--suite", "kept", "--id", "new", "--cloud", "sshd")
    assert not lock.exists()


def test_clean_names_what_it_expects_for_an_unknown_cloud(ssh_env):
    done = ssh_env("clean", "--cloud", "nowhere", check=False)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "expected 'aws', 'local' or the name of an inventory in " in done.stderr and "got 'nowhere'" in done.stderr
