"""Fixtures for `doe run` integration tests: a temp config dir, a private local-cloud base dir, and a
helper that runs the real `doe` command (real ansible-playbook, real tsp)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
DOE = Path(sys.executable).parent / "doe"


def make_config_dir(root: Path, designs: dict[str, str]) -> Path:
    config = root / "config"
    (config / "designs").mkdir(parents=True)
    (config / "roles").mkdir()
    shutil.copytree(REPO / "group_vars", config / "group_vars")
    for name, text in designs.items():
        (config / "designs" / f"{name}.yml").write_text(text)
    return config


class Doe:
    """Runs `doe` against one config dir, results dir and local base dir."""

    def __init__(self, config: Path, results: Path, local: Path) -> None:
        self.config, self.results, self.local = config, results, local

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["DOE_LOCAL_DIR"] = str(self.local)
        env["PATH"] = f"{DOE.parent}{os.pathsep}{env.get('PATH', '')}"
        env.pop("DOES_PROJECT_DIR", None)
        return env

    def argv(self, *args: str) -> list[str]:
        return [str(DOE), "--config-dir", str(self.config), "--results-dir", str(self.results), *args]

    def __call__(self, *args: str, check: bool = True, timeout: float = 300,
                 answer: str = "") -> subprocess.CompletedProcess:
        # stdin is the answer to a question (doe clean asks), never the terminal pytest runs in.
        done = subprocess.run(self.argv(*args), capture_output=True, text=True, env=self.env(), input=answer,
                              timeout=timeout, check=False)
        if check and done.returncode != 0:
            raise AssertionError(f"doe {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done

    def popen(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(self.argv(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=self.env(), start_new_session=True)

    def suite_dir(self, suite: str) -> Path:
        found = sorted(self.results.glob(f"{suite}_*"))
        assert found, f"no results folder for {suite}"
        return found[-1]


def wait_for(predicate, timeout: float = 60, what: str = "condition"):
    deadline = time.monotonic() + timeout
    delay = 0.02
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(delay)
        delay = min(delay * 2, 0.25)
    raise AssertionError(f"timed out waiting for {what}")


def process_gone(pid: int) -> bool:
    """Dead or a zombie (re-parented processes may never be reaped on CI machines)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def tsp_servers_under(folder: Path) -> list[int]:
    """Pids of processes whose TS_SOCKET lies under folder (task spooler servers left running)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(v.startswith(b"TS_SOCKET=" + str(folder).encode()) for v in environ) and not process_gone(int(proc.name)):
            found.append(int(proc.name))
    return found


@pytest.fixture(scope="session")
def short_tmp():
    """A short temp dir: task spooler sockets need short paths."""
    path = Path(tempfile.mkdtemp(prefix="doe-run-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)
