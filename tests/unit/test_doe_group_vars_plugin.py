"""plugins/vars/doe_group_vars.py finds the config dir as doe does, for plain ansible-playbook runs."""

from __future__ import annotations

import importlib.util

import pytest

from doe_cli.config import TOOL_ROOT, discover


@pytest.fixture
def plugin():
    spec = importlib.util.spec_from_file_location("doe_group_vars", TOOL_ROOT / "plugins" / "vars" / "doe_group_vars.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("environment", ["none", "config_dir", "project_dir", "both"])
def test_the_plugin_and_doe_agree_on_the_config_dir(plugin, tmp_path, monkeypatch, environment):
    for folder in (tmp_path / "cfg", tmp_path / "prj" / "doe-suite-config"):
        (folder / "designs").mkdir(parents=True)
    monkeypatch.delenv("DOE_CONFIG_DIR", raising=False)
    monkeypatch.delenv("DOES_PROJECT_DIR", raising=False)
    if environment in ("config_dir", "both"):
        monkeypatch.setenv("DOE_CONFIG_DIR", str(tmp_path / "cfg"))
    if environment in ("project_dir", "both"):
        monkeypatch.setenv("DOES_PROJECT_DIR", str(tmp_path / "prj"))
    assert plugin.config_dir() == str(discover().config_dir)
