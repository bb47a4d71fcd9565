"""Built-in table loaders: each writes `<pipeline>.<ext>` into the pipeline's output folder, atomically."""

from __future__ import annotations

import pickle
from typing import TYPE_CHECKING, ClassVar

from etl.errors import EtlDataError
from etl.fileio import write_atomic, write_via_temp_path
from etl.lazy import LazyModule
from etl.steps.base import IncrementalLoader, LoadContext, Loader, register

if TYPE_CHECKING:  # real types for the checker; at run time imported on first use
    import pandas as pd
else:
    pd = LazyModule("pandas")


class SummaryLoader(Loader):
    """Shared empty-frame rule; subclasses write one file named after the pipeline."""

    suffix: ClassVar[str] = ""

    def target(self, df: pd.DataFrame, etl_info: dict):
        if df.empty:
            if self.skip_empty:
                return None
            raise EtlDataError("the frame is empty (set skip_empty: true to skip writing)")
        return self.get_output_dir(etl_info) / f"{etl_info['pipeline']}{self.suffix}"


@register
class CsvSummaryLoader(SummaryLoader, IncrementalLoader):
    """The frame as <pipeline>.csv, with its index column, as doe-suite writes it."""

    doe_suite_options: ClassVar[tuple[str, ...]] = ("skip_empty",)
    suffix: ClassVar[str] = ".csv"

    def load_incremental(self, df: pd.DataFrame, options: dict, etl_info: dict, context: LoadContext) -> None:
        path = self.target(df, etl_info)
        if path is not None:
            from etl.csv_output import write_csv

            write_csv(path, df, context.cache_dir, context.lineage)


@register
class PickleSummaryLoader(SummaryLoader):
    """The frame as <pipeline>.pkl (pandas pickle), for the project's own analysis: doe writes it, never
    reads it (its caches hold no pickle: etl.safecache)."""

    doe_suite_options: ClassVar[tuple[str, ...]] = ("skip_empty",)
    suffix: ClassVar[str] = ".pkl"

    def load(self, df: pd.DataFrame, options: dict, etl_info: dict) -> None:
        path = self.target(df, etl_info)
        if path is not None:
            write_atomic(
                path, lambda handle: pickle.dump(df, handle, protocol=pickle.HIGHEST_PROTOCOL), binary=True
            )


@register
class LatexTableLoader(SummaryLoader):
    """The frame as a LaTeX table in <pipeline>.tex."""

    doe_suite_options: ClassVar[tuple[str, ...]] = ("skip_empty",)
    suffix: ClassVar[str] = ".tex"

    def load(self, df: pd.DataFrame, options: dict, etl_info: dict) -> None:
        path = self.target(df, etl_info)
        if path is not None:
            text = df.to_latex(index=False, na_rep="", escape=True)
            write_atomic(path, lambda handle: handle.write(text))


@register
class ParquetLoader(SummaryLoader):
    """Parquet keeps dtypes; columns pyarrow cannot type (mixed objects) are written as text."""

    suffix: ClassVar[str] = ".parquet"

    def load(self, df: pd.DataFrame, options: dict, etl_info: dict) -> None:
        path = self.target(df, etl_info)
        if path is None:
            return
        import pyarrow as pa

        frame = df
        for column in df.columns:
            if df[column].dtype == object:
                try:
                    pa.array(df[column])
                except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
                    frame = frame.assign(**{column: df[column].map(lambda v: None if v is None else str(v))})
        frame = frame.rename(columns=str)
        write_via_temp_path(path, lambda tmp: frame.to_parquet(tmp, index=False))
