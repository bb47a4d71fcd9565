"""sshd test hosts for the SSH cloud: three real sshd processes on loopback, shared per session."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from tests.support.sshd_hosts import SshHostPool, close_control_masters


@pytest.fixture(scope="session")
def control_path_dir():
    # Unix socket paths are limited to 108 characters: keep this short.
    path = Path(tempfile.mkdtemp(prefix="doecp", dir="/tmp"))
    yield path
    close_control_masters(path)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def ssh_hosts(control_path_dir):
    if shutil.which("unshare") is None or not Path("/usr/sbin/sshd").exists():
        pytest.skip("needs unshare and openssh-server (installed by .ci/run)")
    pool = SshHostPool(3).start()
    yield pool
    close_control_masters(control_path_dir)
    pool.close()
