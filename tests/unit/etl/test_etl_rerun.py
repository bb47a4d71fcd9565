"""A suite ETL re-run with nothing new does no work; any change to what the outcome depends on is noticed."""

from __future__ import annotations

import os
import shutil

import pytest
import yaml

import etl.incremental
from etl import cachecodec, manifest, runner, safecache
from etl.api import run_suite_etl
from tests.unit.etl.conftest import STEPS
from tests.unit.etl.tree import age_tree

PIPELINES = {
    "p": {"experiments": "*", "extractors": STEPS, "loaders": {"CsvSummaryLoader": {}}},
    "q": {
        "experiments": ["alpha"],
        "extractors": STEPS,
        "transformers": [{"name": "RepAggTransformer", "data_columns": ["lat"]}],
        "loaders": {"CsvSummaryLoader": {}},
    },
}
JOB = ("alpha", "run_1", "rep_0", "client", "host_0")


def written(suite_dir, pipeline="p"):
    """Identity of an output file: a rewrite (temp + rename) changes it."""
    found = (suite_dir / "etl_results" / pipeline / f"{pipeline}.csv").stat()
    return found.st_ino, found.st_mtime_ns


def output(suite_dir, pipeline="p"):
    return (suite_dir / "etl_results" / pipeline / f"{pipeline}.csv").read_text()


@pytest.fixture
def done_suite(make_suite):
    """An old result tree whose ETL ran once."""
    suite_dir = make_suite(PIPELINES)
    age_tree(suite_dir)
    first = run_suite_etl(suite_dir)
    assert first.ok and first.by_pipeline()["p"].jobs_read == 6
    return suite_dir


def test_a_rerun_with_nothing_new_rewrites_nothing_and_reports_the_same(done_suite):
    before = {name: (written(done_suite, name), output(done_suite, name)) for name in PIPELINES}
    lines = [line.split(" in ")[0] for line in run_suite_etl(done_suite).lines()]
    again = run_suite_etl(done_suite)
    assert again.ok and again.by_pipeline()["p"].jobs_read == 0
    assert {name: (written(done_suite, name), output(done_suite, name)) for name in PIPELINES} == before
    assert [line.split(" in ")[0] for line in again.lines()] == lines


def edit_in_place(suite_dir):
    changed = suite_dir.joinpath(*JOB, "results.csv")
    stat = changed.stat()
    changed.write_text(changed.read_text().replace("read,20", "read,99"))  # same size: mtime must tell
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))


def add_job(suite_dir):
    shutil.copytree(suite_dir / "beta" / "run_0", suite_dir / "beta" / "run_1")


def add_run_to_aggregated_experiment(suite_dir):
    shutil.copytree(suite_dir / "alpha" / "run_1", suite_dir / "alpha" / "run_2")


def delete_job(suite_dir):
    shutil.rmtree(suite_dir.joinpath(*JOB[:3]))


def delete_run(suite_dir):
    shutil.rmtree(suite_dir.joinpath(*JOB[:2]))


def add_file_to_job(suite_dir):
    suite_dir.joinpath(*JOB, "more.csv").write_text("op,lat,ok\nscan,7,yes\n")


def config_rewritten_beside_a_new_file(suite_dir):
    """The job folder is unchanged, its rep's config.json is not (and the rep folder's mtime tells)."""
    rep_dir = suite_dir.joinpath(*JOB[:3])
    config = rep_dir / "config.json"
    config.write_text(config.read_text().replace('"seed": 7', '"seed": 8888'))
    (rep_dir / "notes.txt").write_text("re-run\n")


def empty_stderr_gets_text(suite_dir):
    stderr = suite_dir.joinpath(*JOB, "stderr.log")
    stat = stderr.stat()
    stderr.write_text("boom\n")
    os.utime(stderr, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))


@pytest.mark.parametrize(
    ("change", "expect"),
    [
        (edit_in_place, lambda report, text: ",99," in text and report.jobs_read == 1),
        (add_job, lambda report, text: report.jobs == 8 and report.jobs_read == 2),
        (add_run_to_aggregated_experiment, lambda report, text: report.jobs == 8 and report.jobs_read == 2),
        (delete_job, lambda report, text: report.jobs == 5 and report.rows == 10),
        (delete_run, lambda report, text: report.jobs == 4 and ",20," not in text),
        (add_file_to_job, lambda report, text: report.rows == 13 and ",7," in text),
        (config_rewritten_beside_a_new_file, lambda report, text: report.jobs_read == 1 and "8888" in text),
    ],
    ids=[
        "file-edited-in-place", "new-job", "new-run", "deleted-job", "deleted-run", "file-added-to-job",
        "config-rewritten",
    ],
)
def test_a_change_to_the_results_is_noticed(done_suite, change, expect):
    assert run_suite_etl(done_suite).by_pipeline()["p"].jobs_read == 0
    before = written(done_suite)
    change(done_suite)
    report = run_suite_etl(done_suite)
    assert report.ok, report.lines()
    assert written(done_suite) != before
    assert expect(report.by_pipeline()["p"], output(done_suite))
    # What the re-run took from its caches gives the outputs an ETL from scratch writes.
    outputs = {name: output(done_suite, name) for name in PIPELINES}
    shutil.rmtree(done_suite / "etl_results" / ".cache")
    assert run_suite_etl(done_suite).ok
    assert {name: output(done_suite, name) for name in PIPELINES} == outputs


