"""Plot loaders: `PlotLoader`, the base for custom plots, and `FactorPlotLoader`, a declarative bar / box /
line chart per factor with error bars taken from the aggregation columns. matplotlib is imported only when a
plot is drawn (Agg backend: no display needed)."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from etl.errors import EtlDataError
from etl.fileio import write_text_atomic, write_via_temp_path
from etl.lazy import LazyModule
from etl.steps.base import Loader, register
from etl.steps.extractors import META_COLUMNS, RUNTIME_PREFIX
from etl.steps.transformers import factor_columns_of

if TYPE_CHECKING:  # real types for the checker; at run time imported on first use
    import numpy as np
    import pandas as pd
else:
    np = LazyModule("numpy")
    pd = LazyModule("pandas")


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


class PlotLoader(Loader):
    """Base for custom plot loaders (doe-suite's helpers, with its argument names): implement `load` and use
    the helpers below."""

    def default_fig(self):
        """A new figure in the golden ratio, made pyplot's current figure (for `plt.plot(...)` after it)."""
        plt = pyplot()
        fig = plt.figure(figsize=(2.4 * 1.618, 2.4), dpi=100)
        plt.figure(fig.number)
        return fig

    def save_plot(
        self,
        fig,
        filename: str,
        output_dir: Path | str,
        use_tight_layout: bool = True,
        output_filetypes: Sequence[str] = ("pdf", "png"),
    ) -> list[Path]:
        """Write the figure as <filename>.<type> at 300 dpi, atomically; closes the figure."""
        written = []
        bbox = "tight" if use_tight_layout else None
        for kind in output_filetypes:
            path = Path(output_dir) / f"{_file_name(filename)}.{kind}"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_via_temp_path(path, functools.partial(fig.savefig, format=kind, dpi=300, bbox_inches=bbox))
            written.append(path)
        pyplot().close(fig)
        return written

    def save_data(
        self,
        df: pd.DataFrame,
        filename: str,
        output_dir: Path | str,
        output_filetypes: Sequence[str] = ("html",),
    ) -> list[Path]:
        """The data behind a figure, as an HTML table next to it."""
        unknown = [kind for kind in output_filetypes if kind != "html"]
        if unknown:
            raise EtlDataError(f"save_data writes html tables only, not {unknown}")
        path = Path(output_dir) / f"{_file_name(filename)}.html"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, df.to_html(index=False, na_rep=""))
        return [path]


def _file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=$+-]+", "_", name).strip("_") or "plot"


def _default_formats() -> list[Literal["png", "pdf", "svg"]]:
    return ["png", "pdf"]


