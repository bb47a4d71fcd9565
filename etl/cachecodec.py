"""Values of the ETL's caches and states as JSON plus raw numeric buffers (see etl.safecache), exactly.

JSON holds None, booleans, ints, floats (NaN and infinities too, bit for bit otherwise: Python writes the
shortest repr that reads back the same) and strings as they are, and lists as arrays. Every other value is a
JSON object with one key, its tag: tuples, dicts (any keys, in order), sets, bytes, dates and times, numpy
scalars and arrays (numeric arrays as buffers, by index into the file's blobs), a few types by name (frame
layouts hold column label types), pandas indexes and frames (columns as buffers, object columns as JSON, a
value held by several cells stored once). Decoding builds only those; a value of any other type cannot be
stored (Unsupported: the caller then keeps no cache, which costs time, never correctness).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from etl import safecache

_PLAIN = frozenset({str, int, float, bool, type(None)})
# Numeric kinds kept as raw buffers: bool, ints, floats, complex, datetime64, timedelta64 (never objects).
_BUFFER_KINDS = frozenset("biufcmM")
_TYPES = {
    name: kind
    for kind in (str, int, float, bool, tuple, type(None), np.int64, np.int32, np.float64, np.bool_, np.str_)
    for name in (f"{kind.__module__}.{kind.__qualname__}",)
}


class Unsupported(TypeError):
    """A value the cache format does not hold."""
_STRING_STORAGES: dict[str, Literal["python", "pyarrow"]] = {"python": "python", "pyarrow": "pyarrow"}


def encode(value: Any, blobs: list[bytes]) -> Any:
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is list:
        return _items(value, blobs)
    if kind is tuple:
        return {"t": _items(value, blobs)}
    if kind is dict:
        return {"d": [_items(list(value), blobs), _items(list(value.values()), blobs)]}
    if kind is set or kind is frozenset:
        return {"s" if kind is set else "fs": _items(list(value), blobs)}
    if kind is bytes:
        return {"b": base64.b64encode(value).decode()}
    if kind is np.ndarray:
        return _array(value, blobs)
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return {"n": [value.dtype.str, value.item()]}
    if kind is pd.DataFrame:
        return _frame(value, blobs)
    if isinstance(value, pd.Index):
        return _index(value, blobs)
    if kind is type and f"{value.__module__}.{value.__qualname__}" in _TYPES:
        return {"y": f"{value.__module__}.{value.__qualname__}"}
    if value is pd.NA:
        return {"NA": 0}
    if value is pd.NaT:
        return {"NaT": 0}
    if kind is pd.Timestamp and value.tz is None:
        return {"ts": [value.value, value.unit]}
    if kind is dt.datetime and (value.tzinfo is None or _fixed_offset(value)):
        return {"dt": value.isoformat()}
    if kind is dt.date:
        return {"da": value.isoformat()}
    if kind is dt.time and value.tzinfo is None:
        return {"ti": value.isoformat()}
    if kind is dt.timedelta:
        return {"td": [value.days, value.seconds, value.microseconds]}
    raise Unsupported(f"{kind.__module__}.{kind.__qualname__}")


def _fixed_offset(value: dt.datetime) -> bool:
    """A zone isoformat keeps: a fixed offset with its default name."""
    zone = value.tzinfo
    return type(zone) is dt.timezone and zone.tzname(None) == dt.timezone(zone.utcoffset(None)).tzname(None)


def _items(values: list | tuple, blobs: list[bytes]) -> list:
    if set(map(type, values)) <= _PLAIN:
        return list(values)
    return [encode(value, blobs) for value in values]


def _blob(blobs: list[bytes], data: bytes) -> int:
    blobs.append(data)
    return len(blobs) - 1


def _array(array: np.ndarray, blobs: list[bytes]) -> dict:
    if array.dtype.kind in _BUFFER_KINDS:
        data = np.ascontiguousarray(array).tobytes()
        return {"a": [array.dtype.str, list(array.shape), _blob(blobs, data)]}
    if array.dtype == object and array.ndim == 1:
        return _objects(array, blobs)
    raise Unsupported(f"numpy array of {array.dtype}")


def _objects(array: np.ndarray, blobs: list[bytes]) -> dict:
    values = array.tolist()  # the cells' own objects (for an object array)
    if set(map(type, values)) <= _PLAIN:
        return {"o": values}
    # A value several cells hold (a run's config list in each of its rows) is stored and decoded once.
    identities = np.fromiter(map(id, values), dtype=np.intp, count=len(values))
    _, first, codes = np.unique(identities, return_index=True, return_inverse=True)
    table = [values[position] for position in first.tolist()]
    return {"oi": [_items(table, blobs), _array(codes.astype(np.int64), blobs)]}


def _column(values: pd.Series | pd.Index, blobs: list[bytes]) -> dict:
    """A column's (or an index's) values."""
    dtype = values.dtype
    if isinstance(dtype, np.dtype):
        return _array(values.to_numpy(), blobs)
    if isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow":
        return {"sa": [_na_name(dtype), _blob(blobs, _arrow_stream(values.array.__arrow_array__()))]}
    if isinstance(dtype, pd.StringDtype):
        text = values.to_numpy(dtype=object)
        missing = pd.isna(text)
        listed = [None if gone else value for value, gone in zip(text.tolist(), missing.tolist())]
        if not set(map(type, listed)) <= {str, type(None)}:
            raise Unsupported("a string column holding other values")
        return {"st": [dtype.storage, _na_name(dtype), listed]}
    raise Unsupported(f"a column of {dtype}")


def _na_name(dtype: pd.StringDtype) -> str:
    return "nan" if isinstance(dtype.na_value, float) else "NA"  # NaN or pd.NA


def _arrow_stream(values) -> bytes:
    """Arrow's own buffers (IPC stream format: data, no code), as pandas keeps a str column."""
    import pyarrow as pa

    table = pa.table({"v": values})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _index(index: pd.Index, blobs: list[bytes]) -> dict:
    if type(index) is pd.RangeIndex:
        return {"ir": [index.start, index.stop, index.step, encode(index.name, blobs)]}
    if type(index) is pd.MultiIndex:
        levels = [_index(level, blobs) for level in index.levels]
        codes = [_array(np.asarray(code), blobs) for code in index.codes]
        return {"im": [levels, codes, _items(list(index.names), blobs)]}
    if type(index) is pd.Index:
        return {"ix": [_column(index, blobs), encode(index.name, blobs)]}
    raise Unsupported(type(index).__name__)