def test_stderr_written_in_place_fails_the_rerun(done_suite):
    empty_stderr_gets_text(done_suite)
    report = run_suite_etl(done_suite)
    assert report.by_pipeline()["p"].status == "error" and "boom" in report.by_pipeline()["p"].message
    # Nothing is recorded for a failed ETL: the error stays until the file is fixed.
    assert run_suite_etl(done_suite).by_pipeline()["p"].status == "error"


def test_a_removed_or_replaced_output_is_written_again(done_suite):
    target = done_suite / "etl_results" / "p" / "p.csv"
    expected = target.read_text()
    target.unlink()
    assert run_suite_etl(done_suite).ok and target.read_text() == expected
    age_tree(done_suite / "etl_results")
    target.write_text("edited by hand\n")
    assert run_suite_etl(done_suite).ok and target.read_text() == expected


def test_a_changed_design_or_pipeline_selection_is_not_answered_from_the_record(done_suite):
    design_file = done_suite / "suite_design.yml"
    design = yaml.safe_load(design_file.read_text())
    grouped = {"name": "GroupByAggTransformer", "groupby_columns": ["op"], "data_columns": ["lat"]}
    design["$ETL$"]["q"]["transformers"] = [grouped]
    design_file.write_text(yaml.safe_dump(design, sort_keys=False))
    report = run_suite_etl(done_suite)
    assert report.ok, report.lines()
    assert len(output(done_suite, "q").splitlines()) == 3  # header + one row per op
    before = written(done_suite, "q")
    only_p = run_suite_etl(done_suite, pipelines=["p"])
    assert [o.pipeline for o in only_p.outcomes] == ["p"]
    assert written(done_suite, "q") == before


def test_an_experiment_without_results_is_run_once_its_results_arrive(make_suite, tmp_path):
    suite_dir = make_suite(PIPELINES)
    shutil.move(suite_dir / "beta", tmp_path / "beta")
    age_tree(suite_dir)
    first = run_suite_etl(suite_dir)
    assert first.ok and first.by_pipeline()["p"].jobs == 4
    before = written(suite_dir)
    again = run_suite_etl(suite_dir)
    assert again.by_pipeline()["p"].warnings == first.by_pipeline()["p"].warnings
    assert written(suite_dir) == before
    shutil.move(tmp_path / "beta", suite_dir / "beta")
    assert run_suite_etl(suite_dir).by_pipeline()["p"].jobs == 6


def test_a_cleaned_suite_is_extracted_again(done_suite):
    shutil.rmtree(done_suite / "etl_results" / ".cache")
    assert run_suite_etl(done_suite).by_pipeline()["p"].jobs_read == 6


def test_a_damaged_or_foreign_manifest_is_ignored_and_replaced(done_suite):
    expected = output(done_suite)
    (manifest_file,) = (done_suite / "etl_results" / ".cache").glob("manifest-*.cache")
    content, blobs = safecache.read_json(manifest_file, manifest._KIND)
    del content["head"]  # same signature, another layout (signed with this user's key: it passes the check)
    safecache.write(manifest_file, manifest._KIND, content, blobs)
    assert run_suite_etl(done_suite).ok and output(done_suite) == expected
    manifest_file.write_bytes(b"not a cache")
    assert run_suite_etl(done_suite).ok and output(done_suite) == expected
    before = written(done_suite)
    assert run_suite_etl(done_suite).by_pipeline()["p"].jobs_read == 0
    assert written(done_suite) == before  # a new manifest was written and is used


def test_the_runner_keeps_the_aggregation_state_and_starts_over_from_a_damaged_one(done_suite, monkeypatch):
    given_states = []
    aggregate = etl.incremental.aggregate

    def recording(frame, keys, what, full, lineage, previous_state):
        given_states.append(previous_state)
        return aggregate(frame, keys, what, full, lineage, previous_state)

    monkeypatch.setattr(etl.incremental, "aggregate", recording)
    (state_file,) = (done_suite / "etl_results" / ".cache").glob("transform-*.cache")
    saved = cachecodec.load(state_file, runner._STATE_KIND)
    add_run_to_aggregated_experiment(done_suite)
    assert run_suite_etl(done_suite).ok
    assert given_states[-1]["ids"].tolist() == saved["ids"].tolist()  # what the last run saved
    state_file.write_bytes(b"not a cache")
    shutil.copytree(done_suite / "alpha" / "run_1", done_suite / "alpha" / "run_3")
    assert run_suite_etl(done_suite).ok
    assert given_states[-1] is None
    assert cachecodec.load(state_file, runner._STATE_KIND)["ids"].size > saved["ids"].size  # saved again
    warm = output(done_suite, "q")
    shutil.rmtree(done_suite / "etl_results" / ".cache")
    assert run_suite_etl(done_suite).ok and output(done_suite, "q") == warm
