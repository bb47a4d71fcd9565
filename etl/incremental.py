"""Group aggregation that reuses the previous result for the groups whose rows did not change.

After a few new jobs most groups of a summary are what they were: a warm ETL need not aggregate them again.
The extraction tells which rows are the same rows as last time (ExtractionResult.lineage); the state kept for
the aggregating step has the previous input's row identities and the previous result. When the new input
starts with the same rows (same identities, same columns and dtypes), the groups those leading rows form are
taken from the previous result and only the rest is aggregated.

That equals aggregating the whole frame when no group has rows on both sides of the cut. The groups are
keyed by suite, experiment and run among others, so the cut is moved back until no leading row shares its
(suite, experiment, run) with a row after the cut, in the old input or the new one. Then every group is
either all before the cut (the same rows as before, the same result) or all after it, groups keep the order
of their first rows, and the result's dtypes are checked to be those of the previous result.

Pure: the state comes in and goes out as a value; the runner keeps it between runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from pandas.util import hash_pandas_object

from etl.steps.base import IncrementalResult, Lineage

STATE_VERSION = 1
# Key columns that separate runs; "run" must be among the group keys for the cut to exist.
PARTITION_KEYS = ("suite_name", "suite_id", "exp_name", "run")

Aggregate = Callable[[pd.DataFrame], tuple[pd.DataFrame, np.ndarray]]


def aggregate(
    frame: pd.DataFrame,
    keys: list[str],
    what: tuple,
    full: Aggregate,
    lineage: Lineage | None,
    previous_state: Any,
) -> IncrementalResult:
    """`full(frame)[0]`, reusing `previous_state` where it holds, with the state to keep for the next call
    (None: nothing new to keep) and the lineage of the result (its rows taken from the previous result keep
    their ids); `full` returns the result and each row's group number (groups numbered in the order of their
    first rows). `what` names the aggregation (keys, data, functions): a state of another one is not used."""
    partition = [key for key in PARTITION_KEYS if key in keys]
    if lineage is None or "run" not in partition or len(lineage[1]) != len(frame):
        return IncrementalResult(full(frame)[0], None, None)
    token, ids = lineage
    # The previous result holds for the same pandas only (another may aggregate or infer dtypes otherwise).
    layout = frame_layout(frame)
    state = previous_state if _usable(previous_state, token, layout, what) else None
    cut, groups = (shared_prefix(state["ids"], ids), 0) if state is not None else (0, 0)
    try:
        # The same rows have the same partition: only the rows after the shared ones are hashed.
        parts = hash_pandas_object(frame.iloc[cut:][partition], index=False).to_numpy()
    except TypeError:  # unhashable values (lists) in a partition column: no cut can be proven
        return IncrementalResult(full(frame)[0], None, None)
    if cut and state is not None:
        parts = np.concatenate([state["parts"][:cut], parts])
    if state is not None:
        while cut:
            # Each move of the cut puts more rows after it: repeat until no leading row shares a partition.
            later = np.union1d(parts[cut:], state["parts"][cut:])
            shared = np.flatnonzero(np.isin(parts[:cut], later))
            if not len(shared):
                break
            cut = int(shared[0])
        if cut == len(frame) and cut < len(state["ids"]):
            # Rows only went away: the key columns' dtypes may have depended on them.
            cut = 0
        groups = int(state["starts"][cut])
    result, numbers = full(frame.iloc[cut:]) if cut else full(frame)
    starts = np.concatenate([[0], np.maximum.accumulate(numbers) + 1]) if len(numbers) else np.zeros(1, int)
    # Result rows are numbered within a generation of states; a row taken from the previous result keeps its
    # number, new rows get numbers never given before in that generation.
    generation, row_ids, next_row_id = (
        os.urandom(8).hex(),
        np.arange(len(result), dtype=np.int64),
        len(result),
    )
    if cut and state is not None:
        previous = state["result"]
        if len(result) and (
            list(result.columns) != list(previous.columns) or list(result.dtypes) != list(previous.dtypes)
        ):
            result, numbers = full(frame)
            starts = np.concatenate([[0], np.maximum.accumulate(numbers) + 1])
            row_ids, next_row_id = np.arange(len(result), dtype=np.int64), len(result)
        else:
            kept = previous.iloc[:groups]
            result = (
                pd.concat([kept, result], ignore_index=True) if len(result) else kept.reset_index(drop=True)
            )
            starts = np.concatenate([state["starts"][: cut + 1], starts[1:] + groups])
            generation = state["generation"]
            row_ids = np.concatenate([state["row_ids"][:groups], row_ids + state["next_row_id"]])
            next_row_id = state["next_row_id"] + len(row_ids) - groups
    state = {
        "version": STATE_VERSION,
        "token": token,
        "layout": layout,
        "what": what,
        "ids": ids,
        "parts": parts,
        "starts": starts,
        "result": result,
        "generation": generation,
        "row_ids": row_ids,
        "next_row_id": next_row_id,
    }
    return IncrementalResult(result, state, ((generation,), row_ids))


def _usable(state: Any, token: tuple, layout: tuple, what: tuple) -> bool:
    """A state of this format, for the same rows' lineage, input layout (and pandas) and aggregation."""
    return (
        isinstance(state, dict)
        and state.get("version") == STATE_VERSION
        and (state.get("token"), state.get("layout"), state.get("what")) == (token, layout, what)
    )


def frame_layout(frame: pd.DataFrame) -> tuple:
    """Columns and dtypes, with the pandas and numpy that made a result from them (others may differ)."""
    return (
        pd.__version__,
        np.__version__,
        [(type(name), name) for name in frame.columns],
        [str(dtype) for dtype in frame.dtypes],
    )


def shared_prefix(old: np.ndarray, new: np.ndarray) -> int:
    """How many leading entries are equal in both, -1 in `new` never (a row without identity); also for
    row hashes (unsigned: never negative)."""
    common = min(len(old), len(new))
    differs = np.flatnonzero((old[:common] != new[:common]) | (new[:common] < 0))
    return int(differs[0]) if len(differs) else common
