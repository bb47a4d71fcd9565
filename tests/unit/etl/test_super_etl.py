"""Super ETL over two suites with per-experiment suite ids."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from etl.api import parse_suite_id_overrides, run_super_etl
from etl.errors import EtlConfigError
from tests.unit.etl.conftest import STEPS
from tests.unit.etl.golden import assert_golden


@pytest.fixture
def project(make_suite, tmp_path):
    """Results of suite demo (ids 1 and 2) and suite other (id 3); config dir with super_etl/combo.yml."""
    pipelines = {"p": {"experiments": "*", "extractors": STEPS}}
    make_suite(pipelines, suite_id=1)
    make_suite(pipelines, suite_id=2)
    make_suite(pipelines, suite="other", suite_id=3)
    config_dir = tmp_path / "config"
    (config_dir / "super_etl").mkdir(parents=True)
    (config_dir / "designs").mkdir()
    config = {
        "$SUITE_ID$": {"demo": {"$DEFAULT$": 1, "beta": 2}, "other": 3},
        "$ETL$": {
            "combined": {
                "experiments": {"demo": ["alpha", "beta"], "other": ["beta"]},
                "extractors": STEPS,
                "transformers": [
                    {"name": "RepAggTransformer", "data_columns": ["lat"]},
                    {"df.filter": {"items": ["suite_name", "suite_id", "exp_name", "run", "op", "lat_mean"]}},
                ],
                "loaders": {"CsvSummaryLoader": {}},
            },
            "all_other": {
                "experiments": {"other": "*"},
                "extractors": STEPS,
                "loaders": {"CsvSummaryLoader": {}},
            },
        },
    }
    (config_dir / "super_etl" / "combo.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    return config_dir, tmp_path / "results"


def test_two_suites_with_per_experiment_ids(project, tmp_path):
    config_dir, results = project
    report = run_super_etl("combo", config_dir=config_dir, results_dir=results, out_dir=tmp_path / "out")
    assert report.ok, report.lines()
    text = (tmp_path / "out" / "combo" / "combined" / "combined.csv").read_text()
    assert_golden("super_combined.csv", text)
    frame = pd.read_csv(tmp_path / "out" / "combo" / "combined" / "combined.csv", index_col=0)
    assert list(dict.fromkeys(zip(frame["suite_name"], frame["suite_id"], frame["exp_name"]))) == [
        ("demo", 1, "alpha"),
        ("demo", 2, "beta"),
        ("other", 3, "beta"),
    ]
    other = pd.read_csv(tmp_path / "out" / "combo" / "all_other" / "all_other.csv", index_col=0)
    assert set(other["exp_name"]) == {"alpha", "beta"}


def test_pipeline_filter_and_id_override_dropping_other_suites(project, tmp_path):
    config_dir, results = project
    report = run_super_etl(
        "combo",
        config_dir=config_dir,
        results_dir=results,
        out_dir=tmp_path / "out",
        pipelines=["combined"],
        suite_ids=parse_suite_id_overrides(["demo=2"]),
    )
    assert [o.pipeline for o in report.outcomes] == ["combined"] and report.ok, report.lines()
    frame = pd.read_csv(tmp_path / "out" / "combo" / "combined" / "combined.csv", index_col=0)
    assert set(zip(frame["suite_name"], frame["suite_id"])) == {("demo", 2)}


def test_super_etl_errors(project, tmp_path):
    config_dir, results = project
    run = {"config_dir": config_dir, "results_dir": results, "out_dir": tmp_path / "out"}
    assert "unknown pipelines ['zz']" in str(run_super_etl("combo", pipelines=["zz"], **run).config_error)
    assert "no super ETL config 'nope'" in str(run_super_etl("nope", **run).config_error)
    report = run_super_etl("combo", suite_ids={"demo": 9, "other": 3}, **run)
    combined = report.by_pipeline()["combined"]
    assert combined.status == "error" and "suite demo has no results with id 9" in combined.message
    assert report.by_pipeline()["all_other"].status == "ok"

    path = config_dir / "super_etl" / "bad.yml"
    path.write_text(yaml.safe_dump({"$SUITE_ID$": {"demo": [1]}, "$ETL$": {}}))
    assert "$SUITE_ID$.demo: expected an id" in str(run_super_etl("bad", **run).config_error)
    path.write_text(
        yaml.safe_dump(
            {
                "$SUITE_ID$": {"demo": 1},
                "$ETL$": {"p": {"experiments": {"demo": ["gamma"]}, "extractors": STEPS}},
            }
        )
    )
    message = run_super_etl("bad", **run).by_pipeline()["p"].message
    assert "has no experiment gamma" in message and "$ETL$.p.experiments.demo" in message
    with pytest.raises(EtlConfigError, match="expected suite=id"):
        parse_suite_id_overrides(["demo"])
