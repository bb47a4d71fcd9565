"""Statistics transformers: confidence intervals of the mean, and outlier / warm-up handling."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from etl.errors import EtlDataError
from etl.lazy import LazyModule
from etl.steps.base import Transformer, register
from etl.steps.transformers import hashable_keys, numeric, require_columns, runtime_columns

if TYPE_CHECKING:  # real types for the checker; at run time imported on first use
    import numpy as np
    import pandas as pd
else:
    np = LazyModule("numpy")
    pd = LazyModule("pandas")


def default_group_keys(df: pd.DataFrame, data_columns: list[str]) -> list[str]:
    """Like RepAggTransformer: every column except `rep`, the data columns and the runtime columns."""
    skip = {"rep", *data_columns, *runtime_columns(df)}
    return [column for column in df.columns if column not in skip]


def group_codes(df: pd.DataFrame, keys: list[str]) -> np.ndarray:
    """One integer per row naming its group (first appearance order); NaN keys form groups too."""
    if not keys:
        return np.zeros(len(df), dtype=np.int64)
    return hashable_keys(df[keys], keys).groupby(keys, sort=False, dropna=False).ngroup().to_numpy()


# -- Student's t quantile without scipy: regularized incomplete beta by continued fraction, then bisection. --
def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    tiny, eps = 1e-300, 3e-16
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for numerator in (
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < eps:
            break
    return h


def _regularized_beta(a: float, b: float, x: float) -> float:
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_continued_fraction(a, b, x) / a
    return 1.0 - front * _beta_continued_fraction(b, a, 1.0 - x) / b


def t_cdf(t: float, dof: float) -> float:
    tail = 0.5 * _regularized_beta(dof / 2.0, 0.5, dof / (dof + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, dof: float) -> float:
    """Inverse of t_cdf for 0.5 <= p < 1 (bisection; exact to ~1e-12)."""
    low, high = 0.0, 1.0
    while t_cdf(high, dof) < p:
        high *= 2.0
    for _ in range(200):
        middle = (low + high) / 2.0
        if t_cdf(middle, dof) < p:
            low = middle
        else:
            high = middle
        if high - low < 1e-12:
            break
    return (low + high) / 2.0


@register
class ConfidenceIntervalTransformer(Transformer):
    """Mean of each data column per group with a confidence interval (t-based or bootstrap percentile).

    Output per data column: `<col>_mean`, `<col>_ci_low`, `<col>_ci_high`, `<col>_n`. Groups default to every
    column except `rep`, the data columns and the runtime columns (like RepAggTransformer).
    """

    data_columns: list[str]
    groupby_columns: list[str] | None = None
    level: float = Field(0.95, gt=0.0, lt=1.0)
    method: Literal["t", "bootstrap"] = "t"
    bootstrap_samples: int = Field(2000, ge=100)
    seed: int = 0

    def transform(self, df: pd.DataFrame, options: dict) -> pd.DataFrame:
        if df.empty:
            return df
        require_columns(df, self.data_columns, "data_columns")
        keys = (
            self.groupby_columns
            if self.groupby_columns is not None
            else default_group_keys(df, self.data_columns)
        )
        require_columns(df, keys, "groupby_columns")
        values = numeric(df, self.data_columns)
        codes = group_codes(df, keys)
        first_rows = pd.Series(np.arange(len(df))).groupby(codes, sort=True).first().to_numpy()
        result = df.iloc[first_rows][keys].reset_index(drop=True)
        grouped = values[self.data_columns].groupby(codes, sort=True)
        columns = {}
        for column in self.data_columns:
            mean, low, high, count = self._interval(grouped[column])
            columns.update(
                {
                    f"{column}_mean": mean,
                    f"{column}_ci_low": low,
                    f"{column}_ci_high": high,
                    f"{column}_n": count,
                }
            )
        return pd.concat([result, pd.DataFrame(columns)], axis=1)

    def _interval(self, grouped) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        mean = grouped.mean().to_numpy()
        count = grouped.count().to_numpy()
        if self.method == "t":
            std = grouped.std().to_numpy()
            half = np.array(
                [
                    t_quantile(0.5 + self.level / 2.0, n - 1) * s / math.sqrt(n) if n > 1 else np.nan
                    for n, s in zip(count, std)
                ]
            )
            return mean, mean - half, mean + half, count
        rng = np.random.default_rng(self.seed)
        alpha = (1.0 - self.level) / 2.0
        low, high = [], []
        for _, series in grouped:
            sample = series.dropna().to_numpy(dtype=float)
            if len(sample) < 2:
                low.append(np.nan)
                high.append(np.nan)
                continue
            means = rng.choice(sample, size=(self.bootstrap_samples, len(sample)), replace=True).mean(axis=1)
            low.append(float(np.quantile(means, alpha)))
            high.append(float(np.quantile(means, 1.0 - alpha)))
        return mean, np.array(low), np.array(high), count


@register
class OutlierTransformer(Transformer):
    """Flags or drops outliers (modified z-score on the median absolute deviation) and warm-up repetitions.

    `action: flag` adds `outlier` (bool) and `outlier_reason`; `action: drop` removes those rows and adds
    `dropped`, which lists per group what was removed and why. The first `warmup_reps` repetitions of every
    run count as warm-up. Groups default to every column except `rep`, the data and the runtime columns.
    """

    data_columns: list[str]
    groupby_columns: list[str] | None = None
    threshold: float = Field(3.5, gt=0.0)
    warmup_reps: int = Field(0, ge=0)
    action: Literal["flag", "drop"] = "flag"

    def transform(self, df: pd.DataFrame, options: dict) -> pd.DataFrame:
        if df.empty:
            return df
        require_columns(df, self.data_columns, "data_columns")
        if self.warmup_reps and "rep" not in df.columns:
            raise EtlDataError("warmup_reps needs a `rep` column (run OutlierTransformer before aggregating)")
        keys = (
            self.groupby_columns
            if self.groupby_columns is not None
            else default_group_keys(df, self.data_columns)
        )
        require_columns(df, keys, "groupby_columns")
        reasons = pd.Series("", index=df.index, dtype=object)
        warmup = (df["rep"] < self.warmup_reps) if self.warmup_reps else pd.Series(False, index=df.index)
        reasons[warmup] = "warm-up repetition"
        codes = pd.Series(group_codes(df, keys), index=df.index)
        values = numeric(df, self.data_columns)
        for column in self.data_columns:
            scores = self._modified_z(values[column].where(~warmup), codes)
            hit = scores.abs() > self.threshold
            text = column + " modified z " + scores.round(2).astype(str) + f" > {self.threshold:g}"
            reasons[hit] = np.where(reasons[hit] == "", text[hit], reasons[hit] + "; " + text[hit])
        flagged = reasons != ""
        if self.action == "flag":
            return df.assign(outlier=flagged, outlier_reason=reasons)
        label = ("rep " + df["rep"].astype(str) + ": " if "rep" in df.columns else "row: ") + reasons
        per_group = label[flagged].groupby(codes[flagged], sort=False).agg("; ".join).to_dict()
        kept = df[~flagged]
        return kept.assign(dropped=[per_group.get(code, "") for code in codes[~flagged]])

    @staticmethod
    def _modified_z(series: pd.Series, codes: pd.Series) -> pd.Series:
        grouped = series.groupby(codes)
        median = grouped.transform("median")
        deviation = (series - median).abs()
        mad = deviation.groupby(codes).transform("median")
        mean_ad = deviation.groupby(codes).transform("mean")
        # MAD is 0 when most values are equal: fall back to the mean absolute deviation (Iglewicz & Hoaglin).
        with np.errstate(divide="ignore", invalid="ignore"):
            by_mad = 0.6745 * (series - median) / mad
            by_mean = (series - median) / (1.253314 * mean_ad)
        scores = by_mad.where(mad > 0, by_mean.where(mean_ad > 0, 0.0))
        return scores.fillna(0.0)
