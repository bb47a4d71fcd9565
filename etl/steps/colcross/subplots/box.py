"""Grouped box plots: a group per `group_foreach` combination, in it a box per `box_foreach` combination
(and value column of the metric) over all rows of that combination."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field

from etl.steps.colcross.base import ColcrossConfigError, ConfigModel
from etl.steps.colcross.components import ColsForEach
from etl.steps.colcross.subplots.bar import calc_positions


class GroupedBoxplotChart(ConfigModel):
    """Boxes of `box_width`, `box_padding` apart within a group, groups `group_padding` apart."""

    @dataclass
    class Position:
        group_center_pos: float
        box_left_pos: float
        box_center_pos: float

    group_foreach: ColsForEach = Field(default_factory=ColsForEach.empty)
    box_foreach: ColsForEach
    part_foreach: ColsForEach = Field(default_factory=ColsForEach.empty)
    box_width: float = 0.6
    box_padding: float = 0.0
    group_padding: float = 0.1

    def get_cols(self) -> list[str]:
        return [*self.group_foreach.get_cols(), *self.box_foreach.get_cols(), *self.part_foreach.get_cols()]

    def plot(self, ax, df1, data_id: dict, metric, subplot_config, plot_config) -> None:
        import gossip

        from etl.steps.colcross.subplots.box_hooks import BoxHooks

        context = {
            "metric": metric,
            "plot_config": plot_config,
            "subplot_config": subplot_config,
            "chart": self,
        }
        gossip.trigger(BoxHooks.SubplotPre, ax=ax, df_subplot=df1, subplot_id=data_id, **context)
        group_ticks: set[tuple[float, str]] = set()
        box_ticks: set[tuple[float, str]] = set()
        for values, position, group_id, box_id, part_id in self.for_each(df1, metric, data_id):
            full_id = {**data_id, **group_id, **box_id, **part_id}
            config = subplot_config.artist_config(full_id, plot_config)
            artist = {"part_values": values, "position": position, "box_id": full_id}
            gossip.trigger(BoxHooks.ArtistPre, ax=ax, box_config=config, **artist, **context)
            label = config.pop("label", None)
            labels = {} if label is None else {"tick_labels": [label], "label": label}
            ax.boxplot(
                values, positions=[position.box_center_pos], widths=[self.box_width], **labels, **config
            )
            gossip.trigger(BoxHooks.ArtistPost, ax=ax, box_config=config, **artist, **context)
            if self.group_foreach.label is not None:
                text = self.group_foreach.label.apply({**data_id, **group_id}, subplot_config, "group_label")
                group_ticks.add((position.group_center_pos, text))
            if self.box_foreach.label is not None:
                text = self.box_foreach.label.apply(
                    {**data_id, **group_id, **box_id}, subplot_config, "box_label"
                )
                box_ticks.add((position.box_center_pos, text))
        gossip.trigger(
            BoxHooks.SubplotPost,
            ax=ax,
            df_subplot=df1,
            subplot_id=data_id,
            group_ticks=group_ticks,
            box_ticks=box_ticks,
            **context,
        )

    def for_each(self, df1, metric, subplot_id: dict):
        """(values, position, group id, box id, part id) per box."""
        if metric.error_cols is not None:
            raise ColcrossConfigError("a box plot shows the values' spread: its metric takes no error_cols")
        lefts, centers, group_centers = calc_positions(
            self.group_foreach,
            self.box_foreach,
            df1,
            subplot_id,
            self.box_width,
            self.box_padding,
            self.group_padding,
        )
        box = 0
        for group, group_rows, group_id in self.group_foreach.for_each(df1, parent_id=subplot_id):
            for _b, box_rows, box_id in self.box_foreach.for_each(group_rows, {**subplot_id, **group_id}):
                parent = {**subplot_id, **group_id, **box_id}
                for _p, part_rows, part_id in self.part_foreach.for_each(box_rows, parent):
                    for value_col in metric.value_cols:
                        position = self.Position(group_centers[group], lefts[box], centers[box])
                        yield (
                            part_rows[value_col].dropna(),
                            position,
                            group_id,
                            box_id,
                            {
                                **part_id,
                                "value_col": value_col,
                            },
                        )
                box += 1
