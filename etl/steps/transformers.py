"""Built-in transformers. Each returns a new frame and leaves its input untouched."""

from __future__ import annotations

import ast
import math
import warnings
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from etl.errors import EtlDataError
from etl.lazy import LazyModule
from etl.steps.base import (
    UNREGISTERED_BUILTINS,
    IncrementalResult,
    IncrementalTransformer,
    Lineage,
    Transformer,
    register,
)
from etl.steps.extractors import RUNTIME_PREFIX, EtlWarning

if TYPE_CHECKING:  # real types for the checker; at run time imported on first use
    import numpy as np
    import pandas as pd
else:
    np = LazyModule("numpy")
    pd = LazyModule("pandas")

DEFAULT_AGGS = ["mean", "min", "max", "std", "count"]
# Aggregations that are also groupby methods of the same name and defaults.
GROUPBY_METHODS = frozenset({"mean", "min", "max", "std", "var", "sum", "count", "median"})
FACTORS_MARKER = "$FACTORS$"
# How many of the last values custom_tail averages: fixed for RepAggTransformer, GroupByAggTransformer's default.
TAIL_LENGTH = 5


def factor_columns_of(df: pd.DataFrame) -> list[str]:
    """Union of the rows' factor_columns lists, in order of first appearance."""
    if "factor_columns" not in df.columns:
        return []
    seen: dict[str, None] = {}
    for factors in df["factor_columns"].dropna().map(_hashable_list).unique():
        seen.update(dict.fromkeys(_factor_names(factors)))
    return list(seen)


