"""ColumnCrossPlotLoader: one figure per `fig_foreach` combination, a grid of subplots in it
(`subplot_grid`, or per figure `cum_plot_config[].subplot_grid`), a chart per subplot (`cum_subplot_config[].chart`). Every level is chosen
by columns of the frame; the cumulative lists are merged per figure, subplot and artist from the entries whose
`jp_query` matches (earlier entries win). Each figure is written as `<id>.pdf` with its data as `<id>.html`,
the id being its `fig_foreach` values as `col=value` joined by `_` (`$metrics$=time.pdf`).

Projects extend it as in doe-suite: subclass `BaseColumnCrossPlotLoader`, add fields (to the loader or to a
`SubplotConfig` subclass) and register gossip hooks on the subclass's `blueprint()`, installed by its
`setup_handlers`."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import Field

from etl.steps.base import register
from etl.steps.colcross.base import BasePlotConfig, BaseSubplotConfig, ColcrossConfigError
from etl.steps.colcross.components import (
    METRICS_COLUMN,
    ArtistConfig,
    AxisConfig,
    BrokenSubplotGrid,
    ColsForEach,
    DataFilter,
    LabelFormatter,
    LegendConfig,
    Metric,
    SubplotGrid,
)
from etl.steps.colcross.subplots.bar import GroupedStackedBarChart
from etl.steps.colcross.subplots.box import GroupedBoxplotChart
from etl.steps.plots import PlotLoader

if TYPE_CHECKING:
    import pandas as pd

# The id key a label names the subplot's unit with: `{$metric_unit$}`.
METRIC_UNIT = "$metric_unit$"
# One gossip blueprint per loader class, for the hooks a project registers on it.
_blueprints: dict[type, Any] = {}


def escape_dict_str(d: dict) -> str:
    """A figure id as a file name: `key=value` pairs joined by `_`, without dots and spaces
    (`{"$metrics$": "time"}` -> `$metrics$=time`)."""
    text = "_".join(f"{str(key).strip()}={str(value).strip()}" for key, value in d.items())
    return text.replace(".", "").replace(" ", "")


class PlotConfig(BasePlotConfig):
    """A figure: its legend (`legend_fig`) and its grid of subplots (`subplot_grid`)."""

    legend_fig: LegendConfig | None = None
    subplot_grid: SubplotGrid | None = None

    def get_cols(self) -> list[str]:
        return self.subplot_grid.get_cols() if self.subplot_grid is not None else []


class SubplotConfig(BaseSubplotConfig):
    """A subplot: its chart, `label_map` (data value -> shown text), title, legend, axes and the options of
    each artist (`cum_artist_config`)."""

    chart: GroupedStackedBarChart | GroupedBoxplotChart | None = None
    label_map: dict[str, str] | None = None
    ax_title: LabelFormatter | None = None
    legend_ax: LegendConfig | None = None
    xaxis: AxisConfig | None = None
    yaxis: AxisConfig | None = None
    cum_artist_config: list[ArtistConfig] | None = None

    def get_cols(self) -> list[str]:
        return self.chart.get_cols() if self.chart is not None else []

    def create_chart(self, ax, df1, data_id: dict, metric: Metric, plot_config) -> None:
        if self.chart is None:
            raise ColcrossConfigError(f"no cum_subplot_config entry for subplot {data_id} sets a chart")
        self.chart.plot(
            ax=ax, df1=df1, data_id=data_id, metric=metric, subplot_config=self, plot_config=plot_config
        )

    def artist_config(self, artist_id: dict, plot_config) -> dict:
        """The artist's kwargs; its label defaults to the figure's or the subplot's legend label."""
        configs = list(self.cum_artist_config or [])
        legend = plot_config.legend_fig if plot_config is not None else None
        if legend is None or legend.label is None:
            legend = self.legend_ax
        if legend is not None and legend.label is not None:
            configs.append(ArtistConfig(label=legend.get_label(artist_id, subplot_config=self)))
        return ArtistConfig.merge_cumulative(configs, data_id=artist_id, subplot_config=self)

    def label(self, lbl: Any, data_id: dict) -> Any:
        return lbl if self.label_map is None else self.label_map.get(lbl, lbl)


