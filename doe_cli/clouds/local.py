"""The local cloud: every host of every experiment is its own inventory host on this machine.

Each host has `ansible_connection: local`, its own folder under the local base dir and its own task
spooler socket, so a client/server experiment with three hosts runs here exactly as on three
machines. The inventory is a static YAML file in the suite's `.inventory/`, next to a copy of the
config dir's group_vars, so `ansible-playbook -i .inventory/local.yml playbooks/poll.yml` works by hand.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from doe_cli.clouds.base import CostSoFar
from doe_cli.clouds.inventory import write_suite_inventory
from doe_cli.config import Project
from doe_cli.errors import UserError
from doe_cli.run import hostvars
from doe_cli.run.hosts import HostSlot

if TYPE_CHECKING:
    from doe_cli.ansible_adapter import PlaybookResult

# Unix socket paths are limited to 108 bytes; keep a margin for tsp's own suffixes.
_MAX_SOCKET_PATH = 100


def local_base_dir(option: Path | None) -> Path:
    if option is not None:
        return Path(option).expanduser().resolve()
    if os.environ.get("DOE_LOCAL_DIR"):
        return Path(os.environ["DOE_LOCAL_DIR"]).expanduser().resolve()
    return Path.home() / ".doe" / "local"


def host_dir(base: Path, suite_dir_name: str, slot: HostSlot) -> Path:
    return base / suite_dir_name / slot.name


def socket_path(base: Path, suite_dir_name: str, slot: HostSlot) -> Path:
    digest = hashlib.sha1(f"{suite_dir_name}/{slot.name}".encode()).hexdigest()[:16]
    path = base / "ts" / f"{digest}.sock"
    if len(str(path)) > _MAX_SOCKET_PATH:
        raise UserError(f"local base dir {base} is too long for task spooler sockets "
                        f"(at most {_MAX_SOCKET_PATH - 26} characters); set DOE_LOCAL_DIR to a shorter path",
                        path="local_dir")
    return path


def _job_python() -> str:
    return "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable


@dataclass
class LocalCloud:
    project: Project
    base: Path                  # every host's folder is under it
    parallel: bool = False      # --parallel: experiments at the same time
    log: Callable[[str], None] = print
    name: str = "local"

    def allocation_parts(self, slots: list[HostSlot], host_vars: dict[str, dict]) -> list[dict] | None:
        return None  # every host's part goes through its own queue

    @property
    def runs_experiments_one_at_a_time(self) -> bool:
        # On one machine, experiments running at once disturb each other's timings: one at a time unless asked.
        from doe_cli.settings import all_settings

        return not (self.parallel or all_settings(self.project).local_parallel)

    def context_vars(self, suite: str, first_repository_dir: str) -> dict[str, Any]:
        # remote_dir, doe's folder on the host, is the host's folder here (owned by this user).
        return {**hostvars.context_vars(self.project, suite, self.name, first_repository_dir),
                "ansible_user": getpass.getuser(), "remote_dir": "{{ job_queue_dir }}"}

    def assign(self, slots: list[HostSlot]) -> None:
        """Every slot is a folder of its own under the base dir: nothing to choose."""

    def check_hosts(self, suite_dir: Path, *, set_up: bool) -> dict[str, Any] | None:
        """This machine's folders need no check and no lock: the suite lock covers them."""
        return None

    def read_check(self, result: PlaybookResult, suite_dir: Path) -> None:
        """Never asked for: check_hosts leaves no check to a round."""

    def host_vars(self, suite_dir_name: str, slot: HostSlot, check_status: bool,
                  setup_roles: list[dict]) -> dict[str, Any]:
        folder = host_dir(self.base, suite_dir_name, slot)
        return {
            "job_queue_dir": str(folder),
            "job_queue_root": str(folder / "results"),
            "job_queue_ts_socket": str(socket_path(self.base, suite_dir_name, slot)),
            # Shared by every local host and suite: a build at one commit is made once (cargo_build).
            "doe_host_cache_dir": str(self.base / "cache"),
            "doe_exp": slot.exp,
            "doe_host_type": slot.host_type,
            "doe_host_idx": slot.idx,
            "doe_check_status": check_status,
            "doe_setup_roles": setup_roles,
            "public_dns_name": "localhost",
            "private_dns_name": "127.0.0.1",
        }

    def write_inventory(self, suite_dir: Path, slots: list[HostSlot], host_vars: dict[str, dict],
                        context: dict[str, Any], *, keep: bool) -> Path:
        """Write `.inventory/local.yml` (+ a copy of group_vars/) and return the inventory path."""
        (self.base / "ts").mkdir(parents=True, exist_ok=True)
        return write_suite_inventory(
            self.project, suite_dir, self.name,
            "Written by doe for the local cloud; every host is a folder on this machine.",
            {**context, "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
             "job_queue_python": _job_python(), "doe_remove_host_dir": not keep},
            slots, host_vars)

    def hosts_gone(self, host_vars: dict[str, dict]) -> bool:
        # Host folders deleted, or on a tmpfs after a reboot: their jobs are unknown to the queues then.
        return not all((Path(host["job_queue_dir"]) / "bin" / "doe_queue.py").is_file()
                       for host in host_vars.values())

    def release_hosts(self, suite_dir: Path, host_vars: dict[str, dict], *, still_locked: list[str]) -> None:
        remove_suite_leftovers(host_vars, self.base / suite_dir.name)

    def abandon_hosts(self, suite_dir: Path) -> None:
        """Nothing was taken: a new run's host folders come with its setup."""

    def teardown(self) -> None:
        """Nothing here costs money."""

    def cost(self, now: float) -> CostSoFar | None:
        return None


@dataclass(frozen=True)
class LocalKeptHosts:
    """Local hosts a run left: their folder or queue socket exists; the folders go with the cleanup."""

    kind: str = "local host(s)"
    fetches_first: bool = True

    def hosts_left(self, suite_dir: Path, hosts: dict[str, dict]) -> dict[str, dict]:
        return {name: host for name, host in hosts.items()
                if host.get("job_queue_dir") and host.get("job_queue_ts_socket")
                and (Path(host["job_queue_dir"]).exists() or Path(host["job_queue_ts_socket"]).exists())}

    def cleanup_vars(self) -> dict[str, Any]:
        return {"doe_remove_host_dir": True}

    def after_cleanup(self, suite_dir: Path, hosts: dict[str, dict]) -> None:
        base = local_base_dir_from(hosts)
        if base is not None:
            remove_suite_leftovers(hosts, base / suite_dir.name)


def local_base_dir_from(hosts: dict[str, dict]) -> Path | None:
    for host in hosts.values():
        return Path(host["job_queue_ts_socket"]).parent.parent
    return None


def remove_suite_leftovers(hosts: dict[str, dict], suite_folder: Path) -> None:
    """After the queues are shut down: the hosts' folders and sockets, and the suite folder."""
    trash = suite_folder.parent / f".trash-{suite_folder.name}-{os.getpid()}"
    for host in hosts.values():
        Path(host["job_queue_ts_socket"]).unlink(missing_ok=True)
        folder = Path(host["job_queue_dir"])
        if folder.is_dir() and not folder.is_symlink():
            trash.mkdir(exist_ok=True)
            os.rename(folder, trash / folder.name)
    try:
        suite_folder.rmdir()
    except OSError:
        pass  # not empty: a host folder the cleanup could not move
    if trash.exists():
        # Deleting thousands of job dirs takes seconds; a detached `rm` does it after doe returns.
        subprocess.Popen(["rm", "-rf", "--", str(trash)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