@register
class FactorPlotLoader(PlotLoader):
    """A chart without Python: `kind` bar / box / line of `y` over the factor `x`, one series per `group`
    value, one figure per `facet` value.

    Bar and line charts use `<y>_mean` with error bars from `<y>_ci_low`/`<y>_ci_high`
    (ConfidenceIntervalTransformer) or `<y>_std` (RepAggTransformer); if the frame has only raw `y`
    values, the mean and standard deviation per point are computed here. Box plots need the raw `y` values.
    `x` and `group` default to the first and second factor column (after GroupByAggTransformer, which
    drops factor_columns: its first and second group column).
    """

    kind: Literal["bar", "box", "line"] = Field("bar", description="Bars and lines show means, boxes raw values.")
    y: str = Field(description="The value column (raw, or aggregated as <y>_mean, <y>_std, ...).")
    x: str | None = Field(None, description="Column along the x axis; default: the first factor.")
    group: str | None = Field(None, description="One series (colour) per value; default: the second factor.")
    facet: str | None = Field(None, description="One figure per value of this column.")
    name: str | None = Field(None, description="File name; default: <pipeline>_<kind>_<y>.")
    title: str | None = Field(None, description="Default: '<y> by <x>'.")
    xlabel: str | None = Field(None, description="Default: x.")
    ylabel: str | None = Field(None, description="Default: y and what the error bars show.")
    logy: bool = Field(False, description="Logarithmic y axis.")
    formats: list[Literal["png", "pdf", "svg"]] = Field(
        default_factory=_default_formats, description="One file per format."
    )
    data_table: bool = Field(True, description="Also write the plotted points as <name>.html.")

    def load(self, df: pd.DataFrame, options: dict, etl_info: dict) -> None:
        if df.empty:
            if self.skip_empty:
                return
            raise EtlDataError("the frame is empty (set skip_empty: true to skip the plot)")
        x, group = self._axes(df)
        output_dir = self.get_output_dir(etl_info)
        base = self.name or f"{etl_info['pipeline']}_{self.kind}_{self.y}"
        facets: list[tuple[Any, pd.DataFrame]] = (
            [(None, df)] if self.facet is None else list(df.groupby(self._column(df, self.facet), sort=False))
        )
        for value, part in facets:
            name = base if value is None else f"{base}_{self.facet}={value}"
            points = self._points(part, x, group)
            fig, ax = pyplot().subplots(figsize=(6.4, 4.0))
            self._draw(ax, part, points, x, group)
            title = self.title or (
                f"{self.y} by {x}" + (f", {self.facet}={value}" if value is not None else "")
            )
            ax.set_title(title)
            ax.set_xlabel(self.xlabel or x)
            ax.set_ylabel(self.ylabel or f"{self.y}{self._error_note(part)}")
            if self.logy:
                ax.set_yscale("log")
            if group is not None:
                ax.legend(title=group, fontsize="small")
            ax.grid(axis="y", alpha=0.3)
            self.save_plot(fig, name, output_dir, output_filetypes=self.formats)
            if self.data_table:
                self.save_data(points, name, output_dir)

    def _error_note(self, df: pd.DataFrame) -> str:
        """What the bars and error bars show, for the axis label."""
        if self.kind == "box":
            return ""
        if f"{self.y}_ci_low" in df.columns and f"{self.y}_ci_high" in df.columns:
            return " (mean, confidence interval)"
        return " (mean ± std)"

    def _group_keys(self, df: pd.DataFrame) -> list[str]:
        """An aggregation that drops factor_columns (GroupByAggTransformer) leaves its group keys and the
        aggregates: every column that is no `<column>_<aggregation>` (with the aggregations found on `y`),
        nor runtime or bookkeeping column, is a key. No aggregates of `y`: no keys."""
        aggregations = tuple(f"_{c[len(self.y) + 1:]}" for c in df.columns if str(c).startswith(f"{self.y}_"))
        if not aggregations:
            return []
        return [
            c
            for c in map(str, df.columns)
            if c != self.y
            and not c.endswith(aggregations)
            and not c.startswith(RUNTIME_PREFIX)
            and c not in META_COLUMNS
        ]

    def _column(self, df: pd.DataFrame, column: str) -> str:
        if column not in df.columns:
            raise EtlDataError(f"column {column!r} not in the frame; columns are {list(df.columns)}")
        return column

    def _axes(self, df: pd.DataFrame) -> tuple[str, str | None]:
        factors = [f for f in factor_columns_of(df) if f in df.columns and f != self.facet]
        factors = factors or [k for k in self._group_keys(df) if k != self.facet]
        x = self.x or (factors[0] if factors else None)
        if x is None:
            raise EtlDataError(
                "no x column: set `x` (the frame has neither factor_columns nor aggregates of "
                f"{self.y!r} such as {self.y}_mean)"
            )
        group = self.group if self.group is not None else next((f for f in factors if f != x), None)
        return self._column(df, x), None if group is None else self._column(df, group)

    def _points(self, df: pd.DataFrame, x: str, group: str | None) -> pd.DataFrame:
        """Per (group, x): the value and the error bar half-widths below and above it."""
        keys = [k for k in (group, x) if k is not None]
        y = self.y
        if self.kind == "box":
            self._column(df, y)
            return df[[*keys, y]]
        if f"{y}_mean" in df.columns:
            frame = df[keys].copy()
            frame["value"] = pd.to_numeric(df[f"{y}_mean"], errors="coerce")
            if f"{y}_ci_low" in df.columns and f"{y}_ci_high" in df.columns:
                frame["err_low"] = frame["value"] - pd.to_numeric(df[f"{y}_ci_low"], errors="coerce")
                frame["err_high"] = pd.to_numeric(df[f"{y}_ci_high"], errors="coerce") - frame["value"]
            elif f"{y}_std" in df.columns:
                frame["err_low"] = frame["err_high"] = pd.to_numeric(df[f"{y}_std"], errors="coerce")
            else:
                frame["err_low"] = frame["err_high"] = np.nan
            if frame.duplicated(keys).any():
                raise EtlDataError(f"several rows per {keys}: aggregate first or set `facet`/`group`")
            return frame.reset_index(drop=True)
        self._column(df, y)
        values = pd.to_numeric(df[y], errors="coerce")
        stats = values.groupby([df[k].map(_hashable) for k in keys], sort=False, dropna=False).agg(
            ["mean", "std"]
        )
        frame = stats.reset_index()
        frame.columns = [*keys, "value", "err_low"]
        frame["err_high"] = frame["err_low"]
        return frame

    def _draw(self, ax, df: pd.DataFrame, points: pd.DataFrame, x: str, group: str | None) -> None:
        x_values = list(dict.fromkeys(_hashable(v) for v in points[x]))
        positions = {value: i for i, value in enumerate(x_values)}
        groups = list(dict.fromkeys(_hashable(v) for v in points[group])) if group else [None]
        width = 0.8 / len(groups)
        for i, value in enumerate(groups):
            part = points if value is None else points[points[group].map(_hashable) == value]
            label = None if value is None else str(value)
            if self.kind == "box":
                data = [
                    pd.to_numeric(part[part[x].map(_hashable) == xv][self.y], errors="coerce").dropna()
                    for xv in x_values
                ]
                offsets = [positions[xv] + (i - (len(groups) - 1) / 2) * width for xv in x_values]
                boxes = ax.boxplot(
                    data,
                    positions=offsets,
                    widths=width * 0.9,
                    patch_artist=True,
                    manage_ticks=False,
                    medianprops={"color": "black"},
                )
                color = f"C{i}"
                for patch in boxes["boxes"]:
                    patch.set_facecolor(color)
                    patch.set_alpha(0.6)
                if label:
                    ax.plot([], [], color=color, linewidth=8, alpha=0.6, label=label)
                continue
            xs = [positions[_hashable(v)] for v in part[x]]
            errors = [part["err_low"].to_numpy(dtype=float), part["err_high"].to_numpy(dtype=float)]
            has_errors = not all(math.isnan(e) for e in np.concatenate(errors)) if len(part) else False
            yerr = np.nan_to_num(errors) if has_errors else None
            if self.kind == "bar":
                offsets = [p + (i - (len(groups) - 1) / 2) * width for p in xs]
                ax.bar(
                    offsets,
                    part["value"],
                    width=width * 0.95,
                    yerr=yerr,
                    capsize=3,
                    label=label,
                    color=f"C{i}",
                )
            else:
                order = np.argsort(xs)
                ax.errorbar(
                    np.array(xs)[order],
                    part["value"].to_numpy()[order],
                    yerr=None if yerr is None else yerr[:, order],
                    marker="o",
                    capsize=3,
                    label=label,
                    color=f"C{i}",
                )
        ax.set_xticks(range(len(x_values)))
        ax.set_xticklabels([str(v) for v in x_values])


def _hashable(value: Any) -> Any:
    return str(value) if isinstance(value, (list, dict, set)) else value
