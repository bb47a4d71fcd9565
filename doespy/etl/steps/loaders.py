"""doe-suite's `doespy.etl.steps.loaders`: the loader base classes (`PlotLoader` for figures) and the
built-in loaders."""

from etl.steps.base import Loader
from etl.steps.loaders import CsvSummaryLoader, LatexTableLoader, ParquetLoader, PickleSummaryLoader
from etl.steps.plots import FactorPlotLoader, PlotLoader

__all__ = [
    "CsvSummaryLoader",
    "FactorPlotLoader",
    "LatexTableLoader",
    "Loader",
    "ParquetLoader",
    "PickleSummaryLoader",
    "PlotLoader",
]
