"""A real two-node Slurm cluster on this machine, for the Slurm cloud's tests.

munged, slurmctld and one slurmd per node (n1, n2) from Debian's slurm-wlm, all started as root from
one throw-away folder on free ports: nothing in /etc or /run is touched, and everything is stopped
by pid (never by name: another test session may run its own cluster). No cgroups, no accounting
(`sacct` does not work here, as on many real clusters).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from tests.support.sshd_hosts import free_port

NODES = ("n1", "n2")
_BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scancel")

_CONF = """\
ClusterName=doetest
SlurmctldHost=localhost
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket={dir}/munge.sock
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
StateSaveLocation={dir}/state
SlurmdSpoolDir={dir}/spool/%n
SlurmctldPidFile={dir}/slurmctld.pid
SlurmdPidFile={dir}/slurmd-%n.pid
SlurmctldLogFile={dir}/log/slurmctld.log
SlurmdLogFile={dir}/log/slurmd-%n.log
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MinJobAge=300
ReturnToService=2
SlurmctldTimeout=10
SlurmdTimeout=10
InactiveLimit=0
KillWait=2
{nodes}
PartitionName=debug Nodes={node_list} Default=YES MaxTime=INFINITE State=UP
"""


def missing_binaries() -> list[str]:
    """The Slurm and munge programs this machine lacks (the tests are skipped then)."""
    return [name for name in _BINARIES if shutil.which(name) is None and not Path("/usr/sbin", name).exists()]


def _binary(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


@dataclass
class SlurmCluster:
    dir: Path
    node_ports: dict[str, int] = field(default_factory=dict)

    @property
    def conf(self) -> Path:
        return self.dir / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        """The environment every Slurm command of this cluster needs."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def start(self, timeout: float = 60.0) -> Self:
        for sub in ("state", "log", *(f"spool/{node}" for node in NODES)):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        key = self.dir / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        self.node_ports = {node: free_port() for node in NODES}
        nodes = "\n".join(f"NodeName={node} NodeHostname=localhost NodeAddr=127.0.0.1 Port={port} CPUs=2 RealMemory=512"
                          for node, port in self.node_ports.items())
        self.conf.write_text(_CONF.format(dir=self.dir, ctld_port=free_port(), slurmd_port=free_port(),
                                          nodes=nodes, node_list=",".join(NODES)))
        self._daemon([_binary("munged"), f"--socket={self.dir}/munge.sock", f"--key-file={key}",
                      f"--pid-file={self.dir}/munged.pid", f"--log-file={self.dir}/log/munged.log",
                      f"--seed-file={self.dir}/munge.seed", "-f", "--num-threads=4"])
        self._daemon([_binary("slurmctld"), "-f", str(self.conf)])
        for node in NODES:
            self._daemon([_binary("slurmd"), "-f", str(self.conf), "-N", node])
        self.wait_until_idle(timeout)
        return self

    def _daemon(self, argv: list[str]) -> None:
        done = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=30, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{Path(argv[0]).name} failed ({done.returncode}): {done.stderr.strip()}"
                               f"\n{self.logs()}")

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(list(argv), env=self.env, capture_output=True, text=True, timeout=60, check=check)

    def node_states(self) -> dict[str, str]:
        done = self.run("sinfo", "-h", "-N", "-o", "%N %t", check=False)
        return dict(line.split(None, 1) for line in done.stdout.splitlines() if " " in line)

    def wait_until_idle(self, timeout: float) -> None:
        """Every node up and idle (a node may first report `down` until its slurmd registered)."""
        deadline = time.monotonic() + timeout
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            states = self.node_states()
            if all(states.get(node) == "idle" for node in NODES):
                return
            time.sleep(0.2)
        raise TimeoutError(f"Slurm nodes not idle within {timeout} s: {states}\n{self.logs()}")

    def pids(self) -> dict[str, int]:
        found = {}
        for name in ("munged", "slurmctld", *(f"slurmd-{node}" for node in NODES)):
            try:
                found[name] = int((self.dir / f"{name}.pid").read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
        return found

    def kill_slurmd(self, node: str) -> None:
        """A node dies (its slurmd and the job steps it started stop answering)."""
        self._kill(self.pids().get(f"slurmd-{node}"), signal.SIGKILL)

    def ensure_idle(self, timeout: float = 120.0) -> None:
        """Every node idle again after a test that killed a node or a job: a node Slurm drained (e.g. a
        kill that took too long) is resumed, as an admin would."""
        busy = [node for node, state in self.node_states().items() if state != "idle"]
        if busy:
            self.run("scontrol", "update", f"NodeName={','.join(busy)}", "State=RESUME", check=False)
        self.wait_until_idle(timeout)

    def start_slurmd(self, node: str, timeout: float = 60.0) -> None:
        """The node comes back (ReturnToService=2 makes it usable again once its slurmd registered)."""
        self._daemon([_binary("slurmd"), "-f", str(self.conf), "-N", node])
        self.wait_until_idle(timeout)

    def stop(self) -> None:
        pids = self.pids()
        for name in (*(f"slurmd-{node}" for node in NODES), "slurmctld", "munged"):
            self._kill(pids.get(name), signal.SIGTERM)
        deadline = time.monotonic() + 10
        for pid in pids.values():
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _alive(pid):
                self._kill(pid, signal.SIGKILL)

    @staticmethod
    def _kill(pid: int | None, sig: signal.Signals) -> None:
        if pid is None:
            return
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    def logs(self) -> str:
        parts = []
        for log in sorted((self.dir / "log").glob("*.log")):
            lines = log.read_text(errors="replace").splitlines()[-15:]
            parts.append(f"== {log.name}\n" + "\n".join(lines))
        return "\n".join(parts)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False
