"""run_suite_etl on small trees: row shape, golden outputs, the one-extractor rule, ordering, errors."""

from __future__ import annotations

import os
import shutil

import pandas as pd
import pytest

from etl.api import clean_suite_etl, resolve_suite_dir, run_suite_etl
from etl.errors import EtlConfigError
from tests.unit.etl.conftest import STEPS, job_files
from tests.unit.etl.golden import assert_golden
from tests.unit.etl.tree import age_tree

REPAGG = {"name": "RepAggTransformer", "data_columns": ["lat"]}


def output(suite_dir, pipeline, ext="csv"):
    return (suite_dir / "etl_results" / pipeline / f"{pipeline}.{ext}").read_text()


def test_raw_rows_match_golden(make_suite):
    suite_dir = make_suite(
        {"raw": {"experiments": "*", "extractors": STEPS, "loaders": {"CsvSummaryLoader": {}}}}
    )
    report = run_suite_etl(suite_dir)
    assert report.ok, report.lines()
    assert report.by_pipeline()["raw"].rows == 12
    assert_golden("raw.csv", output(suite_dir, "raw"))
    frame = pd.read_csv(suite_dir / "etl_results" / "raw" / "raw.csv", index_col=0)
    assert list(frame.columns[:9]) == [
        "suite_name",
        "suite_id",
        "exp_name",
        "run",
        "rep",
        "host_type",
        "host_idx",
        "factor_columns",
        "source_file",
    ]
    assert frame.loc[0, "factor_columns"] == "['size', 'opt.mode']"
    # the run config in doe-suite's order (json_normalize): plain values first, then each mapping flattened
    assert list(frame.columns[9:13]) == ["size", "$CMD$.client", "opt.mode", "opt.seed"]
    assert frame["lat"].dtype.kind in "if"


def test_repagg_matches_golden_and_keeps_run_order(make_suite):
    suite_dir = make_suite(
        {
            "agg": {
                "experiments": ["alpha"],
                "extractors": STEPS,
                "transformers": [REPAGG],
                "loaders": {"CsvSummaryLoader": {}},
            }
        }
    )
    assert run_suite_etl(suite_dir).ok
    assert_golden("repagg.csv", output(suite_dir, "agg"))
    frame = pd.read_csv(suite_dir / "etl_results" / "agg" / "agg.csv", index_col=0)
    assert list(zip(frame["run"], frame["op"])) == [(0, "read"), (0, "write"), (1, "read"), (1, "write")]
    assert list(frame["lat_count"]) == [2, 2, 2, 2]
    assert "rep" not in frame.columns


def test_a_jobs_own_runtime_info_is_its_file_and_does_record_is_never_extracted_by_other_steps(make_suite):
    def files(*args):
        return {**job_files(*args), "runtime_info.yaml": "wall_time: 0:01.50\nmax_rss: 4096\n"}

    yaml_steps = {**STEPS, "YamlExtractor": {"file_regex": [r".*\.yaml$"]}}
    suite_dir = make_suite(
        {
            "own": {"experiments": ["beta"], "extractors": yaml_steps, "loaders": {"CsvSummaryLoader": {}}},
            "unclaimed": {"experiments": ["beta"], "extractors": STEPS},
        },
        files=files,
    )
    report = run_suite_etl(suite_dir).by_pipeline()
    frame = pd.read_csv(suite_dir / "etl_results" / "own" / "own.csv", index_col=0)
    from_yaml = frame[frame["source_file"] == "runtime_info.yaml"]
    assert len(from_yaml) == 2 and list(from_yaml["max_rss"]) == [4096, 4096]  # one row per job, its own values
    assert set(frame["source_file"]) == {"results.csv", "runtime_info.yaml"}  # doe's hidden record: never a row
    assert report["unclaimed"].status == "error" and "no extractor matches these file names: runtime_info.yaml (2 files" in report["unclaimed"].message


