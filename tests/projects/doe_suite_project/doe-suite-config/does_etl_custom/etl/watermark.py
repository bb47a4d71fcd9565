"""A project's own figure loader, written for doe-suite: a ColumnCrossPlotLoader with a watermark."""

import typing

import gossip  # noqa: F401  (doe-suite projects import it next to their hooks)

from doespy.etl.steps.colcross.colcross import BaseColumnCrossPlotLoader, SubplotConfig
from doespy.etl.steps.colcross.hooks import CcpHooks


class GridSubplotConfig(SubplotConfig):
    grid: bool = True


class WatermarkPlotLoader(BaseColumnCrossPlotLoader):
    watermark: str
    cum_subplot_config: list[GridSubplotConfig]

    def setup_handlers(self):
        WatermarkPlotLoader.blueprint().install()


@WatermarkPlotLoader.blueprint().register(CcpHooks.SubplotPostChart)
def apply_grid(ax, df_subplot, subplot_id: dict[str, typing.Any], plot_config, subplot_config, loader):
    if subplot_config.grid:
        ax.grid(True, axis="y", linestyle=":")


@WatermarkPlotLoader.blueprint().register(CcpHooks.FigPost)
def stamp(fig, axs, df_plot, plot_id, plot_config, loader):
    fig.text(0.5, 0.5, loader.watermark, alpha=0.2, ha="center")
