"""A module that cannot be imported here: it needs a package doe's venv lacks."""

import pdf2image  # noqa: F401

from doespy.etl.steps.loaders import PlotLoader


class HeatmapLoader(PlotLoader):
    def load(self, df, options, etl_info):
        pass