class BaseColumnCrossPlotLoader(PlotLoader):
    """The ColumnCrossPlotLoader without hooks of its own (`setup_handlers`); subclass it to add some.
    An empty frame gives no figures."""

    data_filter: DataFilter = Field(default_factory=DataFilter.empty)
    fig_foreach: ColsForEach = Field(default_factory=ColsForEach.empty)
    # doe-suite's place for the grid; a `cum_plot_config` entry's own grid takes precedence for its figures
    subplot_grid: SubplotGrid | None = None
    metrics: dict[str, Metric]
    # Sequences: a subclass narrows them to its own config classes (BrokenColumnCrossPlotLoader).
    cum_plot_config: Sequence[PlotConfig] | None = Field(default_factory=list)
    cum_subplot_config: Sequence[SubplotConfig]

    @abc.abstractmethod
    def setup_handlers(self) -> None:
        """Install the loader's hooks (the defaults are installed before)."""

    @classmethod
    def blueprint(cls):
        """The gossip blueprint of this loader class: register hooks on it, install it in setup_handlers."""
        if cls not in _blueprints:
            import gossip

            _blueprints[cls] = gossip.Blueprint()
        return _blueprints[cls]

    def collect_cols(self) -> list[str]:
        """Every column the figures are split by (filtered and ordered by `data_filter`)."""
        cols = self.fig_foreach.get_cols()
        if self.subplot_grid is not None:
            cols += self.subplot_grid.get_cols()
        for config in self.cum_plot_config or []:
            cols += config.get_cols()
        for subplot_config in self.cum_subplot_config:
            cols += subplot_config.get_cols()
        return cols

    def load(self, df: pd.DataFrame, options: dict, etl_info: dict) -> None:
        if df.empty:
            return
        output_dir = self.get_output_dir(etl_info)
        for plot_id, df_plot, fig in self.plot(df):
            filename = escape_dict_str(plot_id) if plot_id else "out"
            self.save_data(df_plot, filename=filename, output_dir=output_dir)
            self.save_plot(fig, filename=filename, output_dir=output_dir, output_filetypes=["pdf"])

    def plot(self, df: pd.DataFrame) -> list[tuple[dict, pd.DataFrame, Any]]:
        """(figure id, its rows, the figure) per figure."""
        import gossip

        from etl.steps.colcross.hooks import CcpHooks, default_hooks
        from etl.steps.colcross.subplots import bar_hooks, box_hooks  # noqa: F401  (their default hooks)

        if df.empty:
            return []
        for hook in gossip.get_all_hooks():
            hook.unregister_all()
        default_hooks.install()
        self.setup_handlers()
        df = df.copy()  # hooks get the frame; the caller's stays as it was
        gossip.trigger(CcpHooks.DataPreMetrics, df=df, loader=self)
        if self.metrics is not None:
            df = Metric.convert_metrics(self.metrics, df)
        gossip.trigger(CcpHooks.DataPreFilter, df=df, loader=self)
        df = self.data_filter.apply(cols=self.collect_cols(), df=df)
        gossip.trigger(CcpHooks.DataPreGroup, df=df, loader=self)
        figures = []
        for _i, df_plot, plot_id in self.fig_foreach.for_each(df, parent_id={}):
            gossip.trigger(CcpHooks.FigPreInit, df_plot=df_plot, plot_id=plot_id, loader=self)
            plot_config = None
            if self.cum_plot_config:
                plot_config = type(self.cum_plot_config[0]).merge_cumulative(
                    self.cum_plot_config, plot_id=plot_id
                )
            grid = self.grid_for(plot_config)
            fig, axs = grid.init(df=df_plot, parent_id=plot_id)
            figure = {"fig": fig, "df_plot": df_plot, "plot_id": plot_id, "plot_config": plot_config}
            gossip.trigger(CcpHooks.FigPreGroup, axs=axs, loader=self, **figure)
            for index, df_subplot, subplot_id, axes in self.subplots(grid, axs, df_plot, plot_id):
                metric = self.metrics[self._metric_name(plot_id, subplot_id)]
                subplot_id[METRIC_UNIT] = metric.unit_label
                data_id = {**plot_id, **subplot_id, "subplot_row_idx": index[0], "subplot_col_idx": index[1]}
                gossip.trigger(
                    CcpHooks.SubplotPreConfigMerge,
                    df_subplot=df_subplot,
                    subplot_id=data_id,
                    plot_config=plot_config,
                    cum_subplot_config=self.cum_subplot_config,
                    loader=self,
                )
                if not self.cum_subplot_config:
                    raise ColcrossConfigError("cum_subplot_config is empty: it needs an entry with a chart")
                config = type(self.cum_subplot_config[0]).merge_cumulative(
                    self.cum_subplot_config, data_id=data_id
                )
                if config is None:
                    raise ColcrossConfigError(f"no cum_subplot_config entry matches subplot {data_id}")
                self.draw_subplot(axes, df_subplot, data_id, metric, plot_config, config)
            gossip.trigger(CcpHooks.FigPost, axs=self.all_axes(axs), loader=self, **figure)
            figures.append((plot_id, df_plot, fig))
        return figures

    def grid_for(self, plot_config: PlotConfig | None) -> SubplotGrid:
        if plot_config is not None and plot_config.subplot_grid is not None:
            return plot_config.subplot_grid
        return self.subplot_grid if self.subplot_grid is not None else SubplotGrid.empty()

    def subplots(self, grid: SubplotGrid, axs, df_plot, plot_id: dict):
        """((row, col), rows, subplot id, the subplot's axes) per subplot."""
        for index, df_subplot, subplot_id in grid.for_each(axs, df=df_plot, parent_id=plot_id):
            yield index, df_subplot, subplot_id, [axs[index]]

    def all_axes(self, axs):
        return axs

    def draw_subplot(
        self, axes: list, df_subplot, data_id: dict, metric: Metric, plot_config, config
    ) -> None:
        import gossip

        from etl.steps.colcross.hooks import CcpHooks

        (ax,) = axes
        subplot = {"ax": ax, "df_subplot": df_subplot, "subplot_id": data_id, "plot_config": plot_config}
        gossip.trigger(CcpHooks.SubplotPreChart, subplot_config=config, loader=self, **subplot)
        config.create_chart(ax=ax, df1=df_subplot, data_id=data_id, metric=metric, plot_config=plot_config)
        gossip.trigger(CcpHooks.SubplotPostChart, subplot_config=config, loader=self, **subplot)

    def _metric_name(self, plot_id: dict, subplot_id: dict) -> str:
        for ids in (plot_id, subplot_id):
            if METRICS_COLUMN in ids:
                return ids[METRICS_COLUMN]
        if len(self.metrics) != 1:
            raise ColcrossConfigError(
                f"{len(self.metrics)} metrics: add $metrics$ to fig_foreach or subplot_grid to say where each goes"
            )
        # As in doe-suite: the only metric becomes part of the figure's id (and file name).
        plot_id[METRICS_COLUMN] = next(iter(self.metrics))
        return plot_id[METRICS_COLUMN]


