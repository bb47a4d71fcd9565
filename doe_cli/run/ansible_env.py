"""How a suite run starts Ansible: ansible-playbook on PATH, the folder of its SSH control sockets,
its adapter, and the names of the playbook tasks whose results doe reads (playbooks/ keep them)."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

from doe_cli.ansible_adapter import AnsibleAdapter, PlaybookResult
from doe_cli.config import Project

STATUS_TASK = "Stop leftovers of completed jobs and read the job states"
CLEANUP_TASK = "Stop every running job of this suite and the task spooler server"
FETCH_TASK = "Fetch the newly finished job dirs in one transfer into the staging dir"
ENQUEUE_TASKS = ("Enqueue this host's jobs",)
SETUP_FACTS_TASK = "Make the queue ready and record the host's hardware and kernel"
SETUP_GIT_TASK = "Check out the code repositories at their versions"
SETUP_HOST_VARS_TASK = "Report the host's variables rendered in its context"


def ensure_ansible_on_path() -> None:
    """ansible-runner finds ansible-playbook on this process's PATH; `doe` may run without the venv
    activated, so its own bin/ (where ansible-playbook is installed next to it) goes first."""
    if shutil.which("ansible-playbook") is None:
        os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


def control_path_dir(suite_dir: Path, create: bool = True) -> Path:
    """A short per-run folder for SSH control sockets (Unix socket paths are limited to 108 bytes)."""
    digest = hashlib.sha1(str(suite_dir).encode()).hexdigest()[:10]
    path = Path(tempfile.gettempdir()) / f"doe-cp-{digest}"
    if create:
        path.mkdir(mode=0o700, exist_ok=True)
    return path


def suite_adapter(project: Project, suite_dir: Path) -> AnsibleAdapter:
    """The adapter of a suite run's playbooks: its work folders in the suite's .doe/ansible."""
    ensure_ansible_on_path()
    return AnsibleAdapter(suite_dir / ".doe" / "ansible", roles_paths=[project.roles_dir],
                          control_path_dir=control_path_dir(suite_dir), config_dir=project.config_dir)


def stdout_hint(result: PlaybookResult) -> str:
    """When a playbook fails before it starts (syntax, arguments), only its stdout says why."""
    if result.failures() or result.errors() or result.data_dir is None:
        return ""
    for stdout in result.data_dir.glob("artifacts/*/stdout"):
        lines = [line.strip() for line in stdout.read_text(errors="replace").splitlines() if "ERROR" in line]
        if lines:
            return f" ({lines[0][:300]})"
    return ""
