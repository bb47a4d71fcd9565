"""Before a suite uses SSH hosts: the inventory is validated, each host must answer, have writable
folders and be free (host lock); every problem is reported naming the host, nothing is set up."""

from __future__ import annotations

import pytest
import yaml

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
    try:
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
    finally:
        lock.unlink(missing_ok=True)  # a failure here must not make the host busy for the other tests


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


GATE = "".join(f"""
g{i}:
  host_types:
    small:
      $CMD$: echo "$PWD" >> /tmp/ran.log; [ -e /tmp/doe-gate-gate ]
  base_experiment:
    k:
      $FACTOR$: [0, 1]
""" for i in range(3))


def test_a_resumed_suite_checks_its_hosts_in_its_first_round_before_any_enqueue(ssh_env):
    """Setup done, jobs to retry: the host check is the first play of the round. A host locked by
    another suite stops every host before anything is enqueued; --force takes it over."""
    from tests.integration.ssh.conftest import ran_log

    (ssh_env.config / "designs" / "gate.yml").write_text(GATE)
    done = ssh_env("run", "--suite", "gate", "--id", "new", "--cloud", "sshd3", "--keep", check=False)
    assert done.returncode == 1, done.stderr  # every job failed: the gate file is missing
    suite_dir = ssh_env.suite_dir("gate")
    for host in ssh_env.pool.hosts:
        (host.dir / "tmp" / "doe-gate-gate").touch()
    ran_before = [ran_log(host) for host in ssh_env.pool.hosts]
    lock = ssh_env.pool.hosts[1].root / "doe-suite" / "doe.lock"
    assert lock.read_text() == f"{suite_dir.name}\n"  # --keep kept the hosts locked
    lock.write_text("other_7\n")
    try:
        done = ssh_env("run", "--suite", "gate", "--id", "last", "--retry-failed", check=False)
        assert done.returncode == 1
        assert "host host1" in done.stderr and "for g1-small-0) is in use by suite other_7" in done.stderr
        assert "Traceback" not in done.stderr
        assert [ran_log(host) for host in ssh_env.pool.hosts] == ran_before  # nothing enqueued anywhere
        assert lock.read_text() == "other_7\n"

        done = ssh_env("run", "--suite", "gate", "--id", "last", "--retry-failed", "--force")
        assert "took over the lock of suite other_7" in done.stderr
        for i in range(3):
            assert yaml.safe_load((suite_dir / f"g{i}/run_1/rep_0/small/host_0/.doe_runtime_info.yaml").read_text())[
                "status"] == "finished"
        for host in ssh_env.pool.hosts:
            assert not (host.root / "doe-suite" / "doe.lock").exists()  # released with the queues' shutdown
    finally:  # a failure here must not leave the hosts busy for the other tests
        for host in ssh_env.pool.hosts:
            (host.root / "doe-suite" / "doe.lock").unlink(missing_ok=True)


FAILING_SETUP = """
broken:
  common_roles: [fails_on_client]
  host_types:
    server:
      check_status: false
      $CMD$: echo "$PWD" >> /tmp/ran.log; exec sleep 300
    client:
      $CMD$: echo "$PWD" >> /tmp/ran.log
  base_experiment:
    k: 1
"""


FAILING_TASK = """---
- name: Fail on the client only
  ansible.builtin.fail:
    msg: this role fails on purpose
  when: doe_host_type == 'client'
"""

# A module of a collection doe does not ship: Ansible stops when the include loads the role.
UNKNOWN_MODULE = """---
- name: Pull the tool's image
  community.docker.docker_image:
    name: tool
    source: pull
"""


@pytest.mark.parametrize(("role_tasks", "reason"), [
    (FAILING_TASK, "failed in task 'Fail on the client only' of role fails_on_client: this role fails on purpose"),
    (UNKNOWN_MODULE, "couldn't resolve module/action 'community.docker.docker_image'"),
], ids=["task-fails", "module-unknown"])
def test_a_failed_setup_stops_every_host_and_releases_their_locks(ssh_env, role_tasks, reason):
    from tests.integration.ssh.conftest import ran_log

    (ssh_env.config / "designs" / "broken.yml").write_text(FAILING_SETUP)
    tasks = ssh_env.config / "roles" / "fails_on_client" / "tasks"
    tasks.mkdir(parents=True, exist_ok=True)
    (tasks / "main.yml").write_text(role_tasks)
    _, host1, host2 = ssh_env.pool.hosts
    ran_before = [ran_log(host1), ran_log(host2)]
    done = ssh_env("run", "--suite", "broken", "--id", "new", "--cloud", "sshd", check=False)
    assert done.returncode == 1
    [error] = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert error.startswith("error: setup failed:") and reason in error, done.stderr
    assert "enqueue failed" not in done.stderr and "Traceback" not in done.stderr
    assert "releasing the 2 host(s)" in done.stderr
    # The server's setup passed, but no host got a job, and both locks are gone.
    assert [ran_log(host1), ran_log(host2)] == ran_before
    assert not list((host1.root / "doe-suite-results").glob("broken_*/broken/run_0"))
    for host in (host1, host2):
        assert not (host.root / "doe-suite" / "doe.lock").exists()
