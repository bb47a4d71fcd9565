"""A module that imports a doespy module doe does not offer (doe-suite's ETL internals)."""

from doespy.etl.etl_base import run_single_suite  # noqa: F401

from doespy.etl.steps.loaders import Loader


class LegacyLoader(Loader):
    def load(self, df, options, etl_info):
        pass
