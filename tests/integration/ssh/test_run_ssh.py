"""`doe run --cloud sshd` on three real sshd hosts: the same run machinery as the local cloud, with
hosts from the config dir's inventory/sshd.yml."""

from __future__ import annotations

import json
import subprocess
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
            info = read_yaml(out / ".doe_runtime_info.yaml")
            assert info["status"] == "finished" and info["host"] == "single-small-0"
            assert json.loads((suite_dir / f"single/run_{run}/rep_{rep}/config.json").read_text())["x"] == run + 1
    pair = suite_dir / "pair/run_0/rep_0"
    assert (pair / "client/host_0/stdout.log").read_text() == "client 1 talks to 127.0.0.1\n"
    assert (pair / "server/host_0/stdout.log").read_text() == "server-up\n"
    assert read_yaml(pair / "server/host_0/.doe_runtime_info.yaml")["stopped_by_controller"] is True
    # Each job ran once, on its own host (each host has its own /tmp).
    new_runs = {h.name: Counter(ran_log(h)) - before[h.name] for h in (host0, host1, host2)}
    assert sorted(new_runs["host0"].values()) == [1, 1, 1, 1]
    assert all("/single/" in path for path in new_runs["host0"])
    assert sorted(new_runs["host1"].values()) == [1] and all("/pair/" in p for p in new_runs["host1"])
    assert sorted(new_runs["host2"].values()) == [1] and all("/pair/" in p for p in new_runs["host2"])
    # Results stay on the host (under its home) and the lock is released.
    assert (host0.root / "doe-suite-results" / suite_dir.name / "single/run_1/rep_1/results/stdout.log").is_file()
    for host in (host0, host1, host2):
        assert not (host.root / "doe-suite" / "doe.lock").exists()
    inventory = read_yaml(suite_dir / ".inventory/sshd.yml")
    assert inventory["all"]["hosts"]["pair-client-0"]["ansible_port"] == host2.port
    assert set(inventory["all"]["children"]["small"]["hosts"]) == {"single-small-0"}


def test_setup_clones_a_private_repository_with_the_forwarded_ssh_agent(ssh_env, tmp_path, monkeypatch):
    """host0 serves a git repository over SSH that only the controller's key may read; host1 clones it
    during setup through the agent doe forwards."""
    from tests.integration.run.conftest import Doe, make_config_dir
    from tests.integration.ssh.conftest import TINY, write_inventory

    host0, host1, _ = ssh_env.pool.hosts
    repo = host0.root / "code.git"
    work = tmp_path / "work"
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(work)]
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    (work / "tool.sh").write_text("echo tool\n")
    subprocess.run([*git, "add", "tool.sh"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "one"], check=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(repo)], check=True)
    commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    config = make_config_dir(tmp_path, {"tiny": TINY})
    (config / "group_vars" / "all" / "main.yml").write_text(
        f"prj_id: doe_test\ngit_remote_repository:\n  - repo: ssh://root@127.0.0.1:{host0.port}/root/code.git\n"
        f"    version: main\n")
    write_inventory(config, ssh_env.pool, {"small": [1]}, name="one")
    agent = subprocess.run(["ssh-agent", "-s"], capture_output=True, text=True, check=True).stdout
    values = dict(part.split("=", 1) for part in agent.replace(";", "\n").split() if "=" in part)
    try:
        monkeypatch.setenv("SSH_AUTH_SOCK", values["SSH_AUTH_SOCK"])
        # The controller asks the repository for the commit of `main` too: not into this machine's known_hosts.
        monkeypatch.setenv("GIT_SSH_COMMAND", "ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
                                              "-o LogLevel=ERROR")
        subprocess.run(["ssh-add", "-q", str(ssh_env.pool.key)], check=True, capture_output=True)
        doe = Doe(config, tmp_path / "results", tmp_path / "local")
        doe("run", "--suite", "tiny", "--id", "new", "--cloud", "one")
    finally:
        subprocess.run(["kill", values["SSH_AGENT_PID"]], check=False)
    suite_dir = doe.suite_dir("tiny")
    checkout = host1.root / "doe-suite" / "doe_test" / suite_dir.name / "code"
    assert (checkout / "tool.sh").read_text() == "echo tool\n"
    assert not (host1.root / ".ssh" / "id_ed25519").exists()  # host1 has no key of its own
    provenance = json.loads((suite_dir / "provenance.json").read_text())
    assert provenance["repositories"]["tiny-small-0"][0]["commit"] == commit
    from doe_cli.run.ansible_env import control_path_dir
    from tests.support.sshd_hosts import close_control_masters

    close_control_masters(control_path_dir(suite_dir))
