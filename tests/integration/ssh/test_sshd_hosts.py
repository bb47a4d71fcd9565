"""The sshd test hosts behave like separate machines when driven by Ansible."""

from __future__ import annotations

import yaml

from doe_cli.ansible_adapter import AnsibleAdapter

PLAYBOOK = """\
- name: Probe the test hosts
  hosts: all
  gather_facts: false
  tasks:
    - name: Write a marker into the host's own /tmp
      ansible.builtin.copy:
        content: "{{ inventory_hostname }}"
        dest: /tmp/whoami
        mode: "0644"
    - name: Read the marker back
      ansible.builtin.command:
        argv: [cat, /tmp/whoami]
      changed_when: false
"""


def write_probe(ssh_hosts, folder):
    playbook = folder / "probe.yml"
    playbook.write_text(PLAYBOOK)
    inventory = folder / "inventory.yml"
    inventory.write_text(yaml.safe_dump(
        {"all": {"hosts": {host.name: host.inventory_vars() for host in ssh_hosts.hosts}}}))
    return playbook, inventory


def test_each_host_has_its_own_tmp(ssh_hosts, control_path_dir, tmp_path):
    playbook, inventory = write_probe(ssh_hosts, tmp_path)
    adapter = AnsibleAdapter(tmp_path / "ansible", control_path_dir=control_path_dir)

    result = adapter.run(str(playbook), inventory=inventory)

    assert result.ok, result.summary()
    read_back = result.task_results("Read the marker back")
    assert {host: res["stdout"] for host, res in read_back.items()} == {h.name: h.name for h in ssh_hosts.hosts}
    for host in ssh_hosts.hosts:
        assert (host.dir / "tmp" / "whoami").read_text() == host.name


def test_a_stopped_host_is_reported_unreachable_and_comes_back(ssh_hosts, control_path_dir, tmp_path):
    playbook, inventory = write_probe(ssh_hosts, tmp_path)
    adapter = AnsibleAdapter(tmp_path / "ansible", control_path_dir=control_path_dir)
    down = ssh_hosts.hosts[1]
    down.stop_sshd_only()
    try:
        result = adapter.run(str(playbook), inventory=inventory)
        assert result.unreachable_hosts() == {down.name}
        assert set(result.task_results("Read the marker back")) == {ssh_hosts.hosts[0].name, ssh_hosts.hosts[2].name}
    finally:
        down.start()
    assert adapter.run(str(playbook), inventory=inventory).ok
