"""The hooks of a ColumnCrossPlotLoader (gossip hooks, named as in doe-suite) and the default ones, which
apply the subplot's title, legend and axes and the figure's legend. A project adds its own through a
loader's `blueprint()` (installed in its `setup_handlers`)."""

from __future__ import annotations

import enum

import gossip

from etl.steps.colcross.components import AxisConfig, axis_formatter

default_hooks = gossip.Blueprint()


class CcpHooks(str, enum.Enum):
    """When each hook runs, with the keyword arguments it gets."""

    DataPreMetrics = "DataPreMetrics"  # df, loader
    DataPreFilter = "DataPreFilter"  # df, loader
    DataPreGroup = "DataPreGroup"  # df, loader
    FigPreInit = "FigPreInit"  # df_plot, plot_id, loader
    FigPreGroup = "FigPreGroup"  # fig, axs, df_plot, plot_id, plot_config, loader
    SubplotPreConfigMerge = (
        "SubplotPreConfigMerge"  # df_subplot, subplot_id, plot_config, cum_subplot_config, loader
    )
    SubplotPreChart = "SubplotPreChart"  # ax, df_subplot, subplot_id, plot_config, subplot_config, loader
    SubplotPostChart = "SubplotPostChart"  # same as SubplotPreChart
    FigPost = "FigPost"  # fig, axs, df_plot, plot_id, plot_config, loader


def _unique_legend_entries(handles, labels) -> tuple[list, list]:
    seen: dict[str, object] = {}
    for handle, label in zip(handles, labels, strict=True):
        seen.setdefault(label, handle)
    return list(seen.values()), list(seen)


@default_hooks.register(CcpHooks.SubplotPostChart)
def ax_title(ax, df_subplot, subplot_id, plot_config, subplot_config, loader):
    if subplot_config.ax_title is not None:
        ax.set_title(
            subplot_config.ax_title.apply(subplot_id, subplot_config=subplot_config, info="ax_title")
        )


@default_hooks.register(CcpHooks.SubplotPostChart)
def ax_legend(ax, df_subplot, subplot_id, plot_config, subplot_config, loader):
    if subplot_config.legend_ax is not None and subplot_config.legend_ax.label is not None:
        handles, labels = _unique_legend_entries(*ax.get_legend_handles_labels())
        ax.legend(handles, labels, **subplot_config.legend_ax.kwargs)


def _apply_axis(ax, which: str, config: AxisConfig, subplot_id, subplot_config) -> None:
    from matplotlib.ticker import FuncFormatter

    axis = ax.xaxis if which == "x" else ax.yaxis
    if config.scale is not None:
        getattr(ax, f"set_{which}scale")(config.scale)
    if config.label is not None:
        text = config.label.apply(subplot_id, subplot_config=subplot_config, info=f"{which}axis.label")
        getattr(ax, f"set_{which}label")(text)
    if config.lim is not None:
        low, high = config.lim.limits(axis.get_data_interval())
        getattr(ax, f"set_{which}lim")(low, high)
    if isinstance(config.ticks, int):
        import numpy as np

        low, high = getattr(ax, f"get_{which}lim")()
        getattr(ax, f"set_{which}ticks")(np.linspace(low, high, config.ticks))
    elif config.ticks is not None:
        getattr(ax, f"set_{which}ticks")(**config.ticks)
    params = config.tick_params
    for kwargs in params if isinstance(params, list) else [params] if params is not None else []:
        ax.tick_params(**kwargs)
    if config.major_formatter is not None:
        axis.set_major_formatter(FuncFormatter(axis_formatter[config.major_formatter]))
    if config.minor_formatter is not None:
        axis.set_minor_formatter(FuncFormatter(axis_formatter[config.minor_formatter]))


@default_hooks.register(CcpHooks.SubplotPostChart)
def axis(ax, df_subplot, subplot_id, plot_config, subplot_config, loader):
    for which, config in (("x", subplot_config.xaxis), ("y", subplot_config.yaxis)):
        if config is not None:
            _apply_axis(ax, which, config, subplot_id, subplot_config)


@default_hooks.register(CcpHooks.FigPost)
def fig_legend(fig, axs, df_plot, plot_id, plot_config, loader):
    if plot_config is None or plot_config.legend_fig is None:
        return
    handles, labels = [], []
    for ax in axs.flat:
        more_handles, more_labels = ax.get_legend_handles_labels()
        handles += more_handles
        labels += more_labels
    fig.legend(*_unique_legend_entries(handles, labels), **plot_config.legend_fig.kwargs)
