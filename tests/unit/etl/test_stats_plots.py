"""Confidence intervals, outliers and the declarative plot loader; the shipped ETL examples stay valid."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import yaml

from etl.design_section import expand_etl_section, expand_pipeline
from etl.errors import EtlDataError
from etl.steps.plots import FactorPlotLoader
from etl.steps.stats import ConfidenceIntervalTransformer, OutlierTransformer, t_quantile
from tests.conftest import REPO_ROOT
from tests.unit.etl.golden import assert_golden


@pytest.fixture
def frame() -> pd.DataFrame:
    rows = []
    for run, (size, mode) in enumerate([(1, "fast"), (1, "slow"), (2, "fast"), (2, "slow")]):
        for rep in range(5):
            spike = 9.0 if (run, rep) == (2, 3) else 0.0
            rows.append(
                {
                    "exp_name": "e",
                    "run": run,
                    "rep": rep,
                    "factor_columns": ["size", "mode"],
                    "size": size,
                    "mode": mode,
                    "lat": size * (1 + run % 2) + 0.1 * rep + spike,
                }
            )
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    "p, dof, expected",
    [(0.975, 1, 12.7062), (0.975, 2, 4.3027), (0.975, 10, 2.2281), (0.95, 5, 2.0150), (0.995, 30, 2.7500)],
)
def test_t_quantile_matches_tables(p, dof, expected):
    assert t_quantile(p, dof) == pytest.approx(expected, abs=1e-4)


def test_t_interval_of_a_small_group():
    df = pd.DataFrame({"run": [0, 0, 0, 1], "rep": [0, 1, 2, 0], "x": [1.0, 2.0, 3.0, 5.0]})
    result = ConfidenceIntervalTransformer(data_columns=["x"]).transform(df, {})
    first, single = result.iloc[0], result.iloc[1]
    assert (first["x_mean"], first["x_n"]) == (2.0, 3)
    assert first["x_ci_high"] - 2.0 == pytest.approx(4.3027 / math.sqrt(3), abs=1e-4)
    assert single["x_n"] == 1 and math.isnan(single["x_ci_low"])


def test_confidence_intervals_golden_and_bootstrap_is_seeded(frame):
    before = frame.copy(deep=True)
    t_based = ConfidenceIntervalTransformer(data_columns=["lat"], level=0.9).transform(frame, {})
    assert_golden("step_ConfidenceIntervalTransformer.csv", t_based.to_csv())
    boot = ConfidenceIntervalTransformer(data_columns=["lat"], method="bootstrap", seed=3)
    first, second = boot.transform(frame, {}), boot.transform(frame, {})
    pd.testing.assert_frame_equal(first, second)
    assert (first["lat_ci_low"] <= first["lat_mean"]).all() and (
        first["lat_mean"] <= first["lat_ci_high"]
    ).all()
    pd.testing.assert_frame_equal(frame, before)


def test_outliers_are_flagged_with_reasons_and_warmup(frame):
    before = frame.copy(deep=True)
    flagged = OutlierTransformer(data_columns=["lat"], warmup_reps=1).transform(frame, {})
    pd.testing.assert_frame_equal(frame, before)
    assert_golden("step_OutlierTransformer_flag.csv", flagged.to_csv())
    reasons = flagged[flagged["outlier"]].set_index(["run", "rep"])["outlier_reason"]
    assert set(reasons.index) == {(0, 0), (1, 0), (2, 0), (3, 0), (2, 3)}
    assert reasons[(0, 0)] == "warm-up repetition"
    assert reasons[(2, 3)].startswith("lat modified z ") and reasons[(2, 3)].endswith("> 3.5")


def test_dropped_outliers_are_named_on_the_rows_kept(frame):
    kept = OutlierTransformer(data_columns=["lat"], warmup_reps=1, action="drop").transform(frame, {})
    assert len(kept) == len(frame) - 5 and "outlier" not in kept.columns
    spiked = kept[kept["run"] == 2]["dropped"].unique()
    assert len(spiked) == 1 and spiked[0].startswith("rep 0: warm-up repetition; rep 3: lat modified z")
    assert set(kept[kept["run"] == 0]["dropped"]) == {"rep 0: warm-up repetition"}


def test_equal_values_are_no_outliers():
    df = pd.DataFrame({"run": [0] * 4, "rep": range(4), "x": [1.0, 1.0, 1.0, 1.0]})
    assert not OutlierTransformer(data_columns=["x"]).transform(df, {})["outlier"].any()


@pytest.mark.parametrize("kind", ["bar", "line", "box"])
def test_factor_plots_write_png_pdf_and_data(frame, tmp_path, kind):
    data = (
        frame if kind == "box" else ConfidenceIntervalTransformer(data_columns=["lat"]).transform(frame, {})
    )
    info = {"pipeline": "p", "etl_output_dir": str(tmp_path), "suite": "s", "suite_id": 1}
    FactorPlotLoader(kind=kind, y="lat").load(data, {}, info)
    png = (tmp_path / f"p_{kind}_lat.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    assert (tmp_path / f"p_{kind}_lat.pdf").read_bytes().startswith(b"%PDF")
    html = (tmp_path / f"p_{kind}_lat.html").read_text()
    assert "<th>mode</th>" in html and "<th>size</th>" in html
    assert html.count("<tr") == 1 + (len(frame) if kind == "box" else 4)


def test_factor_plot_facets_and_errors(frame, tmp_path):
    info = {"pipeline": "p", "etl_output_dir": str(tmp_path)}
    FactorPlotLoader(kind="bar", y="lat", facet="mode", formats=["png"], data_table=False).load(
        frame, {}, info
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "p_bar_lat_mode=fast.png",
        "p_bar_lat_mode=slow.png",
    ]
    with pytest.raises(EtlDataError, match="column 'nope' not in the frame"):
        FactorPlotLoader(y="nope").load(frame, {}, info)
    aggregated = ConfidenceIntervalTransformer(data_columns=["lat"]).transform(frame, {})
    with pytest.raises(EtlDataError, match="'lat' not in the frame"):
        FactorPlotLoader(kind="box", y="lat").load(aggregated, {}, info)


def test_shipped_template_and_super_etl_example_are_valid():
    section = {
        "p": {
            "experiments": "*",
            "$ETL_VARS$": {"metric": "latency_ms"},
            "$INCLUDE_PIPELINE$": {"template": "timing", "pipeline": "rep_summary"},
        }
    }
    expanded = expand_etl_section(section, ["e"], config_dir=REPO_ROOT)
    assert expanded["p"]["loaders"]["FactorPlotLoader"] == {"kind": "bar", "y": "latency_ms"}
    example = yaml.safe_load((REPO_ROOT / "super_etl" / "example.yml").read_text())
    for name, pipeline in example["$ETL$"].items():
        expand_pipeline(name, pipeline, prefix="$ETL$", config_dir=REPO_ROOT)