def test_runtime_info_is_skipped_unless_claimed_and_then_is_data(make_suite):
    claimed = {**STEPS, "RuntimeInfoExtractor": {}}
    suite_dir = make_suite(
        {
            "plain": {"experiments": ["beta"], "extractors": STEPS, "loaders": {"CsvSummaryLoader": {}}},
            "timed": {
                "experiments": ["beta"],
                "extractors": claimed,
                "transformers": [REPAGG],
                "loaders": {"CsvSummaryLoader": {}},
            },
        }
    )
    assert run_suite_etl(suite_dir).ok
    assert "runtime." not in output(suite_dir, "plain")
    timed = pd.read_csv(suite_dir / "etl_results" / "timed" / "timed.csv", index_col=0)
    assert len(timed) == 2  # runtime columns are aggregated, never group keys
    assert list(timed["runtime.wall_seconds_mean"]) == [1.5, 1.5]
    assert "runtime.status" not in timed.columns
    assert_golden("runtime_repagg.csv", output(suite_dir, "timed"))


def test_a_file_matching_no_extractor_is_an_error_naming_file_and_candidates(make_suite):
    def files(*args):
        return {**job_files(*args), "notes.txt": "x"}

    suite_dir = make_suite({"p": {"experiments": ["beta"], "extractors": STEPS}}, files=files)
    outcome = run_suite_etl(suite_dir).by_pipeline()["p"]
    assert outcome.status == "error"
    assert "no extractor matches these file names: notes.txt (2 files, e.g. beta/run_0/rep_0/client/host_0/notes.txt)" \
        in outcome.message
    assert "CsvExtractor" in outcome.message and "pipeline p" in outcome.message
    assert "\n" not in outcome.message


def test_a_file_matching_two_extractors_is_an_error(make_suite):
    steps = {**STEPS, "JsonExtractor": {"file_regex": [r".*\.csv$"]}}
    suite_dir = make_suite({"p": {"experiments": ["beta"], "extractors": steps}})
    outcome = run_suite_etl(suite_dir).by_pipeline()["p"]
    assert outcome.status == "error"
    assert "results.csv matches multiple extractors: CsvExtractor" in outcome.message
    assert "JsonExtractor" in outcome.message


def test_glob_file_regex_is_accepted(make_suite):
    steps = {"CsvExtractor": {}, "IgnoreExtractor": {"file_regex": ["*.log"]}}
    suite_dir = make_suite(
        {"p": {"experiments": ["beta"], "extractors": steps, "loaders": {"CsvSummaryLoader": {}}}}
    )
    report = run_suite_etl(suite_dir)
    assert report.ok, report.lines()
    assert any("read as a glob" in note for note in report.by_pipeline()["p"].warnings)


def test_order_is_numeric_by_run_rep_and_host(make_suite):
    """Also: host types and hosts the design does not name (server, 3 clients instead of 1) are found."""
    suite_dir = make_suite(
        {"p": {"experiments": ["beta"], "extractors": STEPS, "loaders": {"CsvSummaryLoader": {}}}},
        reps=1,
        hosts={"server": 1, "client": 3},
    )
    beta = suite_dir / "beta"
    for n in (2, 10):  # run_10 sorts after run_2 only numerically
        shutil.copytree(beta / "run_0", beta / f"run_{n}")
    shutil.copytree(
        beta / "run_0" / "rep_0" / "client" / "host_2", beta / "run_0" / "rep_0" / "client" / "host_10"
    )
    assert run_suite_etl(suite_dir).ok
    frame = pd.read_csv(suite_dir / "etl_results" / "p" / "p.csv", index_col=0)
    keys = list(dict.fromkeys(zip(frame["run"], frame["host_type"], frame["host_idx"])))
    assert keys == [
        (0, "client", 0),
        (0, "client", 1),
        (0, "client", 2),
        (0, "client", 10),
        (0, "server", 0),
        *[
            (run, ht, i)
            for run in (2, 10)
            for ht, i in [("client", 0), ("client", 1), ("client", 2), ("server", 0)]
        ],
    ]


def test_stderr_output_fails_the_pipeline_unless_warning_mode(make_suite):
    def files(exp, run, rep, host_type, idx):
        produced = job_files(exp, run, rep, host_type, idx)
        if run == 0 and rep == 1:
            produced["stderr.log"] = "Traceback (most recent call last):\n  boom\nValueError: bad\nmore\n"
        return produced

    warn = {**STEPS, "ErrorExtractor": {"on_output": "warning"}}
    suite_dir = make_suite(
        {
            "strict": {"experiments": ["beta"], "extractors": STEPS, "loaders": {"CsvSummaryLoader": {}}},
            "lenient": {"experiments": ["beta"], "extractors": warn, "loaders": {"CsvSummaryLoader": {}}},
        },
        files=files,
    )
    report = run_suite_etl(suite_dir, error_log=True)
    strict, lenient = report.by_pipeline()["strict"], report.by_pipeline()["lenient"]
    assert strict.status == "error"
    assert "rep_1/client/host_0/stderr.log is not empty: Traceback" in strict.message
    assert "ValueError: bad" in strict.message and "more" not in strict.message
    assert lenient.status == "ok" and any("stderr.log is not empty" in note for note in lenient.warnings)
    assert "strict" in (suite_dir / "ETL_ERROR.log").read_text()