def _frame(frame: pd.DataFrame, blobs: list[bytes]) -> dict:
    if frame.attrs:
        raise Unsupported("a frame with attrs")
    columns = [_column(frame.iloc[:, position], blobs) for position in range(frame.shape[1])]
    return {"F": [_index(frame.columns, blobs), _index(frame.index, blobs), columns]}


def decoder(blobs: list[memoryview]):
    """The object_hook that turns tagged JSON objects (bottom-up) back into values."""

    def array(spec: list) -> np.ndarray:
        dtype, shape, blob = spec
        dtype = np.dtype(dtype)
        if dtype.kind not in _BUFFER_KINDS:
            raise ValueError(f"no buffer of {dtype}")
        return np.frombuffer(blobs[blob], dtype=dtype).reshape(shape).copy()

    def objects(values: list) -> np.ndarray:
        found = np.empty(len(values), dtype=object)
        if set(map(type, values)) <= _PLAIN:
            found[:] = values
        else:
            for position, value in enumerate(values):
                found[position] = value  # one by one: a list is a cell's value, not a row of cells
        return found

    def table(spec: list) -> np.ndarray:
        values, codes = spec
        return objects(values)[codes]

    def string_dtype(storage: str, na: str) -> pd.StringDtype[Any]:
        known = _STRING_STORAGES.get(storage)
        if known is None:
            raise ValueError(f"no string storage {storage!r}")
        return pd.StringDtype(known, na_value=np.nan if na == "nan" else pd.NA)

    def strings(spec: list):
        storage, na, values = spec
        return pd.array(values, dtype=string_dtype(storage, na))

    def arrow_strings(spec: list):
        import pyarrow as pa

        na, blob = spec
        # A copy: the column must not keep the whole file's bytes alive.
        column = pa.ipc.open_stream(pa.py_buffer(bytes(blobs[blob]))).read_all().column(0)
        dtype = string_dtype("pyarrow", na)
        # pandas-stubs lack the dtype argument that pandas 3 has.
        return pd.arrays.ArrowStringArray(column, dtype=dtype)  # type: ignore[call-arg]

    def multi(spec: list) -> pd.MultiIndex:
        levels, codes, names = spec
        return pd.MultiIndex(levels=levels, codes=codes, names=names, verify_integrity=False)

    def frame(spec: list) -> pd.DataFrame:
        columns, index, values = spec
        if not values:
            return pd.DataFrame(index=index, columns=columns)
        # Series of the stored dtype: pandas would take an object column of strings for a str column.
        found = pd.DataFrame(
            {position: pd.Series(data, dtype=data.dtype, copy=False) for position, data in enumerate(values)},
            copy=False,
        )
        found.index = index
        found.columns = columns
        return found

    tags: dict[str, Callable[[Any], Any]] = {
        "t": tuple,
        "d": lambda spec: dict(zip(*spec)),
        "s": set,
        "fs": frozenset,
        "b": base64.b64decode,
        "a": array,
        "o": objects,
        "oi": table,
        "st": strings,
        "sa": arrow_strings,
        "n": lambda spec: np.dtype(spec[0]).type(spec[1]) if np.dtype(spec[0]).kind in "biuf" else None,
        "y": _TYPES.__getitem__,
        "NA": lambda _: pd.NA,
        "NaT": lambda _: pd.NaT,
        "ts": lambda spec: pd.Timestamp(spec[0], unit="ns").as_unit(spec[1]),
        "dt": dt.datetime.fromisoformat,
        "da": dt.date.fromisoformat,
        "ti": dt.time.fromisoformat,
        "td": lambda spec: dt.timedelta(*spec),
        "ir": lambda spec: pd.RangeIndex(spec[0], spec[1], spec[2], name=spec[3]),
        "im": multi,
        "ix": lambda spec: pd.Index(spec[0], dtype=spec[0].dtype, name=spec[1], copy=False),
        "F": frame,
    }

    def hook(obj: dict) -> Any:
        ((tag, spec),) = obj.items()
        return tags[tag](spec)

    return hook


def dumps(value: Any) -> tuple[dict | Any, list[bytes]]:
    blobs: list[bytes] = []
    return encode(value, blobs), blobs


def loads(text: bytes | memoryview, blobs: list[memoryview]) -> Any:
    return json.loads(bytes(text), object_hook=decoder(blobs))


def save(path: Path, kind: str, value: Any) -> bool:
    """Store `value` as a signed cache file (etl.safecache); False, and no file left, when it cannot be
    stored (a value of another type, no key): an older file must not stand for it."""
    try:
        header, blobs = dumps(value)
        if safecache.write(path, kind, header, blobs):
            return True
    except (Unsupported, ValueError):
        pass
    Path(path).unlink(missing_ok=True)
    return False


def load(path: Path | None, kind: str) -> Any:
    """What `save` stored, or None when there is nothing trustworthy to read."""
    found = safecache.read(path, kind) if path is not None else None
    if found is None:
        return None
    try:
        return loads(*found)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        return None
