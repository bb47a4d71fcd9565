"""The hooks of the box plot chart and the default one, which writes the group and box tick labels."""

from __future__ import annotations

import enum

from etl.steps.colcross.hooks import default_hooks


class BoxHooks(str, enum.Enum):
    """When each hook runs, with the keyword arguments it gets."""

    SubplotPre = "BoxSubplotPre"  # ax, df_subplot, subplot_id, metric, plot_config, subplot_config, chart
    # ax, part_values, position, box_id, box_config, metric, plot_config, subplot_config, chart
    ArtistPre = "BoxArtistPre"
    ArtistPost = "BoxArtistPost"
    # as SubplotPre, plus group_ticks and box_ticks: {(position, label)}
    SubplotPost = "BoxSubplotPost"


@default_hooks.register(BoxHooks.SubplotPost)
def group_box_ticks(
    ax, df_subplot, subplot_id, metric, plot_config, subplot_config, chart, group_ticks, box_ticks
):
    if group_ticks:
        positions, labels = zip(*sorted(group_ticks), strict=True)
        ax.set_xticks(positions, labels=labels, **chart.group_foreach.label.kwargs)
    if box_ticks:
        positions, labels = zip(*sorted(box_ticks), strict=True)
        ax.set_xticks(positions, labels=labels, minor=bool(group_ticks), **chart.box_foreach.label.kwargs)
