"""`doe plan` / `doe clean` argument handling that needs no cloud: one-line errors, exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from doe_cli.clouds.aws.clean import CleanReport, resolve_suite_id
from doe_cli.config import Project
from doe_cli.errors import UserError
from doe_cli.main import app


@pytest.fixture
def project(tmp_path: Path) -> Project:
    (tmp_path / "designs").mkdir()
    return Project(config_dir=tmp_path, results_dir=tmp_path / "results")


def invoke(project: Project, *args: str):
    return CliRunner().invoke(app, ["--config-dir", str(project.config_dir), "--results-dir",
                                    str(project.results_dir), *args])


def test_last_resolves_to_the_newest_results_folder_of_the_suite(project):
    for name in ("s_100", "s_1700000000", "s_x", "other_1800000000"):
        (project.results_dir / name).mkdir(parents=True)
    assert resolve_suite_id(project, "s", "last") == "1700000000"
    assert resolve_suite_id(project, "s", "42") == "42"
    assert resolve_suite_id(project, "s", None) is None


@pytest.mark.parametrize(("suite", "suite_id", "expected"), [
    (None, "42", "--id: --id needs --suite"),
    ("s", "latest", "--id: expected a suite id (digits) or 'last', got 'latest'"),
    ("s", "last", "--id: no results folder of suite 's'"),
])
def test_bad_ids_are_one_line_user_errors(project, suite, suite_id, expected):
    with pytest.raises(UserError) as error:
        resolve_suite_id(project, suite, suite_id)
    assert str(error.value).startswith(expected)


def test_clean_needs_a_cloud_and_refuses_unknown_clouds(project, monkeypatch):
    monkeypatch.delenv("DOES_CLOUD", raising=False)
    missing = invoke(project, "clean")  # no default of its own: cleaning deletes
    assert missing.exit_code == 2
    assert missing.stderr.strip().splitlines() == [
        "error: --cloud: expected the cloud to clean: give --cloud (aws, local or an inventory name) or set DOES_CLOUD"]
    refused = invoke(project, "clean", "--cloud", "gcp")
    assert refused.exit_code == 2
    [line] = refused.stderr.strip().splitlines()
    assert line.startswith("error: --cloud: expected 'aws', 'local' or the name of an inventory in ")
    assert line.endswith("got 'gcp'")
    local = invoke(project, "clean", "--cloud", "local")  # no results yet: no kept hosts
    assert local.exit_code == 0 and "stopped the queues of 0 host(s) of 0 suite run(s)" in local.stderr


def test_clean_without_cloud_cleans_the_cloud_of_does_cloud(project, monkeypatch):
    monkeypatch.setenv("DOES_CLOUD", "local")
    local = invoke(project, "clean")
    assert local.exit_code == 0 and "stopped the queues of 0 host(s) of 0 suite run(s)" in local.stderr
    monkeypatch.setenv("DOES_CLOUD", "gcp")
    refused = invoke(project, "clean", "--dry-run")
    assert refused.exit_code == 2
    [line] = refused.stderr.strip().splitlines()
    assert line.startswith("error: $DOES_CLOUD: expected 'aws', 'local' or the name of an inventory in ")
    # --cloud wins over DOES_CLOUD
    assert invoke(project, "clean", "--cloud", "local").exit_code == 0


def test_clean_with_last_and_no_local_state_fails_before_any_cloud_call(project):
    result = invoke(project, "clean", "--cloud", "aws", "--suite", "s", "--id", "last")
    assert result.exit_code == 2
    assert "no results folder of suite 's'" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_report_lists_the_kinds_in_deletion_order():
    report = CleanReport(found={"vpcs": ["vpc-1"], "instances": ["i-1", "i-2"], "subnets": []}, deleted=False)
    assert report.lines() == ["instances: i-1 i-2", "vpcs: vpc-1"]
    assert report.total == 3