def test_one_failing_pipeline_does_not_stop_others_and_missing_results_are_skipped(make_suite):
    suite_dir = make_suite(
        {
            "bad": {
                "experiments": ["alpha"],
                "extractors": STEPS,
                "transformers": [{"name": "RepAggTransformer", "data_columns": ["nope"]}],
                "loaders": {"CsvSummaryLoader": {}},
            },
            "badconfig": {"experiments": ["alpha"], "extractors": {"NoSuchExtractor": {}}},
            "good": {"experiments": ["alpha"], "extractors": STEPS, "loaders": {"CsvSummaryLoader": {}}},
            "later": {"experiments": ["beta"], "extractors": STEPS, "loaders": {"CsvSummaryLoader": {}}},
        }
    )
    shutil.rmtree(suite_dir / "beta")
    report = run_suite_etl(suite_dir)
    statuses = {o.pipeline: o.status for o in report.outcomes}
    assert statuses == {"bad": "error", "badconfig": "error", "good": "ok", "later": "skipped"}
    bad = report.by_pipeline()["bad"].message
    assert bad.startswith("pipeline bad, step $ETL$.bad.transformers[0]") and "nope" in bad
    assert "unknown extractor NoSuchExtractor" in report.by_pipeline()["badconfig"].message
    assert (suite_dir / "etl_results" / "good" / "good.csv").is_file()
    assert not report.ok


def test_missing_design_and_unknown_pipeline_are_config_errors_not_exceptions(make_suite, tmp_path):
    report = run_suite_etl(tmp_path / "nothing_1")
    assert report.config_error is not None and "suite_design.yml" in str(report.config_error)
    suite_dir = make_suite({"p": {"experiments": "*", "extractors": STEPS}})
    report = run_suite_etl(suite_dir, pipelines=["q"])
    assert "unknown pipelines ['q']" in str(report.config_error)


def test_pipeline_filter_and_clean(make_suite):
    loaders = {"CsvSummaryLoader": {}}
    suite_dir = make_suite(
        {
            "p": {"experiments": ["beta"], "extractors": STEPS, "loaders": loaders},
            "q": {"experiments": ["beta"], "extractors": STEPS, "loaders": loaders},
        }
    )
    age_tree(suite_dir)
    report = run_suite_etl(suite_dir, pipelines=["q"])
    assert [o.pipeline for o in report.outcomes] == ["q"]
    assert (suite_dir / "etl_results" / ".cache").is_dir()
    removed = clean_suite_etl(suite_dir)
    assert {p.name for p in removed} == {"q", ".cache"}
    assert sorted(p.name for p in (suite_dir / "etl_results").iterdir()) == [".gitkeep", ".lock"]


def test_cache_reads_only_new_or_changed_jobs(make_suite):
    suite_dir = make_suite(
        {"p": {"experiments": "*", "extractors": STEPS, "loaders": {"CsvSummaryLoader": {}}}}
    )
    age_tree(suite_dir)
    first = run_suite_etl(suite_dir).by_pipeline()["p"]
    assert (first.jobs, first.jobs_read) == (6, 6)
    before = output(suite_dir, "p")
    again = run_suite_etl(suite_dir).by_pipeline()["p"]
    assert (again.jobs_read, output(suite_dir, "p")) == (0, before)

    changed = suite_dir / "alpha" / "run_1" / "rep_0" / "client" / "host_0" / "results.csv"
    stat = changed.stat()
    changed.write_text(changed.read_text().replace("read,20", "read,99"))  # same size: mtime must tell
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    shutil.copytree(suite_dir / "beta" / "run_0", suite_dir / "beta" / "run_1")
    third = run_suite_etl(suite_dir).by_pipeline()["p"]
    assert (third.jobs, third.jobs_read) == (8, 3)
    frame = pd.read_csv(suite_dir / "etl_results" / "p" / "p.csv", index_col=0)
    assert 99 in set(frame["lat"]) and 20 not in set(frame["lat"])

    job = suite_dir / "beta" / "run_0" / "rep_1" / "client" / "host_0"
    (job / "more.csv").write_text("op,lat,ok\nscan,7,yes\n")  # a file added to a cached job folder
    fourth = run_suite_etl(suite_dir).by_pipeline()["p"]
    assert fourth.jobs_read >= 1 and fourth.rows == 17

    shutil.rmtree(suite_dir / "etl_results" / ".cache")
    assert run_suite_etl(suite_dir).by_pipeline()["p"].jobs_read == 8


