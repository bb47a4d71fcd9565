"""etl.layout: the one place that names and parses suite folders and job folders."""

from __future__ import annotations

import pytest

from doe_cli.clouds.aws.clean import resolve_suite_id as clean_suite_id
from doe_cli.config import Project
from doe_cli.run.suite_id import resolve_suite_id
from etl.api import resolve_suite_dir
from etl.layout import (
    job_dir,
    job_key_text,
    last_suite_id,
    parse_job_key,
    parse_result_folder,
    parse_suite_folder,
    suite_folder_name,
    suite_runs,
)


@pytest.fixture
def results(tmp_path):
    for name in ("a_5", "a_12", "a_b_99", "a_x", "b_7", "a_"):
        (tmp_path / name).mkdir()
    (tmp_path / "a_40").write_text("a file, not a folder")
    return tmp_path


def test_suite_folder_names_round_trip():
    assert parse_suite_folder(suite_folder_name("my_suite", 1700000000)) == ("my_suite", 1700000000)
    assert parse_suite_folder("my_suite_v2") is None
    assert parse_suite_folder("_12") is None


def test_a_suite_whose_name_extends_another_is_not_counted_as_it(results):
    assert [(run.suite, run.suite_id) for run in suite_runs(results, "a")] == [("a", 5), ("a", 12)]
    assert last_suite_id(results, "a") == 12
    assert last_suite_id(results, "a_b") == 99
    assert last_suite_id(results, "c") is None


def test_every_reader_of_last_agrees(results):
    project = Project(config_dir=results, results_dir=results)
    assert resolve_suite_id(results, "a", "last") == (12, False)
    assert clean_suite_id(project, "a", "last") == "12"
    assert resolve_suite_dir(results, "a", "last") == results / "a_12"


def test_all_runs_oldest_first(results):
    assert [run.folder.name for run in suite_runs(results)] == ["a_5", "b_7", "a_12", "a_b_99"]


def test_the_etl_also_reads_folders_renamed_by_hand():
    assert parse_result_folder("a_x") == ("a", "x")
    assert parse_result_folder("a_12") == ("a", 12)
    assert parse_result_folder("nounderscore") is None


@pytest.mark.parametrize("key", [(0, 0), (3, 1), (12, 40)])
def test_job_keys_round_trip(key):
    assert parse_job_key(job_key_text(key)) == key
    assert parse_job_key(job_dir("exp_1", key)) == key
    assert job_dir("exp_1", key) == f"exp_1/run_{key[0]}/rep_{key[1]}"
