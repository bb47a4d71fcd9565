"""doe-suite's `doespy.util`: where a project's folders are."""

from __future__ import annotations

import os


def get_project_dir() -> str:
    """$DOES_PROJECT_DIR, the folder holding doe-suite-config/ (and by default doe-suite-results/)."""
    project_dir = os.environ.get("DOES_PROJECT_DIR")
    if not project_dir:
        raise ValueError("env variable: DOES_PROJECT_DIR not set")
    return project_dir


def get_config_dir() -> str:
    return os.environ.get("DOE_CONFIG_DIR") or os.path.join(get_project_dir(), "doe-suite-config")


def get_results_dir() -> str:
    """$DOES_RESULTS_DIR, else doe-suite-results/ in the project folder (where doe writes suite results)."""
    return os.environ.get("DOES_RESULTS_DIR") or os.path.join(get_project_dir(), "doe-suite-results")
