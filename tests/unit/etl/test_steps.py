"""Built-in transformers and loaders on small frames: golden outputs, purity, options."""

from __future__ import annotations

import pickle

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etl.errors import EtlDataError
from etl.steps.loaders import CsvSummaryLoader, LatexTableLoader, ParquetLoader, PickleSummaryLoader
from etl.steps.stats import ConfidenceIntervalTransformer, OutlierTransformer
from etl.steps.transformers import (
    ConditionalTransformer,
    DataFrameMethodTransformer,
    FilterColumnTransformer,
    GroupByAggTransformer,
    RepAggTransformer,
    hashable_keys,
)
from tests.unit.etl.golden import assert_golden


@pytest.fixture
def frame() -> pd.DataFrame:
    rows = []
    for run, (size, mode) in enumerate([(1, "fast"), (2, "fast"), (1, "slow")]):
        for rep in range(3):
            rows.append(
                {
                    "exp_name": "e",
                    "run": run,
                    "rep": rep,
                    "factor_columns": ["size", "mode"],
                    "size": size,
                    "mode": mode,
                    "lat": float(10 * run + rep),
                    "tput": str(100 - rep),
                }
            )
    return pd.DataFrame(rows)


TRANSFORMERS = [
    RepAggTransformer(data_columns=["lat", "tput"]),
    GroupByAggTransformer(data_columns=["lat"], groupby_columns=["$FACTORS$"]),
    GroupByAggTransformer(
        data_columns=["lat"],
        groupby_columns=["mode"],
        agg_functions=["mean", "custom_tail"],
        custom_tail_length=2,
    ),
    ConditionalTransformer(col="mode", dest="label", value={"fast": "F", "slow": "S"}),
    FilterColumnTransformer(filters={"mode": "fast"}),
    DataFrameMethodTransformer(method="sort_values", kwargs={"by": ["lat"], "ascending": False}),
    DataFrameMethodTransformer(method="query", kwargs={"expr": "lat > 5"}),
]


@pytest.mark.parametrize("transformer", TRANSFORMERS, ids=lambda t: type(t).__name__)
def test_transformers_match_golden_and_never_mutate_input(frame, transformer):
    before = frame.copy(deep=True)
    result = transformer.transform(frame, {})
    pd.testing.assert_frame_equal(frame, before)
    assert result is not frame
    name = type(transformer).__name__
    suffix = {
        "GroupByAggTransformer": "_tail"
        if "custom_tail" in getattr(transformer, "agg_functions", [])
        else "_factors",
        "DataFrameMethodTransformer": f"_{getattr(transformer, 'method', '')}",
    }.get(name, "")
    assert_golden(f"step_{name}{suffix}.csv", result.to_csv())


def test_repagg_output_columns_and_values(frame):
    repagg = RepAggTransformer(data_columns=["lat"], agg_functions=["mean", "count"])
    result = repagg.transform(frame.drop(columns="tput"), {})
    assert list(result["lat_mean"]) == [1.0, 11.0, 21.0]
    assert list(result["lat_count"]) == [3, 3, 3]
    assert "rep" not in result.columns
    assert len(repagg.transform(frame, {})) == 9  # tput is no data column here: a group key


def test_groupby_factors_union_and_missing_data_column_passes_frame_on(frame):
    result = GroupByAggTransformer(data_columns=["lat"], groupby_columns=["$FACTORS$"]).transform(frame, {})
    assert list(result.columns[:2]) == ["size", "mode"] and len(result) == 3
    with pytest.warns(UserWarning, match="missing"):
        same = GroupByAggTransformer(data_columns=["nope"], groupby_columns=["mode"]).transform(frame, {})
    assert same is frame


def test_means_are_summed_in_row_order_as_doe_suite_published_them():
    values = [4.49, 6.52, 7.89, 0.94, 0.28]  # pandas 2's compensated group mean gives 4.023999999999999
    df = pd.DataFrame({"g": ["a"] * 5 + ["b"] * 2, "x": [*values, 1.0, None], "y": [1, 2, 3, 4, 5, 6, 7]})
    result = GroupByAggTransformer(
        data_columns=["x", "y"], groupby_columns=["g"], agg_functions=["mean", "count"]
    ).transform(df, {})
    assert list(result["g"]) == ["a", "b"]
    assert list(result["x_mean"]) == [4.024, 1.0]  # NaN skipped, as pandas does
    assert list(result["y_mean"]) == [3.0, 6.5] and list(result["x_count"]) == [5, 1]
    only_mean = GroupByAggTransformer(data_columns=["x"], groupby_columns=["g"], agg_functions=["mean"])
    assert list(only_mean.transform(df, {})["x_mean"]) == [4.024, 1.0]


