"""The building blocks of a ColumnCrossPlotLoader configuration: metrics, the data filter, the per-column
iteration (`*_foreach`), the subplot grid, labels, legends, axes and artist options."""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from pydantic import ConfigDict, Field, field_validator

from etl.lazy import LazyModule
from etl.steps.colcross.base import BaseSubplotConfig, ColcrossConfigError, ConfigModel, is_match

if TYPE_CHECKING:  # real types for the checker; at run time imported on first use
    import pandas as pd
else:
    pd = LazyModule("pandas")

METRICS_COLUMN = "$metrics$"


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class Metric(ConfigModel):
    """Where a measurement is (`value_cols`, optional `error_cols`), how to scale it
    (value * multiplicator / divider) and its unit (`{$metric_unit$}` in labels)."""

    value_cols: list[str]
    error_cols: list[str] | None = None
    value_multiplicator: float = 1.0
    error_multiplicator: float = 1.0
    value_divider: float = 1.0
    error_divider: float = 1.0
    unit_label: str | None = None

    _one_or_more = field_validator("value_cols", "error_cols", mode="before")(_as_list)

    @classmethod
    def convert_metrics(cls, metrics: dict[str, Metric], df: pd.DataFrame) -> pd.DataFrame:
        """One copy of the frame per metric, marked in the column `$metrics$`, with that metric's columns
        numeric and scaled."""
        frames = []
        for name, metric in metrics.items():
            columns = [*metric.value_cols, *(metric.error_cols or [])]
            missing = [column for column in columns if column not in df.columns]
            if missing:
                raise ColcrossConfigError(
                    f"metric {name}: columns {missing} are not in the frame; it has {list(df.columns)}"
                )
            scaled = {
                column: pd.to_numeric(df[column]) * metric.value_multiplicator / metric.value_divider
                for column in metric.value_cols
            }
            scaled.update(
                {
                    column: pd.to_numeric(df[column]) * metric.error_multiplicator / metric.error_divider
                    for column in metric.error_cols or []
                }
            )
            frames.append(df.assign(**scaled, **{METRICS_COLUMN: name}))
        return pd.concat(frames, axis=0)


class DataFilter(ConfigModel):
    """`allowed`: per column, the values to keep, in the order they are drawn; other columns keep all."""

    allowed: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("allowed", mode="before")
    @classmethod
    def _values_as_text(cls, value: Any) -> Any:
        # The frame's values are compared as text, so `threads: [1, 2]` means "1" and "2".
        if isinstance(value, dict):
            return {
                key: [str(v) for v in values] if isinstance(values, list) else values
                for key, values in value.items()
            }
        return value

    @classmethod
    def empty(cls) -> DataFilter:
        return cls()

    def apply(self, cols: list[str], df: pd.DataFrame) -> pd.DataFrame:
        """The rows whose values in `cols` are allowed, those columns as ordered categories (text), sorted."""
        filtered = df
        for column in dict.fromkeys(cols):
            if column not in filtered.columns:
                raise ColcrossConfigError(
                    f"column {column!r} is not in the frame; it has {list(filtered.columns)}"
                )
            text = filtered[column].astype(str)
            allowed = self.allowed.get(column) or list(dict.fromkeys(text))
            keep = text.isin(allowed)
            filtered = filtered[keep].assign(
                **{column: pd.Categorical(text[keep], categories=list(dict.fromkeys(allowed)), ordered=True)}
            )
        columns = list(dict.fromkeys(cols))
        return filtered.sort_values(by=columns, kind="stable") if columns else filtered


class LabelFormatter(ConfigModel):
    """`template`: a str.format template over the id of what is labelled (column values, `$metrics$`,
    `$metric_unit$`), values replaced through the subplot's `label_map`."""

    template: str

    def apply(self, data_id: dict[str, Any], subplot_config: BaseSubplotConfig, info: str) -> str:
        labels = {str(key): subplot_config.label(value, data_id) for key, value in data_id.items()}
        try:
            return self.template.format(**labels)
        except (KeyError, IndexError) as error:
            raise ColcrossConfigError(
                f"{info}: template {self.template!r} names {error}, which is not one of {sorted(labels)}"
            ) from None


class KwargsLabelFormatter(LabelFormatter):
    """A label with keyword arguments for the matplotlib call that sets it."""

    kwargs: dict[str, Any] = Field(default_factory=dict)


