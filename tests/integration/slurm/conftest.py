"""A real two-node Slurm cluster (n1, n2) on this machine, shared per test session."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.support.slurm_cluster import SlurmCluster, missing_binaries


@pytest.fixture(scope="session")
def slurm_cluster():
    missing = missing_binaries()
    if missing or os.geteuid() != 0:
        pytest.skip(f"needs root and slurm-wlm + munge (installed by .ci/run); missing: {', '.join(missing)}")
    # Short: slurmd and munged put unix sockets under it.
    folder = Path(tempfile.mkdtemp(prefix="doeslurm", dir="/tmp"))
    cluster = SlurmCluster(folder).start()
    yield cluster
    cluster.stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def short_tmp():
    """A short temp dir: task spooler sockets and munge's need short paths."""
    path = Path(tempfile.mkdtemp(prefix="doe-slurm-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)