def test_groupby_keeps_nan_groups():
    df = pd.DataFrame({"g": ["a", None, None], "x": [1, 2, 4]})
    result = GroupByAggTransformer(
        data_columns=["x"], groupby_columns=["g"], agg_functions=["sum"]
    ).transform(df, {})
    assert sorted(result["x_sum"]) == [1, 6]


def test_filter_column_empty_result_is_an_error_unless_allowed(frame):
    with pytest.raises(EtlDataError, match="leave no rows"):
        FilterColumnTransformer(filters={"mode": "none"}).transform(frame, {})
    assert (
        FilterColumnTransformer(filters={"mode": "none"}, allow_empty_result=True).transform(frame, {}).empty
    )
    # without filters (doe-suite's default {}) every row stays, even of an empty frame
    pd.testing.assert_frame_equal(FilterColumnTransformer().transform(frame, {}), frame)
    assert FilterColumnTransformer().transform(frame.iloc[:0], {}).empty


def test_repagg_missing_data_column_is_an_error_naming_columns(frame):
    with pytest.raises(EtlDataError, match=r"data_columns \['nope'\] not in the frame"):
        RepAggTransformer(data_columns=["nope"]).transform(frame, {})


def test_table_loaders_write_readable_files(frame, tmp_path):
    info = {"suite": "s", "suite_id": 1, "pipeline": "p", "etl_output_dir": str(tmp_path / "out")}
    for loader in (CsvSummaryLoader(), PickleSummaryLoader(), LatexTableLoader(), ParquetLoader()):
        loader.load(frame, {}, info)
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["p.csv", "p.parquet", "p.pkl", "p.tex"]
    assert pd.read_csv(out / "p.csv", index_col=0).shape == frame.shape
    pd.testing.assert_frame_equal(pickle.loads((out / "p.pkl").read_bytes()), frame)
    assert pd.read_parquet(out / "p.parquet")["lat"].tolist() == frame["lat"].tolist()
    assert "\\begin{tabular}" in (out / "p.tex").read_text()


def test_loaders_refuse_an_empty_frame_unless_skip_empty(tmp_path):
    info = {"pipeline": "p", "etl_output_dir": str(tmp_path)}
    with pytest.raises(EtlDataError, match="empty"):
        CsvSummaryLoader().load(pd.DataFrame(), {}, info)
    CsvSummaryLoader(skip_empty=True).load(pd.DataFrame(), {}, info)
    assert not (tmp_path / "p.csv").exists()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.integers(0, 3),
            st.integers(0, 2),
            st.sampled_from(["a", "b"]),
            st.floats(-1e6, 1e6, allow_nan=False),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_no_builtin_transformer_mutates_its_input(rows):
    df = pd.DataFrame(rows, columns=["run", "rep", "mode", "lat"]).assign(
        factor_columns=[["mode"]] * len(rows)
    )
    before = df.copy(deep=True)
    steps = [
        RepAggTransformer(data_columns=["lat"]),
        GroupByAggTransformer(data_columns=["lat"], groupby_columns=["$FACTORS$"]),
        ConditionalTransformer(col="mode", dest="mode", value={"a": "A"}),
        FilterColumnTransformer(filters={"mode": "a"}, allow_empty_result=True),
        DataFrameMethodTransformer(method="sort_values", kwargs={"by": ["lat"]}),
        ConfidenceIntervalTransformer(data_columns=["lat"]),
        OutlierTransformer(data_columns=["lat"], warmup_reps=1, action="drop"),
    ]
    for step in steps:
        step.transform(df, {})
        pd.testing.assert_frame_equal(df, before)


def test_mutating_dataframe_methods_act_on_a_copy(frame):
    before = frame.copy(deep=True)
    popped = DataFrameMethodTransformer(method="pop", kwargs={"item": "lat"}).transform(frame, {})
    assert list(popped.columns) == ["lat"]
    with pytest.raises(EtlDataError, match="df.insert returned NoneType"):
        DataFrameMethodTransformer(method="insert", kwargs={"loc": 0, "column": "z", "value": 1}).transform(
            frame, {}
        )
    pd.testing.assert_frame_equal(frame, before)


def test_group_keys_of_objects_become_their_text_once_per_object():
    shared, other = [1, 2], {"a": 1}
    column = [shared, None, shared, other, float("nan"), "x", 3, [1, 2]]
    frame = pd.DataFrame({"key": pd.Series(column, dtype=object), "text": pd.Series(["t"] * 8, dtype=object)})
    keyed = hashable_keys(frame, ["key", "text"])
    assert keyed["key"].tolist()[:4] == ["[1, 2]", None, "[1, 2]", "{'a': 1}"]
    assert pd.isna(keyed["key"][4]) and keyed["key"].tolist()[5:] == ["x", "3", "[1, 2]"]
    assert keyed["text"].tolist() == ["t"] * 8
    assert frame["key"][0] is shared  # the input is left as it was
