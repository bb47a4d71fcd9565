"""CSV output reusing the previous file's rows: always byte-identical to DataFrame.to_csv of the whole frame."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etl import cachecodec
from etl.csv_output import _STATE_KIND, _layout, _row_hashes, _shared_rows, write_csv


def frame(rows: int = 6, **changes) -> pd.DataFrame:
    base = pd.DataFrame(
        {
            "run": np.arange(rows),
            "op": [f"op{i % 3}" for i in range(rows)],
            "lat": np.arange(rows) * 1.5,
            "ok": [i % 2 == 0 for i in range(rows)],
            "cmd": [[{"main": f"c{i}"}] for i in range(rows)],
        }
    )
    for column, (row, value) in changes.items():
        base.at[row, column] = value
    return base


def shared_rows(old: pd.DataFrame, new: pd.DataFrame) -> int:
    """How many leading rows a write of `new` after `old` takes from the old file."""
    if _layout(old) != _layout(new):
        return 0
    common = min(len(old), len(new))
    differs = np.flatnonzero(_row_hashes(old)[:common] != _row_hashes(new)[:common])
    return int(differs[0]) if len(differs) else common


def written(tmp_path, first: pd.DataFrame, second: pd.DataFrame) -> bytes:
    target = tmp_path / "out" / "p.csv"
    write_csv(target, first, tmp_path / "state")
    assert target.read_text() == first.to_csv()
    write_csv(target, second, tmp_path / "state")
    return target.read_bytes()


def with_nan(f: pd.DataFrame) -> pd.DataFrame:
    return f.assign(lat=f["lat"].where(f["run"] != 3))


@pytest.mark.parametrize(
    ("second", "kept"),
    [
        (frame(9), 6),
        (frame(4), 4),
        (frame(6, lat=(3, 99.0)), 3),
        (frame(6, op=(1, "other")), 1),
        (frame(6, cmd=(4, [{"main": "x"}])), 4),
        (with_nan(frame(6)), 3),
        (frame(6).assign(lat=frame(6)["lat"].astype("float32")), 0),  # dtype changed: full write
        (frame(6).assign(extra=1), 0),  # column added
        (frame(6).rename(columns={"op": "kind"}), 0),  # header changed
    ],
    ids=["rows-appended", "rows-removed", "value", "text", "object", "nan", "dtype", "column", "header"],
)
def test_the_file_is_what_to_csv_writes(tmp_path, second, kept):
    first = frame(6)
    assert written(tmp_path, first, second) == second.to_csv().encode()
    assert shared_rows(first, second) == kept


def test_negative_zero_is_not_taken_for_zero():
    first = frame(6).assign(lat=0.0)
    second = first.copy()
    second.loc[2, "lat"] = -0.0
    assert shared_rows(first, second) == 2


def test_equal_objects_written_differently_are_not_reused(tmp_path):
    first = pd.DataFrame({"v": pd.Series([1, 2, 3], dtype=object)})
    second = pd.DataFrame({"v": pd.Series([1, 2.0, 3], dtype=object)})  # 2 == 2.0, but written "2.0"
    assert shared_rows(first, second) == 1
    assert written(tmp_path, first, second) == second.to_csv().encode()


def test_a_field_with_a_line_break_keeps_no_state(tmp_path):
    first = frame(6, op=(2, "two\nlines"))
    target = tmp_path / "p.csv"
    write_csv(target, first, tmp_path / "state")
    assert not list((tmp_path / "state").glob("*"))
    write_csv(target, frame(7, op=(2, "two\nlines")), tmp_path / "state")
    assert target.read_text() == frame(7, op=(2, "two\nlines")).to_csv()


def test_an_output_changed_since_is_written_in_full(tmp_path):
    target = tmp_path / "p.csv"
    write_csv(target, frame(6), tmp_path / "state")
    target.write_text(target.read_text().replace("op1", "XX1"))  # same size
    os.utime(target, ns=(0, 0))
    write_csv(target, frame(7), tmp_path / "state")
    assert target.read_text() == frame(7).to_csv()


def test_dates_are_always_written_in_full(tmp_path):
    first = pd.DataFrame({"at": pd.to_datetime(["2026-01-01", "2026-01-02"])})
    second = pd.DataFrame(
        {"at": pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-02 10:00"], format="ISO8601")}
    )
    # The last row makes every date carry its time: the first rows are written differently.
    assert written(tmp_path, first, second) == second.to_csv().encode()


FIELDS = st.tuples(
    st.integers(-2, 2),
    st.sampled_from([0.0, -0.0, 1.5, float("nan")]),
    st.sampled_from(["a", "b,c", 'q"uote', "two\nlines", ""]),
    st.sampled_from([1, 1.0, True, None, "1", (1,)]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=st.lists(FIELDS, max_size=8), second=st.lists(FIELDS, max_size=8), kept=st.integers(0, 8))
def test_any_rewrite_is_what_to_csv_writes(tmp_path_factory, first, second, kept):
    folder = tmp_path_factory.mktemp("csv")

    def frame(rows):
        columns = {"n": [r[0] for r in rows], "x": [r[1] for r in rows]}
        columns["s"] = pd.Series([r[2] for r in rows], dtype="str")
        columns["o"] = pd.Series([r[3] for r in rows], dtype=object)
        return pd.DataFrame(columns)

    new = frame(first[:kept] + second)
    write_csv(folder / "p.csv", frame(first), folder / "state")
    write_csv(folder / "p.csv", new, folder / "state")
    assert (folder / "p.csv").read_text() == new.to_csv()


@pytest.mark.parametrize(
    ("second_token", "second_ids", "kept"),
    [
        ("t", [0, 1, 2, 3, 4, 5, 9], 6),  # a new row after the known ones
        ("t", [0, 1, 8, 3, 4, 5, 9], 2),  # row 2 is another row now
        ("u", [0, 1, 2, 3, 4, 5, 9], 0),  # another lineage: its ids say nothing
        ("t", [-1, -1, -1, -1, -1, -1, -1], 0),  # rows without identity
    ],
    ids=["appended", "replaced", "other-lineage", "no-identity"],
)
def test_a_lineage_tells_the_same_rows_without_hashing(tmp_path, monkeypatch, second_token, second_ids, kept):
    first, second = frame(6), frame(7)
    second.loc[2, "lat"] = second.loc[2, "lat"] if kept != 2 else 99.0
    target = tmp_path / "p.csv"
    write_csv(target, first, tmp_path / "state", (("t",), np.arange(6)))
    monkeypatch.setattr("etl.csv_output._row_hashes", lambda frame: pytest.fail("hashed rows"))
    state = cachecodec.load(next((tmp_path / "state").glob("*.cache")), _STATE_KIND)
    assert _shared_rows(state["rows"], ("ids", (second_token,), np.array(second_ids))) == kept
    write_csv(target, second, tmp_path / "state", ((second_token,), np.array(second_ids)))
    assert target.read_text() == second.to_csv()
