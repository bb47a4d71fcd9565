"""The inventory doe stores in a suite run's `.inventory/<cloud>.yml`, for every cloud.

One host per slot, grouped by host type, experiment and check_status, next to a copy of the config
dir's group_vars, so the playbooks also run by hand with `ansible-playbook -i` that file. The file's
name is the cloud's: a resumed run finds its cloud there.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import yaml

from doe_cli.config import Project
from doe_cli.fileio import load_yaml, write_atomic
from doe_cli.run.hosts import HostSlot


def write_suite_inventory(project: Project, suite_dir: Path, name: str, header: str, all_vars: dict[str, Any],
                          slots: list[HostSlot], hosts: dict[str, dict]) -> Path:
    """`.inventory/<name>.yml`, one host per slot grouped by host type, experiment and check_status, next
    to a copy of group_vars/, so the playbooks also run by hand with `ansible-playbook -i` that file."""
    path = suite_inventory_file(suite_dir, name)
    inventory_dir = path.parent
    inventory_dir.mkdir(parents=True, exist_ok=True)
    groups: dict[str, dict] = {}

    def add(group: str, host: str) -> None:
        groups.setdefault(group, {"hosts": {}})["hosts"][host] = None

    for slot in slots:
        add(slot.host_type, slot.name)
        add(f"exp_{slot.exp}", slot.name)
        add("check_status_yes" if hosts[slot.name]["doe_check_status"] else "check_status_no", slot.name)
    inventory = {"all": {"vars": all_vars, "hosts": {slot.name: hosts[slot.name] for slot in slots},
                         "children": groups}}
    write_atomic(path, f"# {header}\n"
                 + yaml.safe_dump(inventory, sort_keys=False, default_flow_style=False, width=1 << 16))
    copy_group_vars(project, inventory_dir)
    return path


def suite_inventory_file(suite_dir: Path, name: str) -> Path:
    """Where doe stores a suite run's inventory for the cloud `name`."""
    return suite_dir / ".inventory" / f"{name}.yml"


def read_suite_inventory_hosts(suite_dir: Path, name: str) -> dict[str, dict]:
    """The hosts (name -> host vars) of the inventory doe stored for a suite run; {} when there is none."""
    try:
        content = load_yaml(suite_inventory_file(suite_dir, name).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return {}
    hosts = (content.get("all") or {}).get("hosts") if isinstance(content, dict) else None
    return {host: found for host, found in (hosts or {}).items() if isinstance(found, dict)}


def copy_group_vars(project: Project, inventory_dir: Path) -> None:
    """Ansible reads group_vars next to the inventory; keep a snapshot of the config dir's."""
    target = inventory_dir / "group_vars"
    if project.group_vars_dir.is_dir():
        tmp = inventory_dir / ".group_vars.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(project.group_vars_dir, tmp, symlinks=False)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)


def stored_cloud(suite_dir: Path) -> str | None:
    """The cloud a suite run was started on: the name of the inventory doe wrote in its `.inventory/`."""
    found = sorted(p.stem for p in (suite_dir / ".inventory").glob("*.yml"))
    return found[0] if len(found) == 1 else None
