"""Fixtures for design tests: the shipped example config, and throw-away config dirs for edge cases."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from doe_cli.config import TOOL_ROOT, Project, discover

HOST_TYPES = ("client", "server", "small")
ROLES = ("setup_base", "setup_server")


@pytest.fixture(scope="session")
def shipped() -> Project:
    """The repository's own config dir (designs/, group_vars/, ...)."""
    return discover(TOOL_ROOT, TOOL_ROOT / "doe-suite-results")


def make_config_dir(root: Path) -> Project:
    """A minimal config dir: group_vars/{all,client,server,small}, roles/{setup_base,setup_server}."""
    for name in ("all", *HOST_TYPES):
        (root / "group_vars" / name).mkdir(parents=True, exist_ok=True)
    (root / "group_vars" / "all" / "main.yml").write_text("prj_id: test\nbase_port: 9000\n")
    for role in ROLES:
        (root / "roles" / role / "tasks").mkdir(parents=True, exist_ok=True)
    (root / "designs" / "design_vars").mkdir(parents=True, exist_ok=True)
    return Project(config_dir=root, results_dir=root / "doe-suite-results")


class ConfigDir:
    """A config dir in tmp_path where a test writes designs and include files."""

    def __init__(self, root: Path) -> None:
        self.project = make_config_dir(root)

    def design(self, text: str, name: str = "t") -> str:
        (self.project.designs_dir / f"{name}.yml").write_text(textwrap.dedent(text))
        return name

    def include(self, name: str, text: str) -> None:
        (self.project.design_vars_dir / name).write_text(textwrap.dedent(text))


@pytest.fixture
def cfg(tmp_path: Path) -> ConfigDir:
    return ConfigDir(tmp_path / "config")
