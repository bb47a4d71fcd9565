"""The hooks of the bar chart and the default one, which writes the group and bar tick labels."""

from __future__ import annotations

import enum

from etl.steps.colcross.hooks import default_hooks


class BarHooks(str, enum.Enum):
    """When each hook runs, with the keyword arguments it gets."""

    SubplotPre = "BarSubplotPre"  # ax, df_subplot, subplot_id, metric, plot_config, subplot_config, chart
    # ax, part_value, part_error, position, bar_part_id, bar_part_config, metric, plot_config, subplot_config, chart
    ArtistPre = "BarArtistPre"
    ArtistPost = "BarArtistPost"
    # as SubplotPre, plus group_ticks and bar_ticks: {(position, label)}
    SubplotPost = "BarSubplotPost"


@default_hooks.register(BarHooks.SubplotPost)
def group_bar_ticks(
    ax, df_subplot, subplot_id, metric, plot_config, subplot_config, chart, group_ticks, bar_ticks
):
    """Group labels as major ticks; bar labels as minor ticks under them (major ticks if there are no
    group labels)."""
    if group_ticks:
        positions, labels = zip(*sorted(group_ticks), strict=True)
        ax.set_xticks(positions, labels=labels, **chart.group_foreach.label.kwargs)
    if bar_ticks:
        positions, labels = zip(*sorted(bar_ticks), strict=True)
        ax.set_xticks(positions, labels=labels, minor=bool(group_ticks), **chart.bar_foreach.label.kwargs)