class LegendConfig(ConfigModel):
    """A legend: the label of each artist (text or template) and the kwargs of `legend(...)`."""

    label: str | LabelFormatter | None = None
    kwargs: dict[str, Any] = Field(default_factory=dict)

    def get_label(self, data_id: dict[str, Any], subplot_config: BaseSubplotConfig) -> str | None:
        if self.label is None or isinstance(self.label, str):
            return self.label
        return self.label.apply(data_id, subplot_config=subplot_config, info="legend")


class ColsForEach(ConfigModel):
    """One item per combination of values of `cols` (in the filter's order) except those matching
    `jp_except`; `label` names each item (tick labels of groups and bars)."""

    cols: list[str]
    jp_except: str | None = None
    label: KwargsLabelFormatter | None = None

    @classmethod
    def empty(cls) -> ColsForEach:
        return cls(cols=[])

    def get_cols(self) -> list[str]:
        return list(self.cols)

    def for_each(self, df: pd.DataFrame, parent_id: dict[str, Any]):
        """(index, rows, id) per combination; every combination of the columns' categories, also those
        without rows (so that grids and groups line up)."""
        if not self.cols:
            yield 0, df, {}
            return
        index = 0
        for key, rows in df.groupby(self.cols, dropna=False, observed=False, sort=True):
            data_id = dict(zip(self.cols, key if isinstance(key, tuple) else (key,), strict=True))
            if self.jp_except is not None and is_match(self.jp_except, {**parent_id, **data_id}, "jp_except"):
                continue
            yield index, rows, data_id
            index += 1


