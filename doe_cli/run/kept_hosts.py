"""Hosts that outlived their run (`doe run --keep`, Ctrl-C, a crash), released by `doe clean`.

A suite's hosts are known from the inventory doe stored in its results folder, so nothing beyond the
results tree is needed. The same cleanup playbook a finished run uses stops their jobs and shuts their
queues down; on the local cloud the host folders then go, on SSH hosts the shutdown releases the
suite's host lock and the files stay. Results already fetched stay; a later `doe run --id last` sets
the hosts up again and runs what did not finish.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from doe_cli.errors import DoeError, UserError

LOCAL = "local"
SETUP_MARKER = Path(".doe") / "setup.done"
_SUITE_DIR = re.compile(r"^(?P<suite>.+)_(?P<id>[0-9]+)$")


@dataclass
class KeptSuite:
    suite_dir: Path
    cloud: str
    hosts: dict[str, dict]  # inventory name -> its host vars

    @property
    def inventory(self) -> Path:
        return self.suite_dir / ".inventory" / f"{self.cloud}.yml"

    def describe(self) -> str:
        kind = "local host(s)" if self.cloud == LOCAL else f"host(s) of inventory {self.cloud}"
        return f"{self.suite_dir.name}: {len(self.hosts)} {kind} ({', '.join(sorted(self.hosts))})"


def find_kept(results_dir: Path, cloud: str, suite: str | None = None, suite_id: str | None = None) -> list[KeptSuite]:
    """Suite runs on `cloud` (local, or an SSH inventory's name) whose hosts are still set up: local
    hosts whose folder or queue socket exists; SSH hosts of a run that did not clean up after itself."""
    if suite_id is not None and suite is None:
        raise UserError("--id needs --suite", path="--id")
    if suite_id == "last":
        ids = sorted(int(m["id"]) for p in results_dir.glob(f"{suite}_*") if (m := _SUITE_DIR.match(p.name))
                     and m["suite"] == suite and p.is_dir())
        if not ids:
            raise UserError(f"no results folder of suite '{suite}' in {results_dir}", path="--id")
        suite_id = str(ids[-1])
    elif suite_id is not None and not suite_id.isdigit():
        raise UserError(f"expected a suite id (digits) or 'last', got '{suite_id}'", path="--id")
    kept = []
    for suite_dir in sorted(results_dir.iterdir()) if results_dir.is_dir() else []:
        match = _SUITE_DIR.match(suite_dir.name)
        if not match or (suite is not None and match["suite"] != suite) or \
                (suite_id is not None and match["id"] != suite_id):
            continue
        entry = KeptSuite(suite_dir=suite_dir, cloud=cloud, hosts={})
        hosts = _inventory_hosts(entry.inventory)
        if cloud == LOCAL:
            entry.hosts = {name: host for name, host in hosts.items()
                           if host.get("job_queue_dir") and host.get("job_queue_ts_socket")
                           and (Path(host["job_queue_dir"]).exists() or Path(host["job_queue_ts_socket"]).exists())}
        elif (suite_dir / SETUP_MARKER).exists():  # a run that cleaned up removed the marker
            entry.hosts = hosts
        if entry.hosts:
            kept.append(entry)
    return kept


def _inventory_hosts(inventory: Path) -> dict[str, dict]:
    try:
        content = yaml.safe_load(inventory.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return {}
    hosts = (content.get("all") or {}).get("hosts") or {}
    return {name: host for name, host in hosts.items() if isinstance(host, dict)}


def release(kept: KeptSuite) -> None:
    """Stop the suite's jobs and queues (local: remove the host folders; SSH: release the host locks);
    refuses while the suite's controller runs."""
    from doe_cli.ansible_adapter import AnsibleAdapter
    from doe_cli.run import local_cloud
    from doe_cli.run.controller import SuiteLock, _control_path_dir, ensure_ansible_on_path

    try:
        lock = SuiteLock(kept.suite_dir / ".doe" / "lock")
    except DoeError:
        raise DoeError(f"{kept.suite_dir.name}: a doe controller is running this suite; stop it first "
                       "(Ctrl-C), then clean") from None
    try:
        ensure_ansible_on_path()
        adapter = AnsibleAdapter(kept.suite_dir / ".doe" / "ansible",
                                 control_path_dir=_control_path_dir(kept.suite_dir))
        result = adapter.run("cleanup.yml", inventory=kept.inventory, limit=",".join(sorted(kept.hosts)),
                             extravars={"doe_remove_host_dir": kept.cloud == LOCAL})
        if not result.ok:
            raise DoeError(f"{kept.suite_dir.name}: cleanup failed: {result.summary()}")
        if kept.cloud == LOCAL:
            base = local_cloud.local_base_dir_from(kept.hosts)
            if base is not None:
                local_cloud.remove_suite_leftovers(kept.hosts, base / kept.suite_dir.name)
        # The hosts are released: a resume sets them up again.
        (kept.suite_dir / SETUP_MARKER).unlink(missing_ok=True)
    finally:
        lock.release()
