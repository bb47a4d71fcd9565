"""CSV output that reuses the bytes of the previous file for the rows that did not change.

A re-run after a few new jobs usually changes only the last rows of a summary (results arrive run by run and
rows follow the runs), yet `DataFrame.to_csv` formats every field again: most of a warm ETL's write. Next to
the written file a state is kept: the columns, dtypes and index, a hash of each row's fields as they are written
(floats bit for bit, text by content, objects by their str) and where each row ends in the file. A new frame
of the same layout whose leading rows hash the same gets the old file's bytes for them and `to_csv` only for
the rest.

That is byte-identical to `to_csv` of the whole frame because `to_csv` formats each field on its own for the
dtypes allowed here (numbers, booleans, text, objects as their `str`); other dtypes (dates format per column)
and fields holding line breaks (rows are found by line) always take the full write.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.util import hash_pandas_object

from etl import cachecodec
from etl.fileio import write_atomic
from etl.incremental import frame_layout, shared_prefix

STATE_VERSION = 3
_STATE_KIND = "csv-state"


def write_csv(
    path: Path, frame: pd.DataFrame, state_dir: Path | None, lineage: tuple[tuple, np.ndarray] | None = None
) -> None:
    """`frame.to_csv(path)`, written atomically; with `state_dir`, reusing the previous file's rows.

    `lineage` (token, one id per row; see ExtractionResult.lineage) says which rows are the same rows as in
    an earlier frame of the same token: then rows need no hash."""
    state_file = (
        state_dir / f"csv-{hashlib.sha1(str(path).encode()).hexdigest()[:16]}.cache" if state_dir else None
    )
    reusable = state_file is not None and _reusable_dtypes(frame)
    if lineage is not None and len(lineage[1]) != len(frame):
        lineage = None
    kept, prefix, ends, rows = 0, b"", None, None
    layout = _layout(frame) if reusable else None

    def row_identities() -> tuple:
        """What tells this frame's rows apart from others: ids in a lineage, else hashes of their fields."""
        return ("ids", *lineage) if lineage is not None else ("hashes", None, _row_hashes(frame))

    if reusable and state_file is not None:
        state = _load_state(state_file, path)
        if state is not None and state["layout"] == layout:
            rows = row_identities()
            kept = _shared_rows(state["rows"], rows)
            if kept:
                prefix_read = _read_prefix(path, int(state["ends"][kept]))
                kept = kept if prefix_read is not None else 0
                ends = state["ends"][: kept + 1] if kept else None
                prefix = prefix_read or b""
    if kept:
        tail = frame.iloc[kept:].to_csv(header=False).encode() if kept < len(frame) else b""
    else:
        tail = frame.to_csv().encode()

    def write(handle) -> None:
        handle.write(prefix)
        handle.write(tail)

    write_atomic(path, write, binary=True)
    if state_file is None:
        return
    if reusable:
        line_ends = np.flatnonzero(np.frombuffer(tail, dtype=np.uint8) == 10) + (1 + len(prefix))
        ends = line_ends if ends is None else np.concatenate([ends, line_ends])
        # One line per row (and the header) means no field holds a line break: rows can be found by line.
        reusable = len(ends) == len(frame) + 1
    if not reusable:
        state_file.unlink(missing_ok=True)
        return
    found = os.stat(path)
    state = {
        "version": STATE_VERSION,
        "file": (found.st_size, found.st_mtime_ns, found.st_ino),
        "layout": layout,
        "rows": rows or row_identities(),
        "ends": ends,
    }
    cachecodec.save(state_file, _STATE_KIND, state)


def _shared_rows(old: tuple, new: tuple) -> int:
    """How many leading rows are the same: by hash, or by id in the same lineage (-1 is no row's id)."""
    return shared_prefix(old[2], new[2]) if old[:2] == new[:2] else 0


def _read_prefix(path: Path, size: int) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            prefix = handle.read(size)
    except OSError:
        return None
    return prefix if len(prefix) == size else None


def _reusable_dtypes(frame: pd.DataFrame) -> bool:
    if not isinstance(frame.index, pd.RangeIndex) or isinstance(frame.columns, pd.MultiIndex):
        return False
    for dtype in frame.dtypes:
        if isinstance(dtype, np.dtype):
            if dtype.kind not in "fiubO":
                return False
        elif not isinstance(dtype, pd.StringDtype):
            return False
    return True


def _load_state(state_file: Path, path: Path) -> dict | None:
    state = cachecodec.load(state_file, _STATE_KIND)  # signed data: a foreign or edited one reads as None
    try:
        found = os.stat(path)
    except OSError:
        return None
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        return None
    # The file must be the one written with this state (not replaced or edited since).
    if state["file"] != (found.st_size, found.st_mtime_ns, found.st_ino):
        return None
    return state


def _layout(frame: pd.DataFrame) -> tuple:
    """What the header and each field's formatting depend on besides the values (and the pandas that
    formats them)."""
    index = frame.index
    assert isinstance(index, pd.RangeIndex)  # see _reusable_dtypes
    return (*frame_layout(frame), index.name, index.start, index.step)


def _row_hashes(frame: pd.DataFrame) -> np.ndarray:
    """One 64-bit hash per row of the fields as to_csv writes them: floats bit for bit (-0.0 and 0.0 compare
    equal but are written differently), text by content, objects by their str (1 == 1.0 == True, yet each is
    written differently), any missing value as the empty field."""
    rows = np.zeros(len(frame), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for position, (_, column) in enumerate(frame.items()):
            values = column.to_numpy()
            dtype = column.dtype
            if isinstance(dtype, np.dtype) and dtype.kind in "fiub":
                if dtype.kind == "f":
                    missing = np.isnan(values)
                    values = values.view(f"u{dtype.itemsize}").astype(np.uint64)
                    values[missing] = _MISSING
                else:
                    values = values.astype(np.uint64)
                fields = _mix(values)
            else:
                if dtype == object:  # noqa: E721 - a numpy dtype compared by value, not a type
                    text = [
                        None if missing else str(value) for value, missing in zip(values, pd.isna(values))
                    ]
                    column = pd.Series(text, dtype=object)
                fields = hash_pandas_object(column, index=False).to_numpy()
                fields = np.where(column.isna().to_numpy(), _MISSING, fields)
            rows = _mix(rows * np.uint64(0x9E3779B97F4A7C15) + fields + np.uint64(position))
    return rows


_MISSING = np.uint64(0x5BD1E9955BD1E995)


def _mix(values: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: every input bit affects every output bit."""
    values = values ^ (values >> np.uint64(30))
    values = values * np.uint64(0xBF58476D1CE4E5B9)
    values = values ^ (values >> np.uint64(27))
    values = values * np.uint64(0x94D049BB133111EB)
    return values ^ (values >> np.uint64(31))
