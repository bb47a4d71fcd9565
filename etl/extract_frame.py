"""Rows to frames: the rows extract_job gives (etl.extract_job) collected per column layout, one DataFrame
built at the end, and the cached rows of unchanged jobs combined with the fresh ones."""

from __future__ import annotations

import pandas as pd
from pandas.api.types import is_numeric_dtype

from etl.extract_cache import ExtractionCache
from etl.extract_job import TABLE, JobRows, flatten
from etl.steps.extractors import META_COLUMNS

JOB = "__doe_job__"  # the job id of a row (etl.extract_cache): which rows a cached job gave
_SEQ = "__doe_row_order__"


class FrameBuilder:
    """Collects rows as lists grouped by column layout; builds the DataFrame once at the end."""

    def __init__(self) -> None:
        self.layouts: dict[tuple, list[list]] = {}
        self.text_columns: set[str] = set()
        self.job_ids: set[int] = set()
        self._table_layouts: dict[tuple, tuple] = {}
        self.job_id = -1
        self.seq = 0

    def _append(self, layout: tuple, row: list) -> None:
        rows = self.layouts.get(layout)
        if rows is None:
            rows = self.layouts[layout] = []
        row.append(self.job_id)
        row.append(self.seq)
        self.seq += 1
        rows.append(row)

    def add_job(self, meta: tuple, config_flat: dict, rows: JobRows) -> None:
        """One job's rows; `meta` holds the values of META_COLUMNS but the source file."""
        pieces, job_columns, job_file = rows
        self.job_ids.add(self.job_id)
        if not pieces and job_columns:
            row = {**dict(zip(META_COLUMNS, (*meta, job_file))), **config_flat, **job_columns}
            self._append(tuple(row), list(row.values()))
            return
        for piece in pieces:
            if piece[0] == TABLE:
                self._add_table(meta, config_flat, piece[1], piece[2], piece[3], job_columns)
                continue
            base = dict(zip(META_COLUMNS, (*meta, piece[1])))
            base.update(config_flat)
            for record in piece[2]:
                if any(isinstance(value, dict) for value in record.values()):
                    record = flatten(record)
                merged = {**base, **record, **job_columns}
                self._append(tuple(merged), list(merged.values()))

    def _add_table(
        self, meta: tuple, config_flat: dict, rel: str, header: list, rows: list, job_columns: dict
    ) -> None:
        # The column layout depends only on the config keys, the header and the job columns: compute it once.
        layout_key = (tuple(config_flat), tuple(header), tuple(job_columns))
        layout = self._table_layouts.get(layout_key)
        if layout is None:
            self.text_columns.update(header)
            names = (*META_COLUMNS, *config_flat)
            clash = not set(names).isdisjoint(header) or not set(job_columns).isdisjoint((*names, *header))
            layout = None if clash else (*names, *header, *job_columns)
            self._table_layouts[layout_key] = layout or ()
        if not layout:
            base = {**dict(zip(META_COLUMNS, (*meta, rel))), **config_flat}
            for row in rows:
                merged = {**base, **dict(zip(header, row)), **job_columns}
                self._append(tuple(merged), list(merged.values()))
            return
        base_values = [*meta, rel, *config_flat.values()]
        extra_values = [*job_columns.values(), self.job_id]
        width = len(header)
        target = self.layouts.get(layout)
        if target is None:
            target = self.layouts[layout] = []
        for row in rows:
            if len(row) < width:
                row = row + [None] * (width - len(row))
            target.append(base_values + row + extra_values + [self.seq])
            self.seq += 1

    def frame(self) -> pd.DataFrame:
        frames = []
        for layout, rows in self.layouts.items():
            columns = list(zip(*rows))
            frames.append(
                pd.DataFrame({name: list(values) for name, values in zip((*layout, JOB, _SEQ), columns)})
            )
        if not frames:
            return pd.DataFrame(columns=[*META_COLUMNS, JOB])
        if len(frames) == 1:
            frame = frames[0]
        else:
            frame = pd.concat(frames, ignore_index=True, sort=False).sort_values(_SEQ, kind="stable")
        return frame.drop(columns=_SEQ).reset_index(drop=True)


def as_numbers(column: pd.Series) -> pd.Series | None:
    if is_numeric_dtype(column):
        return column
    try:
        return pd.to_numeric(column.replace("", None))
    except (ValueError, TypeError):
        return None


def infer_numbers(frame: pd.DataFrame, columns: set[str]) -> pd.DataFrame:
    """CSV fields arrive as text: convert columns whose every non-empty value is a number (like read_csv)."""
    converted = {}
    for column in columns:
        if column in frame.columns and not is_numeric_dtype(frame[column]):
            values = as_numbers(frame[column])
            if values is not None:
                converted[column] = values
    return frame.assign(**converted) if converted else frame


def combine(
    old: ExtractionCache, builder: FrameBuilder, order: dict[int, int], text_columns: set[str]
) -> pd.DataFrame | None:
    """Rows of unchanged jobs from the cached frame plus the rows just extracted, in walk order, with CSV
    text converted to numbers exactly as `infer_numbers` would on the whole frame; None when that needs text
    the cache no longer has."""
    fresh = builder.frame()
    cached = old.frame
    if cached is None or not len(cached):
        return infer_numbers(fresh, text_columns)
    wanted = cached[JOB].isin(order.keys() - builder.job_ids)
    kept = cached if wanted.all() else cached[wanted]
    if not len(kept):
        return infer_numbers(fresh, text_columns)
    converted = _converted_fresh(fresh, kept, old.numeric, text_columns)
    if converted is None:
        return None
    fresh = fresh.assign(**converted) if converted else fresh
    combined = kept if not len(fresh) else pd.concat([kept, fresh], ignore_index=True, sort=False)
    if len(kept) < len(cached):
        # Rows left: a text column may now hold only numbers.
        combined = infer_numbers(combined, {c for c in text_columns if c not in old.numeric})
    # The kept rows keep their relative (walk) order, and so do the fresh rows: the two parts are in walk
    # order when the fresh jobs are the last ones walked (new runs at the end, the usual case).
    fresh_jobs = builder.job_ids
    if min(map(order.__getitem__, fresh_jobs), default=0) < len(order) - len(fresh_jobs):
        combined = combined.iloc[combined[JOB].map(order).argsort(kind="stable")]
    return combined.reset_index(drop=True)


def _converted_fresh(
    fresh: pd.DataFrame, kept: pd.DataFrame, numeric: set[str], text_columns: set[str]
) -> dict[str, pd.Series] | None:
    """The fresh rows' text columns that become numbers; None when a cached number column got text."""
    converted = {}
    for column in text_columns & set(fresh.columns):
        if column in kept.columns and column not in numeric:
            continue  # text in the cached rows: the column stays text (unless rows left, see combine)
        values = as_numbers(fresh[column])
        if values is not None:
            converted[column] = values
        elif column in numeric:
            return None
    return converted
