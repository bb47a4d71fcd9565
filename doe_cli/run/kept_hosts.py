"""Local-cloud hosts that outlived their run (`doe run --keep`, Ctrl-C, a crash), released by `doe clean`.

A suite's hosts are known from the inventory doe stored in its results folder, so nothing beyond the
results tree is needed: every host whose folder or queue socket still exists has its jobs stopped and
its queue shut down by the same cleanup playbook a finished run uses, then its folder goes. Results
already fetched stay; a later `doe run --id last` sets new hosts up and runs what did not finish.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from doe_cli.errors import DoeError, UserError

LOCAL_INVENTORY = Path(".inventory") / "local.yml"
_SUITE_DIR = re.compile(r"^(?P<suite>.+)_(?P<id>[0-9]+)$")


@dataclass
class KeptSuite:
    suite_dir: Path
    hosts: dict[str, dict]  # inventory name -> its host vars, for hosts that still exist

    def describe(self) -> str:
        return f"{self.suite_dir.name}: {len(self.hosts)} local host(s) ({', '.join(sorted(self.hosts))})"


def find_kept(results_dir: Path, suite: str | None = None, suite_id: str | None = None) -> list[KeptSuite]:
    """Suite runs on the local cloud whose hosts (folders or queue sockets) still exist."""
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
        hosts = _existing_hosts(suite_dir / LOCAL_INVENTORY)
        if hosts:
            kept.append(KeptSuite(suite_dir=suite_dir, hosts=hosts))
    return kept


def _existing_hosts(inventory: Path) -> dict[str, dict]:
    try:
        content = yaml.safe_load(inventory.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return {}
    hosts = (content.get("all") or {}).get("hosts") or {}
    return {name: host for name, host in hosts.items()
            if isinstance(host, dict) and host.get("job_queue_dir") and host.get("job_queue_ts_socket")
            and (Path(host["job_queue_dir"]).exists() or Path(host["job_queue_ts_socket"]).exists())}


def release(kept: KeptSuite) -> None:
    """Stop the suite's jobs and queues and remove its host folders; refuses while its controller runs."""
    from doe_cli.ansible_adapter import AnsibleAdapter
    from doe_cli.run import local_cloud
    from doe_cli.run.controller import SuiteLock, ensure_ansible_on_path

    try:
        lock = SuiteLock(kept.suite_dir / ".doe" / "lock")
    except DoeError:
        raise DoeError(f"{kept.suite_dir.name}: a doe controller is running this suite; stop it first "
                       "(Ctrl-C), then clean") from None
    try:
        ensure_ansible_on_path()
        adapter = AnsibleAdapter(kept.suite_dir / ".doe" / "ansible")
        result = adapter.run("cleanup.yml", inventory=kept.suite_dir / LOCAL_INVENTORY,
                             extravars={"doe_remove_host_dir": True}, limit=",".join(sorted(kept.hosts)))
        if not result.ok:
            raise DoeError(f"{kept.suite_dir.name}: cleanup failed: {result.summary()}")
        base = local_cloud.local_base_dir_from(kept.hosts)
        if base is not None:
            local_cloud.remove_suite_leftovers(kept.hosts, base / kept.suite_dir.name)
        # The hosts are gone: a resume sets new ones up.
        (kept.suite_dir / ".doe" / "setup.done").unlink(missing_ok=True)
    finally:
        lock.release()
