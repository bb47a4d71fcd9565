"""Before a suite uses SSH hosts: the inventory is validated, each host must answer, have writable
folders and be free (host lock); every problem is reported naming the host, nothing is set up."""

from __future__ import annotations

import pytest

from tests.integration.ssh.conftest import in_host, write_inventory
from tests.support.sshd_hosts import free_port

pytestmark = [pytest.mark.ssh, pytest.mark.tsp, pytest.mark.slow]


def suite_dirs(ssh_env, suite):
    return sorted(ssh_env.results.glob(f"{suite}_*"))


def test_too_few_hosts_or_the_same_machine_twice_is_bad_input(ssh_env):
    host0, host1, _ = ssh_env.pool.hosts
    existing = suite_dirs(ssh_env, "three")
    write_inventory(ssh_env.config, ssh_env.pool, {"small": [0, 1]}, name="two")
    done = ssh_env("run", "--suite", "three", "--id", "new", "--cloud", "two", check=False)
    assert done.returncode == 2
    assert ("inventory/two.yml: small: host type 'small' needs 3 host(s) (e0: 1, e1: 1, e2: 1) but the "
            "inventory lists 2 (host0, host1)") in done.stderr
    twice = ssh_env.config / "inventory" / "twice.yml"
    twice.write_text(f"""
small:
  hosts:
    first: {{ansible_host: 127.0.0.1, ansible_port: {host0.port}}}
    second: {{ansible_host: 127.0.0.1, ansible_port: {host1.port}}}
    again: {{ansible_host: 127.0.0.1, ansible_port: {host0.port}}}
""")
    done = ssh_env("run", "--suite", "three", "--id", "new", "--cloud", "twice", check=False)
    assert done.returncode == 2
    assert "small.hosts.again: host again (127.0.0.1:" in done.stderr and "same machine as first" in done.stderr
    done = ssh_env("run", "--suite", "three", "--id", "new", "--cloud", "nowhere", check=False)
    assert done.returncode == 2 and "inventory/nowhere.yml does not exist" in done.stderr
    assert "Traceback" not in done.stderr
    assert suite_dirs(ssh_env, "three") == existing  # nothing created


def test_unanswering_full_or_read_only_hosts_are_named_and_nothing_is_set_up(ssh_env):
    host0, host1, host2 = ssh_env.pool.hosts
    existing = suite_dirs(ssh_env, "three")
    in_host(host2, "mkdir -p /root/full && mount -t tmpfs -o size=64k doe-full /root/full && "
                   "(head -c 1000000 /dev/zero > /root/full/filler || true)")
    in_host(host1, "mkdir -p /root/ro && mount -t tmpfs -o ro doe-ro /root/ro")
    dead_port = free_port()
    try:
        write_inventory(ssh_env.config, ssh_env.pool, {"small": [0, 1, 2]}, name="faulty",
                        extra={1: {"ansible_port": dead_port}, 2: {"remote_results_dir": "/root/full"}})
        done = ssh_env("run", "--suite", "three", "--id", "new", "--cloud", "faulty", check=False)
        assert done.returncode == 1
        message = done.stderr
        assert f"host host1 (root@127.0.0.1:{dead_port}, for e1-small-0) does not answer" in message
        assert "Connection refused" in message
        assert "host host2" in message and "/root/full/three_" in message
        assert "No space left on device" in message and "nothing was set up" in message
        # host0 passed and was locked by the check; the failed run released that lock again.
        assert not (host0.root / "doe-suite" / "doe.lock").exists()

        write_inventory(ssh_env.config, ssh_env.pool, {"small": [1, 0, 2]}, name="readonly",
                        extra={1: {"remote_results_dir": "/root/ro"}})
        done = ssh_env("run", "--suite", "three", "--id", "new", "--cloud", "readonly", check=False)
        assert done.returncode == 1
        assert "host host1" in done.stderr and "/root/ro/three_" in done.stderr
        assert "Read-only file system" in done.stderr
    finally:
        in_host(host2, "umount /root/full")
        in_host(host1, "umount /root/ro")
    assert suite_dirs(ssh_env, "three") == existing  # nothing created


def test_a_host_locked_by_another_suite_is_refused_unless_forced(ssh_env):
    host0 = ssh_env.pool.hosts[0]
    lock = host0.root / "doe-suite" / "doe.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text("other_123\n")
    done = ssh_env("run", "--suite", "tiny", "--id", "new", "--cloud", "sshd", check=False)
    assert done.returncode == 1
    assert "host host0" in done.stderr and "in use by suite other_123" in done.stderr
    assert "--force" in done.stderr and not suite_dirs(ssh_env, "tiny")
    assert lock.read_text() == "other_123\n"

    done = ssh_env("run", "--suite", "tiny", "--id", "new", "--cloud", "sshd", "--force")
    assert "took over the lock of suite other_123" in done.stderr
    suite_dir = suite_dirs(ssh_env, "tiny")[-1]
    assert (suite_dir / "tiny/run_0/rep_0/small/host_0/stdout.log").read_text() == "tiny\n"
    assert not lock.exists()  # released when the suite was done


def test_a_results_dir_that_fills_up_during_the_run_stops_it_naming_host_and_path(ssh_env):
    """The 64 KiB probe passes, then the job folders of the first enqueue fill the 96 KiB folder."""
    host2 = ssh_env.pool.hosts[2]
    in_host(host2, "mkdir -p /root/full2 && mount -t tmpfs -o size=96k doe-full2 /root/full2")
    try:
        write_inventory(ssh_env.config, ssh_env.pool, {"small": [2]}, name="filling",
                        extra={2: {"remote_results_dir": "/root/full2"}})
        done = ssh_env("run", "--suite", "many", "--id", "new", "--cloud", "filling", check=False)
        assert done.returncode == 1
        assert "enqueue failed" in done.stderr and "many-small-0" in done.stderr
        assert "cannot write the job folder /root/full2/many_" in done.stderr
        assert "No space left on device" in done.stderr
        assert "resume with: doe run --suite many --id" in done.stderr
    finally:
        in_host(host2, "umount -l /root/full2")
        # The stopped run keeps its lock (it can be resumed); free the host for the other tests.
        (host2.root / "doe-suite" / "doe.lock").unlink(missing_ok=True)
