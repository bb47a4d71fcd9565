"""provenance.json: what produced a suite's results (tool, code commits, hosts)."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from doe_cli import __version__
from doe_cli.config import TOOL_ROOT
from doe_cli.fileio import write_atomic


def _tool_commit() -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(TOOL_ROOT), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def _ansible_version() -> str | None:
    try:
        from ansible.release import __version__ as version
    except ImportError:
        return None
    return version


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def write_provenance(path: Path, *, suite: str, suite_id: int, cloud: str, hosts: dict[str, dict[str, Any]],
                     repositories: dict[str, list[dict]]) -> None:
    """hosts: inventory name -> {exp, host_type, idx, facts...}; repositories: host -> checkouts."""
    content = {
        "suite": suite,
        "suite_id": suite_id,
        "cloud": cloud,
        "created": now_iso(),
        "tool": {"name": "doe", "version": __version__, "commit": _tool_commit(),
                 "python": platform.python_version(), "ansible_core": _ansible_version(),
                 "argv": [Path(sys.argv[0]).name, *sys.argv[1:]]},
        "repositories": repositories,
        "hosts": hosts,
        "invocations": [{"time": now_iso(), "argv": [Path(sys.argv[0]).name, *sys.argv[1:]]}],
    }
    write_atomic(path, json.dumps(content, indent=2, sort_keys=False) + "\n")


def record_invocation(path: Path) -> None:
    """A resume appends itself to the list of invocations."""
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    content.setdefault("invocations", []).append(
        {"time": now_iso(), "argv": [Path(sys.argv[0]).name, *sys.argv[1:]]})
    write_atomic(path, json.dumps(content, indent=2, sort_keys=False) + "\n")
