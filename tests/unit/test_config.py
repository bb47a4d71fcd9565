"""Config dir and results dir discovery: options, then environment, then defaults."""

from __future__ import annotations

import pytest

from doe_cli import config
from doe_cli.errors import UserError


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("DOE_CONFIG_DIR", "DOES_PROJECT_DIR", "DOES_RESULTS_DIR", "DOES_CLOUD", "DOES_SUPERETL_OUT"):
        monkeypatch.delenv(name, raising=False)


def make_config(path):
    (path / "designs").mkdir(parents=True)
    return path


def test_default_is_the_repository_with_results_inside():
    project = config.discover()
    assert project.config_dir == config.TOOL_ROOT
    assert project.results_dir == config.TOOL_ROOT / "doe-suite-results"


def test_option_beats_environment(tmp_path, monkeypatch):
    from_option = make_config(tmp_path / "a")
    monkeypatch.setenv("DOE_CONFIG_DIR", str(make_config(tmp_path / "b")))
    assert config.discover(from_option).config_dir == from_option


def test_doe_config_dir_beats_doe_suite_project_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DOE_CONFIG_DIR", str(make_config(tmp_path / "b")))
    monkeypatch.setenv("DOES_PROJECT_DIR", str(tmp_path / "prj"))
    assert config.discover().config_dir == tmp_path / "b"


def test_doe_suite_layout_puts_results_beside_the_config(tmp_path, monkeypatch):
    make_config(tmp_path / "prj" / "doe-suite-config")
    monkeypatch.setenv("DOES_PROJECT_DIR", str(tmp_path / "prj"))
    project = config.discover()
    assert project.config_dir == tmp_path / "prj" / "doe-suite-config"
    assert project.results_dir == tmp_path / "prj" / "doe-suite-results"


def test_results_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("DOES_RESULTS_DIR", str(tmp_path / "res"))
    assert config.discover(make_config(tmp_path / "c")).results_dir == tmp_path / "res"


def test_config_dir_without_designs_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no designs/ folder") as error:
        config.discover(tmp_path)
    assert error.value.exit_code == 2


def test_default_cloud_is_local_unless_does_cloud_names_one(monkeypatch):
    assert config.default_cloud() == "local"
    monkeypatch.setenv("DOES_CLOUD", "aws")
    assert config.default_cloud() == "aws"


def test_super_etl_out_is_the_option_then_the_environment_then_the_etl_default(tmp_path, monkeypatch):
    assert config.super_etl_out_dir(None) is None
    monkeypatch.setenv("DOES_SUPERETL_OUT", str(tmp_path / "env"))
    assert config.super_etl_out_dir(None) == tmp_path / "env"
    assert config.super_etl_out_dir(tmp_path / "opt") == tmp_path / "opt"