def test_resolve_suite_dir(make_suite, tmp_path):
    make_suite({}, suite_id=5)
    make_suite({}, suite_id=40)
    results = tmp_path / "results"
    assert resolve_suite_dir(results, "demo", "last").name == "demo_40"
    assert resolve_suite_dir(results, "demo", 5).name == "demo_5"
    with pytest.raises(EtlConfigError, match="no results for suite 'other'"):
        resolve_suite_dir(results, "other", "last")


def test_cached_and_uncached_runs_give_the_same_output(make_suite):
    suite_dir = make_suite(
        {"p": {"experiments": "*", "extractors": STEPS, "loaders": {"CsvSummaryLoader": {}}}}
    )
    age_tree(suite_dir)
    assert run_suite_etl(suite_dir).ok
    new_run = suite_dir / "alpha" / "run_2"
    shutil.copytree(suite_dir / "alpha" / "run_0", new_run)
    (new_run / "rep_0" / "client" / "host_0" / "results.csv").write_text("op,lat,ok\nread,n/a,yes\n")
    warm = run_suite_etl(suite_dir).by_pipeline()["p"]
    # A text value in a cached number column: that experiment is read again (the cache keeps numbers).
    assert warm.jobs_read == 6 and warm.jobs == 8
    with_cache = output(suite_dir, "p")
    shutil.rmtree(suite_dir / "etl_results")
    assert run_suite_etl(suite_dir).by_pipeline()["p"].jobs_read == 8
    assert output(suite_dir, "p") == with_cache
    assert "n/a" in with_cache  # one text value keeps the whole column text, cached or not


def test_json_yaml_records_and_runtime_only_rows_match_golden(make_suite):
    import json

    def files(exp, run, rep, host_type, idx):
        produced = job_files(exp, run, rep, host_type, idx)
        produced.pop("results.csv")
        produced["metrics.json"] = json.dumps({"lat": run + rep, "nested": {"a": 1}})
        produced["series.yaml"] = f"- {{step: 0, v: {rep}}}\n- {{step: 1, v: {rep + 1}}}\n"
        return produced

    runtime_only = {
        "RuntimeInfoExtractor": {},
        "IgnoreExtractor": {"file_regex": [r".*\.(json|log)$", "^series"]},
    }
    suite_dir = make_suite(
        {
            "records": {
                "experiments": ["beta"],
                "loaders": {"CsvSummaryLoader": {}},
                "extractors": {
                    "JsonExtractor": {},
                    "YamlExtractor": {"file_regex": [r"^series\.yaml$"]},
                    "ErrorExtractor": {},
                    "IgnoreExtractor": {},
                },
            },
            "runtime": {
                "experiments": ["beta"],
                "extractors": runtime_only,
                "loaders": {"CsvSummaryLoader": {}},
            },
        },
        files=files,
    )
    report = run_suite_etl(suite_dir)
    assert report.ok, report.lines()
    assert (report.by_pipeline()["records"].rows, report.by_pipeline()["runtime"].rows) == (6, 2)
    assert_golden("records.csv", output(suite_dir, "records"))
    assert_golden("runtime_only.csv", output(suite_dir, "runtime"))


def test_files_in_subfolders_of_a_job_folder_are_extracted(make_suite):
    def files(*args):
        return {**job_files(*args), "extra/more.csv": "op,lat,ok\nscan,5,yes\n"}

    suite_dir = make_suite(
        {"p": {"experiments": ["beta"], "extractors": STEPS, "loaders": {"CsvSummaryLoader": {}}}},
        files=files,
    )
    assert run_suite_etl(suite_dir).ok
    frame = pd.read_csv(suite_dir / "etl_results" / "p" / "p.csv", index_col=0)
    assert list(frame["source_file"]) == ["extra/more.csv", "results.csv", "results.csv"] * 2


