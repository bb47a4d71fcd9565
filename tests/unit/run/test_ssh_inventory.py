"""Reading and validating the user's SSH inventory (no processes)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from doe_cli.clouds.inventory import stored_cloud
from doe_cli.clouds.ssh import SshCloud
from doe_cli.config import discover
from doe_cli.errors import UserError
from doe_cli.run.hosts import HostSlot
from doe_cli.run.poll_reply import helper_report


def project_with(tmp_path: Path, inventory: str, name: str = "lab"):
    config = tmp_path / "config"
    (config / "designs").mkdir(parents=True)
    (config / "inventory").mkdir()
    (config / "inventory" / f"{name}.yml").write_text(inventory)
    return discover(config, tmp_path / "results")


def slots(*spec: tuple[str, str, int]) -> list[HostSlot]:
    """(exp, host_type, n) per experiment, numbered like assign_hosts does."""
    taken: dict[str, int] = {}
    result = []
    for exp, host_type, n in spec:
        for idx in range(n):
            result.append(HostSlot(exp=exp, host_type=host_type, idx=idx, n=n, type_index=taken.get(host_type, 0)))
            taken[host_type] = taken.get(host_type, 0) + 1
    return result


LAB = """
all:
  vars:
    ansible_user: lab
  children:
    small:
      vars:
        ansible_port: 2222
      hosts:
        a: {ansible_host: 10.0.0.1}
        b: {ansible_host: 10.0.0.2, ansible_user: root, remote_dir: /data/doe}
    server:
      hosts:
        c: {ansible_host: 10.0.0.3, private_dns_name: c.internal}
"""


def test_hosts_per_type_in_file_order_with_merged_vars(tmp_path):
    cloud = SshCloud.load(project_with(tmp_path, LAB), "lab")
    assert [h.name for h in cloud.hosts_by_type["small"]] == ["a", "b"]
    b = cloud.hosts_by_type["small"][1]
    assert b.vars == {"ansible_user": "root", "ansible_port": 2222, "ansible_host": "10.0.0.2",
                      "remote_dir": "/data/doe"}
    assert b.address == "root@10.0.0.2:2222"
    cloud.assign(slots(("e1", "small", 1), ("e2", "small", 1), ("e2", "server", 1)))
    assert {name: host.name for name, host in cloud.assignment.items()} == {
        "e1-small-0": "a", "e2-small-0": "b", "e2-server-0": "c"}


def test_too_few_hosts_names_the_type_the_experiments_and_the_hosts(tmp_path):
    cloud = SshCloud.load(project_with(tmp_path, LAB), "lab")
    with pytest.raises(UserError) as error:
        cloud.assign(slots(("e1", "small", 2), ("e2", "small", 1)))
    assert str(error.value) == ("inventory/lab.yml: small: host type 'small' needs 3 host(s) (e1: 2, e2: 1) "
                                "but the inventory lists 2 (a, b)")
    with pytest.raises(UserError, match="host type 'client' needs 1 host"):
        cloud.assign(slots(("e1", "client", 1)))


def test_the_same_machine_twice_is_refused(tmp_path):
    inventory = """
small:
  hosts:
    a: {ansible_host: 10.0.0.1}
    a-again: {ansible_host: 10.0.0.1, ansible_port: 22, ansible_user: other}
