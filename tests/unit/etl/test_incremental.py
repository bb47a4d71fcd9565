"""Incremental group aggregation: whatever it reuses, the result is the one of aggregating the whole frame."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import etl.incremental
from etl import cachecodec
from etl.steps.transformers import GroupByAggTransformer, RepAggTransformer

TOKEN = (("suite", "exp", "generation-1"),)


def rows(runs, reps=2, ops=("get", "put"), lat=None) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows of jobs (run, rep) in walk order with their job ids (run * 100 + rep)."""
    records, ids = [], []
    for run in runs:
        for rep in range(reps):
            for op in ops:
                value = lat(run, rep, op) if lat else run * 10 + rep
                records.append(
                    {"suite_name": "s", "exp_name": "exp", "run": run, "rep": rep, "op": op, "lat": value}
                )
                ids.append(run * 100 + rep)
    return pd.DataFrame(records), np.array(ids, dtype=np.int64)


def aggregate(step, frame, ids, kept, token=TOKEN):
    """One run of the step as the runner makes it: `kept` holds what the last run returned as its state, as
    it reads back from the state file (etl.cachecodec)."""
    outcome = step.transform_incremental(frame, {}, (token, ids), kept.get("state"))
    if outcome.state is not None:
        header, blobs = cachecodec.dumps(outcome.state)
        kept["state"] = cachecodec.loads(json.dumps(header).encode(), [memoryview(b) for b in blobs])
    kept["lineage"] = outcome.lineage
    return outcome.frame


def assert_same(result, frame):
    expected = RepAggTransformer(data_columns=["lat"]).transform(frame, {})
    pd.testing.assert_frame_equal(result, expected, check_exact=True)


@pytest.fixture
def calls(monkeypatch):
    """The sizes of the frames actually aggregated with a lineage (not those of the expected results)."""
    sizes = []
    original = etl.incremental.aggregate

    def counting(frame, keys, what, full, lineage, previous_state):
        def counted(part):
            if lineage is not None:
                sizes.append(len(part))
            return full(part)

        return original(frame, keys, what, counted, lineage, previous_state)

    monkeypatch.setattr(etl.incremental, "aggregate", counting)
    return sizes


STEP = RepAggTransformer(data_columns=["lat"])


def test_new_runs_are_aggregated_alone(calls):
    state = {}
    assert_same(aggregate(STEP, *rows(range(5)), state), rows(range(5))[0])
    frame, ids = rows(range(7))
    assert_same(aggregate(STEP, frame, ids, state), frame)
    assert calls == [20, 8]  # 5 runs x 2 reps x 2 ops, then the 2 new runs only


def test_a_changed_run_is_aggregated_again_with_the_runs_after_it(calls):
    state = {}
    aggregate(STEP, *rows(range(5)), state)
    frame, ids = rows(range(5), lat=lambda run, rep, op: 99 if (run, rep) == (2, 1) else run * 10 + rep)
    ids[ids == 201] = 7001  # job (2, 1) was read again
    assert_same(aggregate(STEP, frame, ids, state), frame)
    assert calls[1] == 12  # runs 2, 3, 4


def test_rows_of_an_earlier_run_arriving_last_move_the_cut_back(calls):
    state = {}
    aggregate(STEP, *rows(range(4)), state)
    frame, ids = rows(range(4))
    late = frame[frame["run"] == 1].assign(rep=5)  # a late repetition of run 1, listed after the others
    frame = pd.concat([frame, late], ignore_index=True)
    ids = np.concatenate([ids, np.full(len(late), 9999)])
    assert_same(aggregate(STEP, frame, ids, state), frame)
    assert calls[1] == len(frame) - 4  # from run 1 on


def test_rows_that_went_away_or_a_new_dtype_or_generation_mean_a_full_aggregation(calls):
    state = {}
    aggregate(STEP, *rows(range(5)), state)
    frame, ids = rows(range(4))
    assert_same(aggregate(STEP, frame, ids, state), frame)
    frame, ids = rows(range(6), lat=lambda run, rep, op: 0.5 if run == 5 else run)  # lat becomes float
    assert_same(aggregate(STEP, frame, ids, state), frame)
    frame, ids = rows(range(7))
    assert_same(aggregate(STEP, frame, ids, state, token=(("suite", "exp", "generation-2"),)), frame)
    assert calls == [20, 16, 24, 28]


def test_rows_without_identity_are_never_taken_as_the_same(calls):
    state = {}
    frame, ids = rows(range(3))
    aggregate(STEP, frame, np.full(len(ids), -1), state)
    frame, ids = rows(range(3), lat=lambda run, rep, op: 7)
    assert_same(aggregate(STEP, frame, np.full(len(ids), -1), state), frame)
    assert calls == [12, 12]


def test_groups_across_runs_are_always_aggregated_whole(calls):
    step = GroupByAggTransformer(groupby_columns=["op"], data_columns=["lat"])
    state = {}
    aggregate(step, *rows(range(3)), state)
    frame, ids = rows(range(4))
    result = aggregate(step, frame, ids, state)
    pd.testing.assert_frame_equal(result, step.transform(frame, {}), check_exact=True)
    assert calls == [12, 16] and "state" not in state  # none kept: none could be used


JOB_VALUES = st.one_of(st.integers(-3, 3), st.sampled_from([0.5, -0.0, float("nan")]))


@settings(max_examples=30, deadline=None)
@given(
    first=st.lists(st.tuples(st.integers(0, 4), JOB_VALUES, st.sampled_from(["a", "b", None])), max_size=12),
    second=st.lists(st.tuples(st.integers(0, 4), JOB_VALUES, st.sampled_from(["a", "b", None])), max_size=12),
    kept=st.integers(0, 12),
)
def test_any_sequence_of_results_aggregates_as_a_whole(first, second, kept):
    """Jobs (run, value, op) in walk order; the second frame keeps the first `kept` jobs of the first (same
    ids) and goes on with its own jobs (new ids)."""
    state = {}

    def frame(jobs, ids):
        records = [
            {"suite_name": "s", "exp_name": "exp", "run": run, "rep": index, "op": op, "lat": value}
            for index, (run, value, op) in enumerate(jobs)
        ]
        columns = ["suite_name", "exp_name", "run", "rep", "op", "lat"]
        return pd.DataFrame(records, columns=columns), np.array(ids, dtype=np.int64)

    old_frame, old_ids = frame(first, range(len(first)))
    aggregate(STEP, old_frame, old_ids, state)
    jobs = first[:kept] + second
    new_frame, new_ids = frame(jobs, [*range(len(first[:kept])), *range(100, 100 + len(second))])
    if new_frame.empty:
        return
    assert_same(aggregate(STEP, new_frame, new_ids, state), new_frame)


def test_rows_taken_from_the_previous_result_keep_their_ids():
    state = {}

    def result_lineage(frame, ids, token=TOKEN):
        aggregate(STEP, frame, ids, state, token)
        return state["lineage"]

    first_token, first_ids = result_lineage(*rows(range(5)))
    second_token, second_ids = result_lineage(*rows(range(7)))
    assert second_token == first_token and list(second_ids) == [*first_ids, *range(10, 14)]
    third_token, _ = result_lineage(*rows(range(7)), token=(("suite", "exp", "generation-2"),))
    assert third_token != first_token  # a full aggregation starts a new lineage