@register
class ColumnCrossPlotLoader(BaseColumnCrossPlotLoader):
    """Figures of grouped (stacked) bars or box plots, configured without Python."""

    def setup_handlers(self) -> None:
        """The default hooks only."""


class BrokenPlotConfig(PlotConfig):
    subplot_grid: BrokenSubplotGrid | None = None


class BrokenSubplotConfig(SubplotConfig):
    """A subplot with a broken y-axis: the top axis shows `ylim_top`, the bottom one `ylim_bottom`."""

    ylim_top: AxisConfig.AxisLim | None = None
    ylim_bottom: AxisConfig.AxisLim | None = None


class BrokenColumnCrossPlotLoader(BaseColumnCrossPlotLoader):
    """A ColumnCrossPlotLoader whose subplots have a broken y-axis: each chart is drawn on a top and a bottom
    axis (`BrokenSubplotGrid`) with their own limits, so that a few tall bars do not flatten the others. The
    title goes on the top axis, the x-axis options on the bottom one."""

    subplot_grid: BrokenSubplotGrid | None = None
    cum_plot_config: list[BrokenPlotConfig] | None = Field(default_factory=list)
    cum_subplot_config: list[BrokenSubplotConfig]

    def setup_handlers(self) -> None:
        """The default hooks only."""

    def grid_for(self, plot_config: PlotConfig | None) -> SubplotGrid:
        if plot_config is not None and plot_config.subplot_grid is not None:
            return plot_config.subplot_grid
        return self.subplot_grid if self.subplot_grid is not None else BrokenSubplotGrid(rows=[], cols=[])

    def subplots(self, grid: SubplotGrid, axs, df_plot, plot_id: dict):
        for index, df_subplot, subplot_id, pair in grid.for_each(axs, df=df_plot, parent_id=plot_id):
            yield index, df_subplot, subplot_id, list(pair)

    def all_axes(self, axs):
        import numpy as np

        return np.array([ax for row in axs for pair in row for ax in pair])

    def draw_subplot(
        self, axes: list, df_subplot, data_id: dict, metric: Metric, plot_config, config
    ) -> None:
        top, bottom = axes
        top_config = config.model_copy(update={"xaxis": None, "legend_ax": None})
        bottom_config = config.model_copy(update={"ax_title": None})
        super().draw_subplot([top], df_subplot, data_id, metric, plot_config, top_config)
        super().draw_subplot([bottom], df_subplot, data_id, metric, plot_config, bottom_config)
        for ax, lim in ((top, config.ylim_top), (bottom, config.ylim_bottom)):
            if lim is not None:
                ax.set_ylim(*lim.limits(ax.yaxis.get_data_interval()))
        top.spines["bottom"].set_visible(False)
        bottom.spines["top"].set_visible(False)
        top.tick_params(bottom=False, labelbottom=False)
        mark = 0.015
        for ax, y in ((top, 0.0), (bottom, 1.0)):
            for x in (0.0, 1.0):
                ax.plot(
                    (x - mark, x + mark),
                    (y - 2 * mark, y + 2 * mark),
                    transform=ax.transAxes,
                    color="k",
                    clip_on=False,
                    linewidth=1,
                )