def _hashable_list(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _factor_names(value: Any) -> tuple[str, ...]:
    """A row's factor list; aggregations group by its text form ("['a', 'b']", as doe-suite's summary CSVs
    hold it), which is read back as the list it stands for."""
    if not isinstance(value, str):
        return tuple(value)
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return (value,)
    return tuple(str(name) for name in parsed) if isinstance(parsed, (list, tuple)) else (value,)


def runtime_columns(df: pd.DataFrame) -> list[str]:
    return [column for column in df.columns if str(column).startswith(RUNTIME_PREFIX)]


def hashable_keys(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Group keys must be hashable: object columns (lists, dicts, mixed) become their str form."""
    converted = {key: _as_text(df[key]) for key in keys if df[key].dtype == object and not _all_text(df[key])}
    return df.assign(**converted) if converted else df


def _all_text(column: pd.Series) -> bool:
    # Most object columns hold only str (already their str form); infer_dtype checks that in C.
    return pd.api.types.infer_dtype(column, skipna=False) == "string"


def _as_text(column: pd.Series) -> pd.Series:
    # Rows of one run share the very same list objects: number the distinct objects (in C) and convert each
    # once, instead of a Python step per row.
    values = column.to_numpy(dtype=object)
    codes, distinct = pd.factorize(np.fromiter(map(id, values), dtype=np.uint64, count=len(values)))
    first_row = np.empty(len(distinct), dtype=np.intp)
    first_row[codes[::-1]] = np.arange(len(values) - 1, -1, -1)
    texts = np.empty(len(distinct), dtype=object)
    for code, row in enumerate(first_row):
        value = values[row]
        texts[code] = value if value is None or isinstance(value, float) and math.isnan(value) else str(value)
    return pd.Series(texts[codes], index=column.index, dtype=object)


def numeric(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    return df.assign(**{column: pd.to_numeric(df[column], errors="coerce") for column in columns})


def require_columns(df: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [column for column in columns if column not in df.columns]
    if missing:
        raise EtlDataError(f"{what} {missing} not in the frame; columns are {list(df.columns)}")


def flatten_agg_columns(frame: pd.DataFrame) -> pd.DataFrame:
    columns = frame.columns
    assert isinstance(columns, pd.MultiIndex)  # (column, aggregation) of a groupby's agg with a list
    frame = frame.copy()
    frame.columns = [f"{column}_{agg}" for column, agg in columns]
    return frame


def agg_spec(agg_functions: list[str], tail_length: int) -> list:
    spec: list = []
    for name in agg_functions:
        if name == "custom_tail":

            def custom_tail(series: pd.Series) -> float:
                return series.tail(tail_length).mean()

            spec.append(custom_tail)
        else:
            spec.append(name)
    return spec


@register
class RepAggTransformer(IncrementalTransformer):
    """Aggregates the repetitions of each run: groups by every column except `rep` and the data columns."""

    doe_suite_options: ClassVar[tuple[str, ...]] = ("ignore_columns", "data_columns", "agg_functions")
    data_columns: list[str]
    ignore_columns: tuple[str, ...] = ()
    agg_functions: list[str] = Field(default_factory=lambda: list(DEFAULT_AGGS))

    def transform_incremental(
        self, df: pd.DataFrame, options: dict, lineage: Lineage | None, previous_state: Any
    ) -> IncrementalResult:
        if df.empty:
            return IncrementalResult(df)
        require_columns(df, self.data_columns, "data_columns")
        frame = df.drop(columns=[c for c in self.ignore_columns if c in df.columns])
        extra = [c for c in runtime_columns(frame) if c not in self.data_columns]
        frame = numeric(frame, self.data_columns)
        runtime_data = [c for c in extra if pd.api.types.is_numeric_dtype(frame[c])]
        frame = frame.drop(columns=[c for c in extra if c not in runtime_data])
        data = [*self.data_columns, *runtime_data]
        keys = [c for c in frame.columns if c not in data and c != "rep"]
        what = ("RepAggTransformer", keys, data, self.agg_functions, TAIL_LENGTH)
        spec = agg_spec(self.agg_functions, TAIL_LENGTH)
        return group_aggregate(frame, keys, data, spec, what, lineage, previous_state)


def plain_means(rows: pd.DataFrame, data: list[str], codes: np.ndarray) -> pd.DataFrame:
    """Per group (codes: group number per row) the mean of each data column, NaN skipped, summed in row order
    without compensation, as doe-suite's pandas did: its published tables show such means digit for digit
    (pandas 2 sums groups with Kahan compensation, which differs in the last digits)."""
    n_groups = int(codes.max()) + 1 if len(codes) else 0
    means = {}
    for column in data:
        values = rows[column].to_numpy(dtype=float, na_value=np.nan)
        present = ~np.isnan(values)
        sums = np.bincount(codes, weights=np.where(present, values, 0.0), minlength=n_groups)
        counts = np.bincount(codes, weights=present, minlength=n_groups)
        with np.errstate(invalid="ignore", divide="ignore"):
            means[column] = np.where(counts > 0, sums / counts, np.nan)
    return pd.DataFrame(means)


def group_aggregate(
    frame: pd.DataFrame,
    keys: list[str],
    data: list[str],
    spec: list,
    what: tuple,
    lineage: Lineage | None,
    previous_state: Any,
) -> IncrementalResult:
    """Aggregates per group of `keys` (groups in the order of their first rows); `what` names the aggregation
    for etl.incremental, which reuses the previous state's result where the lineage allows it."""
    if not keys:
        result = frame[data].agg(spec)
        flat = {f"{column}_{agg}": [result.loc[agg, column]] for column in data for agg in result.index}
        return IncrementalResult(pd.DataFrame(flat))

    names = [f"{column}_{agg}" for column in data for agg in spec]
    distinct_names = len({*names, *keys}) == len(names) + len(keys)
    by_function = distinct_names and all(agg in GROUPBY_METHODS for agg in spec)

    def full(rows: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
        grouping = hashable_keys(rows, keys).groupby(keys, dropna=False, sort=False)
        if not by_function:
            grouped = flatten_agg_columns(grouping[data].agg(spec)).reset_index()
            return grouped, grouping.ngroup().to_numpy()
        # One call per function over all data columns costs less than pandas' per column list aggregation
        # (same kernels, same results), and one frame built at once less than reset_index's inserts.
        selected = grouping[data]
        codes = grouping.ngroup().to_numpy()
        results = {agg: plain_means(rows, data, codes) if agg == "mean" else getattr(selected, agg)()
                   for agg in spec}
        index = next(result.index for agg, result in results.items() if agg != "mean") \
            if any(agg != "mean" for agg in spec) else grouping.size().index
        # Columns of frames without the group index: taking one does not copy that index.
        results = {agg: result.reset_index(drop=True) for agg, result in results.items()}
        columns = {key: index.get_level_values(level) for level, key in enumerate(keys)}
        columns.update((f"{column}_{agg}", results[agg][column].array) for column in data for agg in spec)
        return pd.DataFrame(columns), codes

    from etl.incremental import aggregate

    return aggregate(frame, keys, what, full, lineage, previous_state)


@register
class GroupByAggTransformer(IncrementalTransformer):
    """Aggregates data columns per group; `$FACTORS$` in groupby_columns stands for all factor columns."""

    doe_suite_options: ClassVar[tuple[str, ...]] = (
        "data_columns", "groupby_columns", "agg_functions", "custom_tail_length"
    )
    data_columns: list[str]
    groupby_columns: list[str]
    agg_functions: list[str] = Field(default_factory=lambda: list(DEFAULT_AGGS))
    custom_tail_length: int = TAIL_LENGTH

    def transform_incremental(
        self, df: pd.DataFrame, options: dict, lineage: Lineage | None, previous_state: Any
    ) -> IncrementalResult:
        if df.empty:
            return IncrementalResult(df)
        missing = [column for column in self.data_columns if column not in df.columns]
        if missing:
            warnings.warn(
                f"GroupByAggTransformer: data columns {missing} missing; frame passed on unchanged",
                EtlWarning,
                stacklevel=2,
            )
            return IncrementalResult(df)
        keys: list[str] = []
        for column in self.groupby_columns:
            keys.extend(factor_columns_of(df) if column == FACTORS_MARKER else [column])
        keys = list(dict.fromkeys(keys))
        require_columns(df, keys, "groupby_columns")
        frame = numeric(df, self.data_columns)
        # Runtime columns (RuntimeInfoExtractor) are data: aggregated alongside, never group keys.
        extra = [c for c in runtime_columns(frame) if c not in keys and c not in self.data_columns]
        data = [*self.data_columns, *(c for c in extra if pd.api.types.is_numeric_dtype(frame[c]))]
        spec = agg_spec(self.agg_functions, self.custom_tail_length)
        what = ("GroupByAggTransformer", keys, data, self.agg_functions, self.custom_tail_length)
        return group_aggregate(frame, keys, data, spec, what, lineage, previous_state)


@register
class ConditionalTransformer(Transformer):
    """Where `col` equals a key of `value`, sets `dest` to the mapped value."""

    doe_suite_options: ClassVar[tuple[str, ...]] = ("col", "dest", "value")
    col: str
    dest: str
    value: dict[Any, Any]

    def transform(self, df: pd.DataFrame, options: dict) -> pd.DataFrame:
        require_columns(df, [self.col], "col")
        out = df.copy()
        if self.dest not in out.columns:
            out[self.dest] = None
        for condition, result in self.value.items():
            out.loc[out[self.col] == condition, self.dest] = result
        return out


@register
class FilterColumnTransformer(Transformer):
    """Deprecated (kept for doe-suite designs): keeps rows whose columns equal the given values."""

    doe_suite_options: ClassVar[tuple[str, ...]] = ("filters", "allow_empty_result")
    filters: dict[str, Any] = Field(default_factory=dict)
    allow_empty_result: bool = False

    def transform(self, df: pd.DataFrame, options: dict) -> pd.DataFrame:
        if not self.filters:
            return df.copy()
        require_columns(df, list(self.filters), "filters")
        mask = pd.Series(True, index=df.index)
        for column, wanted in self.filters.items():
            mask &= df[column] == wanted
        out = df[mask]
        if out.empty and not self.allow_empty_result:
            raise EtlDataError(f"filters {self.filters} leave no rows (set allow_empty_result to allow it)")
        return out


class DataFrameMethodTransformer(Transformer):
    """`{df.<method>: {kwargs}}`: calls a public DataFrame method and returns its result."""

    method: str
    kwargs: dict[str, Any] = Field(default_factory=dict)

    def transform(self, df: pd.DataFrame, options: dict) -> pd.DataFrame:
        # Methods like pop/insert/update change the frame they are called on: give them a (copy-on-write) copy.
        result = getattr(df.copy(deep=False), self.method)(**self.kwargs)
        if isinstance(result, pd.Series):
            result = result.to_frame()
        if not isinstance(result, pd.DataFrame):
            raise EtlDataError(f"df.{self.method} returned {type(result).__name__}, not a DataFrame")
        return result


UNREGISTERED_BUILTINS.add(DataFrameMethodTransformer)


# The public DataFrame methods of pandas 3.1, so that checking a `df.<method>` name needs no pandas import;
# a name not listed here is looked up in the installed pandas.
_PANDAS_3_1_METHODS = """
    abs add add_prefix add_suffix agg aggregate align all any apply asfreq asof assign astype at_time
    between_time bfill boxplot clip combine combine_first compare convert_dtypes copy corr corrwith count
    cov cummax cummin cumprod cumsum describe diff div divide dot drop drop_duplicates droplevel dropna
    duplicated eq equals eval ewm expanding explode ffill fillna filter first_valid_index floordiv
    from_arrow from_dict from_records ge get groupby gt head hist idxmax idxmin infer_objects info insert
    interpolate isetitem isin isna isnull items iterrows itertuples join keys kurt kurtosis
    last_valid_index le lt map mask max mean median melt memory_usage merge min mod mode mul multiply ne
    nlargest notna notnull nsmallest nunique pct_change pipe pivot pivot_table plot pop pow prod product
    quantile query radd rank rdiv reindex reindex_like rename rename_axis reorder_levels replace resample
    reset_index rfloordiv rmod rmul rolling round rpow rsub rtruediv sample select select_dtypes sem
    set_axis set_flags set_index shift skew sort_index sort_values sparse squeeze stack std sub subtract
    sum swaplevel tail take to_clipboard to_csv to_dict to_excel to_feather to_hdf to_html to_iceberg
    to_json to_latex to_markdown to_numpy to_orc to_parquet to_period to_pickle to_records to_sql to_stata
    to_string to_timestamp to_xarray to_xml transform transpose truediv truncate tz_convert tz_localize
    unstack update value_counts var where xs
"""
KNOWN_DATAFRAME_METHODS = frozenset(_PANDAS_3_1_METHODS.split())


def dataframe_method_names() -> set[str]:
    return {
        name
        for name in dir(pd.DataFrame)
        if not name.startswith("_") and callable(getattr(pd.DataFrame, name, None))
    }


def is_dataframe_method(name: str) -> bool:
    return name in KNOWN_DATAFRAME_METHODS or (not name.startswith("_") and name in dataframe_method_names())
