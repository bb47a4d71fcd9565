"""CSV output that reuses the bytes of the previous file for the rows that did not change.

A re-run after a few new jobs usually changes only the last rows of a summary (results arrive run by run and
rows follow the runs), yet `DataFrame.to_csv` formats every field again: most of a warm ETL's write. Next to
the written file a state is kept: the frame it was written from and where each row ends in it. A new frame
whose leading rows are strictly the same values (same columns, dtypes, index; floats bit for bit, text as
written) gets the old file's bytes for them and `to_csv` only for the rest.

That is byte-identical to `to_csv` of the whole frame because `to_csv` formats each field on its own for the
dtypes allowed here (numbers, booleans, text, objects as their `str`); other dtypes (dates format per column)
and fields holding line breaks (rows are found by line) always take the full write.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path

import numpy as np
import pandas as pd

from etl.fileio import write_atomic

STATE_VERSION = 1


def write_csv(path: Path, frame: pd.DataFrame, state_dir: Path | None) -> None:
    """`frame.to_csv(path)`, written atomically; with `state_dir`, reusing the previous file's rows."""
    state_file = (
        state_dir / f"csv-{hashlib.sha1(str(path).encode()).hexdigest()[:16]}.pkl" if state_dir else None
    )
    reusable = state_file is not None and _reusable_dtypes(frame)
    kept, prefix, ends = 0, b"", None
    if reusable:
        state = _load_state(state_file, path)
        if state is not None:
            kept = _common_rows(state["frame"], frame)
            if kept:
                with open(path, "rb") as handle:
                    prefix = handle.read(int(state["ends"][kept]))
                ends = state["ends"][: kept + 1]
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
        "frame": frame,
        "ends": ends,
    }
    # No fsync: a torn state fails to load and the next write is a full one.
    write_atomic(
        state_file,
        lambda handle: pickle.dump(state, handle, pickle.HIGHEST_PROTOCOL),
        binary=True,
        durable=False,
    )


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
    try:
        with open(state_file, "rb") as handle:
            state = pickle.load(handle)
        found = os.stat(path)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError, ValueError):
        return None
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        return None
    # The file must be the one written with this state (not replaced or edited since).
    if state["file"] != (found.st_size, found.st_mtime_ns, found.st_ino):
        return None
    return state


def _common_rows(old: pd.DataFrame, new: pd.DataFrame) -> int:
    """How many leading rows the two frames share, value for value as to_csv writes them; 0 when the
    header or a column's dtype differs."""
    if (
        [(type(name), name) for name in old.columns] != [(type(name), name) for name in new.columns]
        or list(old.dtypes) != list(new.dtypes)
        or old.index.name != new.index.name
        or (old.index.start, old.index.step) != (new.index.start, new.index.step)
    ):
        return 0
    common = min(len(old), len(new))
    for position in range(len(new.columns)):
        if not common:
            break
        differs = _differs(old.iloc[:common, position], new.iloc[:common, position])
        if len(differs):
            common = int(differs[0])
    return common


def _differs(old: pd.Series, new: pd.Series) -> np.ndarray:
    """Positions where the two columns (same dtype) would be written differently."""
    dtype = new.dtype
    if isinstance(dtype, np.dtype) and dtype.kind == "f":
        # Bit for bit: -0.0 and 0.0 compare equal but are written differently.
        width = f"u{dtype.itemsize}"
        a, b = old.to_numpy().view(width), new.to_numpy().view(width)
        # NaN is written as an empty field whatever its bits.
        return np.flatnonzero((a != b) & ~(np.isnan(old.to_numpy()) & np.isnan(new.to_numpy())))
    if isinstance(dtype, np.dtype) and dtype.kind in "iub":
        return np.flatnonzero(old.to_numpy() != new.to_numpy())
    # Text and objects: compare what the writer gets (missing values become empty fields, others their str).
    a, b = old.to_numpy(dtype=object), new.to_numpy(dtype=object)
    missing_a, missing_b = pd.isna(a), pd.isna(b)
    if dtype == object:
        a = np.array([str(v) for v in a], dtype=object)
        b = np.array([str(v) for v in b], dtype=object)
    return np.flatnonzero(((a != b) & ~(missing_a & missing_b)) | (missing_a != missing_b))
