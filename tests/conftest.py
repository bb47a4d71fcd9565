"""Shared test setup: the venv's tools come first on PATH (ansible-runner looks them up there)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
os.environ["PATH"] = f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
REPO_ROOT = Path(__file__).resolve().parent.parent
