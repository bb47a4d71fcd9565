"""`doe etl` with FactorPlotLoader at its defaults after each shipped transformer: x and group are found."""

from __future__ import annotations

import pytest

from etl.steps.base import BUILTIN_STEPS, Transformer
from tests.unit.etl.conftest import STEPS
from tests.unit.etl.test_cli import invoke
from tests.unit.etl.tree import csv_text

# One case per shipped transformer, with the options a first pipeline would give it.
TRANSFORMERS = {
    "RepAggTransformer": {"data_columns": ["lat"]},
    "GroupByAggTransformer": {"data_columns": ["lat"], "groupby_columns": ["$FACTORS$"]},
    "ConfidenceIntervalTransformer": {"data_columns": ["lat"]},
    "OutlierTransformer": {"data_columns": ["lat"]},
    "ConditionalTransformer": {"col": "size", "dest": "label", "value": {1: "small"}},
    "FilterColumnTransformer": {"filters": {"opt.mode": "fast"}},
    "df.sort_values": {"by": ["lat"]},
}


def one_row_per_job(exp: str, run: int, rep: int, host_type: str, idx: int) -> dict[str, str]:
    return {"results.csv": csv_text(["lat"], [[10 * (run + 1) + rep]]), "stdout.log": "", "stderr.log": ""}


def test_every_shipped_transformer_has_a_case():
    shipped = {name for name, cls in BUILTIN_STEPS.items() if issubclass(cls, Transformer)}
    assert shipped <= set(TRANSFORMERS)


@pytest.mark.parametrize("name", TRANSFORMERS)
def test_plot_defaults_after_transformer(make_suite, tmp_path, name):
    step = {"name": name, **TRANSFORMERS[name]} if not name.startswith("df.") else {name: TRANSFORMERS[name]}
    pipeline = {
        "experiments": ["alpha"],
        "extractors": STEPS,
        "transformers": [step],
        "loaders": {"FactorPlotLoader": {"y": "lat", "formats": ["png"]}},
    }
    suite_dir = make_suite({"plot": pipeline}, files=one_row_per_job)
    result = invoke(tmp_path, "etl", "--suite", "demo")
    assert result.exit_code == 0, result.output
    table = (suite_dir / "etl_results" / "plot" / "plot_bar_lat.html").read_text()
    # x is the first factor, group the second; one bar per size.
    assert "<th>opt.mode</th>" in table and "<th>size</th>" in table
    assert table.count("<tr") == 1 + 2
    assert (suite_dir / "etl_results" / "plot" / "plot_bar_lat.png").read_bytes().startswith(b"\x89PNG")