"""
    cloud = SshCloud.load(project_with(tmp_path, inventory), "lab")
    with pytest.raises(UserError) as error:
        cloud.assign(slots(("e1", "small", 2)))
    assert "small.hosts.a-again: host a-again (other@10.0.0.1:22)" in str(error.value)
    assert "same machine as a" in str(error.value)
    cloud.assign(slots(("e1", "small", 1)))  # only one of them used: fine


@pytest.mark.parametrize(("inventory", "expected"), [
    ("small: [a, b]\n", "small: expected a group"),
    ("small:\n  hostz: {}\n", "small: unknown key(s) hostz"),
    ("small:\n  hosts: {a: {job_queue_dir: /x}}\n", "job_queue_dir is set by doe"),
    ("all:\n  hosts: {a: {}}\n", "all.hosts: hosts directly under `all` have no host type"),
    ("small:\n  hosts: {a: [1]}\n", "small.hosts.a: expected the host's variables as a mapping"),
    ("small: {hosts: {a: }\n", "inventory/lab.yml:2: not valid YAML"),
    ("- a\n", "expected an Ansible YAML inventory"),
])
def test_malformed_inventories_are_one_line_user_errors(tmp_path, inventory, expected):
    with pytest.raises(UserError) as error:
        SshCloud.load(project_with(tmp_path, inventory), "lab")
    assert expected in str(error.value) and "\n" not in str(error.value)


def test_missing_inventory_lists_the_known_ones(tmp_path):
    project = project_with(tmp_path, LAB)
    with pytest.raises(UserError, match=r"inventory/nope.yml does not exist \(inventories: lab\)"):
        SshCloud.load(project, "nope")


def test_env_lookups_are_rendered(tmp_path, monkeypatch):
    monkeypatch.setenv("DOE_TEST_LAB_HOST", "10.9.9.9")
    inventory = "small:\n  hosts:\n    a: {ansible_host: \"{{ lookup('env', 'DOE_TEST_LAB_HOST') }}\"}\n"
    cloud = SshCloud.load(project_with(tmp_path, inventory), "lab")
    assert cloud.hosts_by_type["small"][0].vars["ansible_host"] == "10.9.9.9"
    with pytest.raises(UserError, match="environment variable DOE_TEST_UNSET_VAR is not set"):
        SshCloud.load(project_with(tmp_path / "b", inventory.replace("DOE_TEST_LAB_HOST", "DOE_TEST_UNSET_VAR")),
                      "lab")


def test_host_vars_put_the_queue_under_the_checked_remote_dirs(tmp_path):
    from doe_cli.clouds.ssh import RemotePaths

    cloud = SshCloud.load(project_with(tmp_path, LAB), "lab")
    slot = slots(("e1", "small", 1))[0]
    cloud.assign([slot])
    cloud.paths[slot.name] = RemotePaths(remote_dir="/home/lab/doe-suite", results_dir="/home/lab/doe-suite-results")
    cloud.prj_id = "prj"
    host_vars = cloud.host_vars("s_1", slot, True, [])
    assert host_vars["job_queue_dir"] == "/home/lab/doe-suite/prj/s_1"
    assert host_vars["job_queue_root"] == "/home/lab/doe-suite-results/s_1"
    assert host_vars["ansible_host"] == "10.0.0.1" and host_vars["ansible_port"] == 2222
    assert len(host_vars["job_queue_ts_socket"]) < 40
    # The queue's final shutdown releases this lock.
    assert host_vars["job_queue_lock_file"] == "/home/lab/doe-suite/doe.lock"
    assert host_vars["job_queue_lock_owner"] == "s_1"


def test_a_resume_reads_the_remote_dirs_from_the_stored_inventory(tmp_path):
    from doe_cli.clouds.ssh import RemotePaths

    cloud = SshCloud.load(project_with(tmp_path, LAB), "lab")
    slot = slots(("e1", "small", 1))[0]
    cloud.assign([slot])
    suite_dir = tmp_path / "s_1"
    (suite_dir / ".inventory").mkdir(parents=True)
    assert not cloud.paths_from_inventory(suite_dir)  # nothing stored: a preflight finds them
    cloud.paths[slot.name] = RemotePaths(remote_dir="/srv/doe", results_dir="/srv/results")
    stored = {"all": {"hosts": {slot.name: cloud.host_vars("s_1", slot, True, [])}}}
    (suite_dir / ".inventory" / "lab.yml").write_text(yaml.safe_dump(stored))
    resumed = SshCloud.load(project_with(tmp_path / "again", LAB), "lab")
    resumed.assign([slot])
    assert resumed.paths_from_inventory(suite_dir)
    assert resumed.paths == {slot.name: RemotePaths(remote_dir="/srv/doe", results_dir="/srv/results")}


def test_the_host_checks_report_line_and_stored_cloud(tmp_path):
    stdout = 'noise\r\nDOE-JSON:{"home": "/root", "lock": "busy", "holder": "s_1=x"}\r\nShared connection closed'
    assert helper_report({"stdout": stdout}) == {"home": "/root", "lock": "busy", "holder": "s_1=x"}
    (tmp_path / ".inventory").mkdir()
    assert stored_cloud(tmp_path) is None
    (tmp_path / ".inventory" / "lab.yml").write_text("all: {}\n")
    assert stored_cloud(tmp_path) == "lab"


def test_the_shipped_example_inventory_reads(tmp_path):
    from doe_cli.config import TOOL_ROOT

    cloud = SshCloud.load(discover(TOOL_ROOT, tmp_path / "results"), "example-ssh")
    assert [h.name for h in cloud.hosts_by_type["small"]] == ["lab-node-1", "lab-node-2"]
    assert cloud.hosts_by_type["small"][1].address == "ubuntu@192.0.2.12:2222"
    assert cloud.hosts_by_type["server"][0].vars["remote_dir"] == "/data/doe-suite"


def test_the_shipped_slurm_example_names_one_login_host_for_every_host_type(tmp_path):
    from doe_cli.clouds.slurm import is_slurm_inventory
    from doe_cli.config import TOOL_ROOT

    cloud = SshCloud.load(discover(TOOL_ROOT, tmp_path / "results"), "example-slurm")
    assert is_slurm_inventory(cloud)
    logins = [cloud.hosts_by_type[t][0] for t in ("small", "client", "server")]
    assert {h.address for h in logins} == {"jdoe@login.cluster.example.org:22"}
    assert {h.vars["remote_results_dir"] for h in logins} == {"/cluster/scratch/jdoe/doe-suite-results"}


def test_a_hosts_own_variables_hold_wherever_it_is_listed(tmp_path):
    project = project_with(tmp_path, """
small:
  vars: {ansible_user: alice}
  hosts:
    node: {ansible_host: 192.0.2.5, remote_dir: /data}
server:
  vars: {ansible_user: bob}
  hosts:
    node: {ansible_port: 2200}
""")
    cloud = SshCloud.load(project, "lab")
    small, server = cloud.hosts_by_type["small"][0], cloud.hosts_by_type["server"][0]
    # Host vars from both listings; group vars from the group it is listed in.
    assert small.address == "alice@192.0.2.5:2200" and server.address == "bob@192.0.2.5:2200"
    assert small.vars["remote_dir"] == server.vars["remote_dir"] == "/data"