class SubplotGrid(ConfigModel):
    """A grid of subplots: a row per combination of `rows` values, a column per combination of `cols`."""

    class WidthHeight(NamedTuple):
        w: float
        h: float

    rows: list[str]
    cols: list[str]
    jp_except: str | None = None
    share_x: Literal["none", "all", "row", "col"] = "none"
    share_y: Literal["none", "all", "row", "col"] = "row"
    subplot_size: WidthHeight = WidthHeight(2.5, 2.5)
    kwargs: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def empty(cls) -> SubplotGrid:
        return cls(rows=[], cols=[])

    def get_cols(self) -> list[str]:
        return [*self.rows, *self.cols]

    def shape(self, df: pd.DataFrame, parent_id: dict[str, Any]) -> tuple[int, int]:
        cells: dict[tuple, list[tuple]] = {}
        iteration = ColsForEach(cols=self.get_cols(), jp_except=self.jp_except)
        for _i, _rows, data_id in iteration.for_each(df, parent_id):
            row = tuple(data_id[c] for c in self.rows)
            cells.setdefault(row, []).append(tuple(data_id[c] for c in self.cols))
        widths = {len(columns) for columns in cells.values()}
        if len(widths) > 1:
            raise ColcrossConfigError(
                f"the subplots form no grid: rows have {sorted(widths)} columns (check subplot_grid.jp_except)"
            )
        return len(cells), widths.pop() if widths else 0

    def init(self, df: pd.DataFrame, parent_id: dict[str, Any], subplot_size: WidthHeight | None = None):
        """The figure and its axes (always 2-d)."""
        n_rows, n_cols = self.shape(df, parent_id)
        size = subplot_size or self.subplot_size
        return pyplot().subplots(
            nrows=max(n_rows, 1),
            ncols=max(n_cols, 1),
            figsize=(max(n_cols, 1) * size.w, max(n_rows, 1) * size.h),
            sharex=self.share_x,
            sharey=self.share_y,
            squeeze=False,
            **self.kwargs,
        )

    def for_each(self, axs, df: pd.DataFrame, parent_id: dict[str, Any]):
        """((row, col), rows, id) per subplot, row by row."""
        n_cols = len(axs[0])
        iteration = ColsForEach(cols=self.get_cols(), jp_except=self.jp_except)
        for i, rows, data_id in iteration.for_each(df, parent_id):
            yield (i // n_cols, i % n_cols), rows, data_id


class BrokenSubplotGrid(SubplotGrid):
    """A subplot grid whose every subplot is split into a top and a bottom axis (a broken y-axis), with
    `height_ratios` (top, bottom)."""

    height_ratios: tuple[float, float] = (1.0, 2.0)

    def init(self, df: pd.DataFrame, parent_id: dict[str, Any], subplot_size=None):
        """The figure and a grid of (top axis, bottom axis) pairs."""
        n_rows, n_cols = (max(n, 1) for n in self.shape(df, parent_id))
        size = subplot_size or self.subplot_size
        fig, axes = pyplot().subplots(
            nrows=2 * n_rows,
            ncols=n_cols,
            figsize=(n_cols * size.w, n_rows * size.h),
            sharex="col",
            squeeze=False,
            gridspec_kw={"height_ratios": list(self.height_ratios) * n_rows, "hspace": 0.08},
            **self.kwargs,
        )
        pairs = [[(axes[2 * r][c], axes[2 * r + 1][c]) for c in range(n_cols)] for r in range(n_rows)]
        return fig, pairs

    def for_each(self, axs, df: pd.DataFrame, parent_id: dict[str, Any]):
        """((row, col), rows, id, (top axis, bottom axis)) per subplot."""
        for index, rows, data_id in super().for_each(axs, df, parent_id):
            yield index, rows, data_id, axs[index[0]][index[1]]


def round_short_axis_formatter(value: float, _pos) -> str:
    """Tick labels such as 950, 1.2k, 3.5M, 2B (at most one decimal, more for small numbers)."""

    def short(number: float) -> str:
        digits = 4 if abs(number) < 0.001 else 3 if abs(number) < 0.01 else 2 if abs(number) < 0.1 else 1
        text = f"{number:.{digits}f}"
        return text.rstrip("0").rstrip(".") if "." in text else text

    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            text = short(value / scale) + suffix
            return "0.1B" if text == "100M" else text
    return short(value)


class AxisFormatter(str, enum.Enum):
    """The names of `axis_formatter`."""

    round_short = "round_short"


axis_formatter: dict[str, Callable[[float, Any], str]] = {
    AxisFormatter.round_short.value: round_short_axis_formatter
}


class AxisConfig(ConfigModel):
    """An axis: `scale`, `label`, `lim`, `ticks` (kwargs of set_xticks/set_yticks, or how many), `tick_params`
    (kwargs of tick_params, or a list of them) and tick label formatters."""

    class AxisLim(ConfigModel):
        """A limit is a number or a factor of the data's {data_min_scaler|data_max_scaler: f}."""

        min: float | dict[Literal["data_max_scaler", "data_min_scaler"], float] | None = 0.0
        max: float | dict[Literal["data_max_scaler", "data_min_scaler"], float] | None = None

        def limits(self, data_interval) -> tuple[float | None, float | None]:
            def limit(value):
                if not isinstance(value, dict):
                    return value
                if len(value) != 1:
                    raise ColcrossConfigError(f"an axis limit takes one scaler, not {value}")
                ((kind, factor),) = value.items()
                return factor * (data_interval[0] if kind == "data_min_scaler" else data_interval[1])

            return limit(self.min), limit(self.max)

    scale: Literal["linear", "log", "symlog", "logit"] | None = None
    label: LabelFormatter | None = None
    lim: AxisLim | None = None
    ticks: dict | int | None = None
    tick_params: dict | list[dict] | None = None
    major_formatter: AxisFormatter | None = None
    minor_formatter: AxisFormatter | None = None


class ArtistConfig(ConfigModel):
    """The keyword arguments of one artist's matplotlib call (color, hatch, ...), for the artists whose id
    matches `jp_query`; `label` is its legend text or template."""

    model_config = ConfigDict(extra="allow")

    jp_query: str | None = None
    label: LabelFormatter | str | None = None

    @classmethod
    def merge_cumulative(
        cls,
        configs: list[ArtistConfig],
        data_id: dict,
        subplot_config: BaseSubplotConfig,
        info="artist_config",
    ) -> dict:
        """The kwargs of the matching entries, earlier entries winning."""
        kwargs: dict[str, Any] = {}
        for config in reversed(configs):
            if not is_match(config.jp_query, data_id, info):
                continue
            options = {name: getattr(config, name) for name in type(config).model_fields}
            options.update(config.model_extra or {})
            if isinstance(config.label, LabelFormatter):
                options["label"] = config.label.apply(data_id, subplot_config, info)
            kwargs.update({k: v for k, v in options.items() if v is not None or k not in kwargs})
        kwargs.pop("jp_query", None)
        return kwargs
