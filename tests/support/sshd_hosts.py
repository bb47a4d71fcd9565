"""Real sshd test hosts on loopback, each looking like its own machine.

Every host is an `sshd -D` in a private mount namespace where /root, /tmp and /run are the host's
own folders: separate home, remote dirs and task spooler socket, so hosts on one machine do not
share a queue. Needs root (mount namespaces), which CI has.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

SSHD = "/usr/sbin/sshd"
SFTP_SERVER = "/usr/lib/openssh/sftp-server"

_SSHD_CONFIG = """\
ListenAddress {address}:{port}
HostKey {host_key}
PidFile none
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AuthorizedKeysFile {authorized_keys}
Subsystem sftp {sftp_server}
MaxSessions 50
MaxStartups 50:30:100
AllowAgentForwarding yes
"""

# Mounts that make the namespace look like a separate machine; then sshd takes over the process.
_ENTER_HOST = """\
set -e
mount -t tmpfs doe-run /run
mkdir -p /run/sshd
mount --bind "$HOST_DIR/root" /root
mount --bind "$HOST_DIR/tmp" /tmp
exec {sshd} -D -e -f "$HOST_DIR/sshd_config"
"""


def free_port(address: str = "127.0.0.1") -> int:
    # The port may be taken between close and sshd's bind; sshd then dies and start() reports it.
    with socket.socket() as sock:
        sock.bind((address, 0))
        return sock.getsockname()[1]


def _wait_for_port(address: str, port: int, process: subprocess.Popen, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd on {address}:{port} exited with {process.returncode}")
        try:
            with socket.create_connection((address, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"sshd on {address}:{port} did not answer within {timeout} s")


@dataclass
class SshHost:
    name: str
    address: str
    port: int
    dir: Path
    private_key: Path
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def root(self) -> Path:
        """The host's /root as seen from the controller."""
        return self.dir / "root"

    def inventory_vars(self) -> dict[str, object]:
        return {
            "ansible_host": self.address,
            "ansible_port": self.port,
            "ansible_user": "root",
            "ansible_ssh_private_key_file": str(self.private_key),
            "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
                                       "-o LogLevel=ERROR -o ServerAliveInterval=5 -o ServerAliveCountMax=3",
            "ansible_python_interpreter": "/usr/bin/python3",
        }

    def ssh_argv(self, *command: str) -> list[str]:
        return ["ssh", "-p", str(self.port), "-i", str(self.private_key), "-o", "BatchMode=yes",
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
                f"root@{self.address}", *command]

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """(Re)start sshd with the same port, keys and files."""
        env = {**os.environ, "HOST_DIR": str(self.dir)}
        self.process = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", _ENTER_HOST.format(sshd=SSHD)],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(self.dir / "sshd.log", "ab"),  # noqa: SIM115 - owned by the child
        )
        _wait_for_port(self.address, self.port, self.process)

    def stop(self) -> None:
        """Stop sshd and everything that runs in the host's namespace (sessions, tsp servers, jobs)."""
        if self.process is None:
            return
        namespace = _mount_namespace(self.process.pid)
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if namespace is not None:
            _kill_namespace(namespace)
        self.process = None

    def kill(self, pids: set[int], pgids: set[int]) -> None:
        """SIGKILL the given processes and process groups, but only those that run on this host: the
        hosts share this machine's process ids, so a recorded pid of a job that ended long ago may by
        now belong to another host's job (or another test's)."""
        namespace = _mount_namespace(self.process.pid) if self.process is not None else None
        if namespace is None:
            return
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or _mount_namespace(int(entry.name)) != namespace:
                continue
            pid = int(entry.name)
            try:
                if pid in pids or os.getpgid(pid) in pgids:
                    os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    def stop_sshd_only(self) -> None:
        """Drop the host off the network: sshd and its open sessions go, its queue and jobs keep running."""
        if self.process is None:
            return
        namespace = _mount_namespace(self.process.pid)
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=5)
        self.process = None
        if namespace is not None:
            _kill_namespace(namespace, only_command="sshd")


def _mount_namespace(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


def _command_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _kill_namespace(namespace: str, only_command: str | None = None) -> None:
    own = _mount_namespace(os.getpid())
    if namespace == own:
        return
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or _mount_namespace(int(entry.name)) != namespace:
            continue
        if only_command is None or _command_name(int(entry.name)) == only_command:
            try:
                os.kill(int(entry.name), signal.SIGKILL)
            except OSError:
                pass


class SshHostPool:
    """Start `count` hosts on 127.0.0.1 with one client key; stop them all in close()."""

    def __init__(self, count: int, base_dir: Path | None = None) -> None:
        # Not under /tmp: each host bind-mounts its own /tmp over the real one.
        self.base_dir = Path(base_dir or tempfile.mkdtemp(prefix="doe-sshd-", dir="/var/tmp"))
        self.key = self.base_dir / "client_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.key)], check=True)
        public_key = (self.base_dir / "client_key.pub").read_text()
        self.hosts: list[SshHost] = []
        for index in range(count):
            host_dir = self.base_dir / f"host{index}"
            for sub in ("root/.ssh", "tmp"):
                (host_dir / sub).mkdir(parents=True, exist_ok=True)
            (host_dir / "tmp").chmod(0o1777)
            authorized = host_dir / "authorized_keys"
            authorized.write_text(public_key)
            host_key = host_dir / "host_key"
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True)
            port = free_port()
            (host_dir / "sshd_config").write_text(_SSHD_CONFIG.format(
                address="127.0.0.1", port=port, host_key=host_key, authorized_keys=authorized,
                sftp_server=SFTP_SERVER))
            self.hosts.append(SshHost(name=f"host{index}", address="127.0.0.1", port=port, dir=host_dir,
                                      private_key=self.key))

    def start(self) -> SshHostPool:
        for host in self.hosts:
            host.start()
        return self

    def close(self) -> None:
        for host in self.hosts:
            host.stop()
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


def close_control_masters(control_path_dir: Path) -> None:
    """Close Ansible's ControlPersist masters; a master whose peer vanished lingers for hours."""
    for control_socket in Path(control_path_dir).glob("*"):
        subprocess.run(["ssh", "-o", f"ControlPath={control_socket}", "-O", "exit", "doe-test-host"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, timeout=10)
