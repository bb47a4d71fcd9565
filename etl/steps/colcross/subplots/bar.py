"""Grouped, stacked bars: a group per `group_foreach` combination, in it a bar per `bar_foreach`
combination, stacked of a part per `part_foreach` combination and value column of the metric."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import Field

from etl.lazy import LazyModule
from etl.steps.colcross.base import ColcrossConfigError, ConfigModel
from etl.steps.colcross.components import ColsForEach

if TYPE_CHECKING:  # real types for the checker; at run time imported on first use
    import pandas as pd
else:
    pd = LazyModule("pandas")


def calc_positions(group_foreach, inner_foreach, df1, subplot_id, inner_width, inner_padding, group_padding):
    """x positions: (left edge of each bar or box, its center, the center of each group), left to right."""
    centers: list[float] = []
    group_centers: list[float] = []
    position = 0.0
    for _i, group_rows, group_id in group_foreach.for_each(df1, parent_id=subplot_id):
        first = last = position
        for j, (_k, _rows, _id) in enumerate(inner_foreach.for_each(group_rows, {**subplot_id, **group_id})):
            if j == 0:
                first = position
            last = position
            centers.append(position)
            position += inner_width + inner_padding
        group_centers.append((first + last) / 2)
        position += group_padding
    return [center - inner_width / 2 for center in centers], centers, group_centers


class GroupedStackedBarChart(ConfigModel):
    """Bars of `bar_width`, `bar_padding` apart within a group, groups `group_padding` apart."""

    @dataclass
    class BarPartPosition:
        group_center_pos: float
        bar_left_pos: float
        bar_center_pos: float
        bar_part_bottom: float

    group_foreach: ColsForEach = Field(default_factory=ColsForEach.empty)
    bar_foreach: ColsForEach
    part_foreach: ColsForEach = Field(default_factory=ColsForEach.empty)
    bar_width: float = 0.6
    bar_padding: float = 0.0
    group_padding: float = 0.1

    def get_cols(self) -> list[str]:
        return [*self.group_foreach.get_cols(), *self.bar_foreach.get_cols(), *self.part_foreach.get_cols()]

    def plot(self, ax, df1, data_id: dict, metric, subplot_config, plot_config) -> None:
        import gossip

        from etl.steps.colcross.subplots.bar_hooks import BarHooks

        context = {
            "metric": metric,
            "plot_config": plot_config,
            "subplot_config": subplot_config,
            "chart": self,
        }
        gossip.trigger(BarHooks.SubplotPre, ax=ax, df_subplot=df1, subplot_id=data_id, **context)
        group_ticks: set[tuple[float, str]] = set()
        bar_ticks: set[tuple[float, str]] = set()
        for value, error, position, group_id, bar_id, part_id in self.for_each(df1, metric, data_id):
            full_id = {**data_id, **group_id, **bar_id, **part_id}
            config = subplot_config.artist_config(full_id, plot_config)
            artist = {"part_value": value, "part_error": error, "position": position, "bar_part_id": full_id}
            gossip.trigger(BarHooks.ArtistPre, ax=ax, bar_part_config=config, **artist, **context)
            label = config.pop("label", None)
            if label is None and plot_config is not None and plot_config.legend_fig is not None:
                label = plot_config.legend_fig.get_label(full_id, subplot_config=subplot_config)
            ax.bar(
                position.bar_center_pos,
                value,
                width=self.bar_width,
                label=label,
                yerr=error,
                bottom=position.bar_part_bottom,
                **config,
            )
            gossip.trigger(BarHooks.ArtistPost, ax=ax, bar_part_config=config, **artist, **context)
            if self.group_foreach.label is not None:
                text = self.group_foreach.label.apply({**data_id, **group_id}, subplot_config, "group_label")
                group_ticks.add((position.group_center_pos, text))
            if self.bar_foreach.label is not None:
                text = self.bar_foreach.label.apply(
                    {**data_id, **group_id, **bar_id}, subplot_config, "bar_label"
                )
                bar_ticks.add((position.bar_center_pos, text))
        gossip.trigger(
            BarHooks.SubplotPost,
            ax=ax,
            df_subplot=df1,
            subplot_id=data_id,
            group_ticks=group_ticks,
            bar_ticks=bar_ticks,
            **context,
        )

    def for_each(self, df1, metric, subplot_id: dict):
        """(value, error, position, group id, bar id, part id) per bar part, bottom part first."""
        lefts, centers, group_centers = calc_positions(
            self.group_foreach,
            self.bar_foreach,
            df1,
            subplot_id,
            self.bar_width,
            self.bar_padding,
            self.group_padding,
        )
        error_cols = metric.error_cols or [None] * len(metric.value_cols)
        if len(error_cols) != len(metric.value_cols):
            raise ColcrossConfigError(
                f"the metric has {len(metric.value_cols)} value_cols but {len(error_cols)} error_cols"
            )
        bar = 0
        for group, group_rows, group_id in self.group_foreach.for_each(df1, parent_id=subplot_id):
            for _b, bar_rows, bar_id in self.bar_foreach.for_each(group_rows, {**subplot_id, **group_id}):
                bottom = 0.0
                parent = {**subplot_id, **group_id, **bar_id}
                for _p, part_rows, part_id in self.part_foreach.for_each(bar_rows, parent):
                    if len(part_rows) == 0:
                        continue
                    if len(part_rows) > 1:
                        raise ColcrossConfigError(
                            f"{len(part_rows)} rows for the bar part {_readable({**parent, **part_id})}: "
                            "aggregate the rows first or tell them apart by part_foreach or bar_foreach"
                        )
                    for value_col, error_col in zip(metric.value_cols, error_cols, strict=True):
                        value = part_rows[value_col].iloc[0]
                        if pd.isna(value):
                            continue
                        error = None if error_col is None else part_rows[error_col].iloc[0]
                        position = self.BarPartPosition(
                            group_centers[group], lefts[bar], centers[bar], bottom
                        )
                        bottom += value
                        ids = {**part_id, "value_col": value_col, "error_col": error_col}
                        yield value, error, position, group_id, bar_id, ids
                bar += 1


def _readable(data_id: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in data_id.items())
