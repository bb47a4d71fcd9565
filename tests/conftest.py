"""Shared test setup: the venv's tools come first on PATH (ansible-runner looks them up there)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

VENV_BIN = Path(sys.executable).parent
os.environ["PATH"] = f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _settings_read_afresh():
    """doe reads group_vars once per command; each test is a new command (tests edit group_vars)."""
    from doe_cli.main import forget_settings

    forget_settings()
    yield
    forget_settings()