def test_a_column_turns_numeric_when_its_only_text_value_is_fixed(make_suite):
    def files(exp, run, rep, host_type, idx):
        produced = job_files(exp, run, rep, host_type, idx)
        if (exp, run, rep) == ("alpha", 1, 1):
            produced["results.csv"] = "op,lat,ok\nread,n/a,yes\n"
        return produced

    suite_dir = make_suite(
        {"p": {"experiments": ["alpha"], "extractors": STEPS, "loaders": {"PickleSummaryLoader": {}}}},
        files=files,
    )
    age_tree(suite_dir)
    assert run_suite_etl(suite_dir).ok
    assert not pd.api.types.is_numeric_dtype(pd.read_pickle(suite_dir / "etl_results" / "p" / "p.pkl")["lat"])
    broken = suite_dir / "alpha" / "run_1" / "rep_1" / "client" / "host_0" / "results.csv"
    broken.write_text("op,lat,ok\nread,7,yes\n")
    assert run_suite_etl(suite_dir).by_pipeline()["p"].jobs_read == 1
    warm = pd.read_pickle(suite_dir / "etl_results" / "p" / "p.pkl")
    assert pd.api.types.is_numeric_dtype(warm["lat"]) and 7 in set(warm["lat"])
    shutil.rmtree(suite_dir / "etl_results")
    assert run_suite_etl(suite_dir).ok
    pd.testing.assert_frame_equal(pd.read_pickle(suite_dir / "etl_results" / "p" / "p.pkl"), warm)


def test_pipelines_with_the_same_extractors_extract_once(make_suite):
    loaders = {"CsvSummaryLoader": {}}
    suite_dir = make_suite(
        {
            "first": {
                "experiments": ["beta"],
                "extractors": STEPS,
                "loaders": loaders,
                "transformers": [{"df.pop": {"item": "lat"}}],
            },
            "second": {"experiments": ["beta"], "extractors": STEPS, "loaders": loaders},
        }
    )
    report = run_suite_etl(suite_dir)
    assert report.ok, report.lines()
    first, second = report.by_pipeline()["first"], report.by_pipeline()["second"]
    assert (first.jobs_read, second.jobs, second.jobs_read) == (2, 2, 0)
    assert "lat" in pd.read_csv(suite_dir / "etl_results" / "second" / "second.csv").columns


def test_jobs_kept_from_a_rewritten_cache_still_notice_an_edit_in_place(make_suite):
    suite_dir = make_suite(
        {"p": {"experiments": "*", "extractors": STEPS, "loaders": {"CsvSummaryLoader": {}}}}
    )
    age_tree(suite_dir)
    assert run_suite_etl(suite_dir).ok
    for run in range(2, 12):  # enough new jobs that the cache is written again, with the old jobs kept
        shutil.copytree(suite_dir / "alpha" / "run_0", suite_dir / "alpha" / f"run_{run}")
        age_tree(suite_dir / "alpha" / f"run_{run}", seconds=60)
    past = suite_dir.stat().st_mtime_ns + 1_000_000_000
    os.utime(suite_dir / "alpha", ns=(past, past))
    cache = next((suite_dir / "etl_results" / ".cache").glob("*/demo_*__alpha.cache"))
    written = cache.stat().st_mtime_ns
    assert run_suite_etl(suite_dir).by_pipeline()["p"].jobs_read == 20
    assert cache.stat().st_mtime_ns != written

    changed = suite_dir / "alpha" / "run_1" / "rep_0" / "client" / "host_0" / "results.csv"
    stat = changed.stat()
    changed.write_text(changed.read_text().replace("read,20", "read,77"))  # same size: mtime must tell
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert run_suite_etl(suite_dir).by_pipeline()["p"].jobs_read == 1
    with_cache = output(suite_dir, "p")
    assert ",77," in with_cache
    shutil.rmtree(suite_dir / "etl_results")
    assert run_suite_etl(suite_dir).by_pipeline()["p"].jobs_read == 26
    assert output(suite_dir, "p") == with_cache
