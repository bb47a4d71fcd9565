"""Comparing runs with statistics: a ratio with its bootstrap confidence interval, a rank test with
Holm's correction over all pairs, and a verdict. Pure: arrays in, records out (scipy does the maths).

Per pair (baseline, other): ratio = statistic(other) / statistic(baseline), its BCa bootstrap CI
(deterministic for a seed), the two-sided Mann–Whitney U p-value, p adjusted by Holm over all pairs,
and a verdict: `same` when the CI lies within ±min_effect of 1, `faster`/`slower` when the CI excludes
1 and p_holm < alpha (lower values are better unless `higher_is_better`), else `inconclusive`.
Fewer than MIN_VALUES values on a side is `inconclusive` without a test.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MIN_VALUES = 3
STATISTICS = ("median", "mean")


@dataclass(frozen=True)
class Pair:
    """Two samples to compare; `key` names them (factor values) in the output."""

    key: dict[str, Any]
    baseline: Sequence[float]
    other: Sequence[float]


@dataclass
class Comparison:
    key: dict[str, Any]
    n_baseline: int
    n_other: int
    estimate_baseline: float | None
    estimate_other: float | None
    ratio: float | None
    ci_low: float | None
    ci_high: float | None
    p: float | None
    p_holm: float | None = None
    verdict: str = "inconclusive"
    notes: list[str] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        return {**self.key, "n": [self.n_baseline, self.n_other],
                "estimate": [self.estimate_baseline, self.estimate_other], "ratio": self.ratio,
                "ci_low": self.ci_low, "ci_high": self.ci_high, "p": self.p, "p_holm": self.p_holm,
                "verdict": self.verdict}


def _statistic(name: str):
    if name not in STATISTICS:
        raise ValueError(f"statistic must be one of {', '.join(STATISTICS)}, not {name!r}")
    return np.median if name == "median" else np.mean


def compare(pairs: Sequence[Pair], *, statistic: str = "median", alpha: float = 0.05, min_effect: float = 0.01,
            confidence: float = 0.95, higher_is_better: bool = False, seed: int = 0,
            n_resamples: int = 4999) -> list[Comparison]:
    """One Comparison per pair, in order; p_holm and verdicts over all of them together."""
    stat = _statistic(statistic)
    results = [_one(pair, stat, confidence, seed, n_resamples) for pair in pairs]
    tested = [result for result in results if result.p is not None]
    for result, adjusted in zip(tested, holm([result.p for result in tested if result.p is not None]),
                                strict=True):
        result.p_holm = adjusted
    for result in results:
        result.verdict = verdict(result, alpha=alpha, min_effect=min_effect, higher_is_better=higher_is_better)
        if result.verdict == "inconclusive" and result.p is not None and _smallest_p(result) >= alpha:
            # A rank test on few values cannot reach alpha however large the difference: say so.
            result.notes.append(f"{result.n_baseline} and {result.n_other} values can never give p < {alpha:g} "
                                "in a rank test; more repetitions are needed for a verdict")
    return results


def _smallest_p(result: Comparison) -> float:
    """The smallest two-sided Mann-Whitney p-value these sample sizes allow (complete separation)."""
    return min(1.0, 2 / math.comb(result.n_baseline + result.n_other, result.n_baseline))


def _one(pair: Pair, stat, confidence: float, seed: int, n_resamples: int) -> Comparison:
    from scipy import stats

    base = np.asarray(pair.baseline, dtype=float)
    other = np.asarray(pair.other, dtype=float)
    base, other = base[np.isfinite(base)], other[np.isfinite(other)]
    result = Comparison(key=pair.key, n_baseline=len(base), n_other=len(other),
                        estimate_baseline=float(stat(base)) if len(base) else None,
                        estimate_other=float(stat(other)) if len(other) else None,
                        ratio=None, ci_low=None, ci_high=None, p=None)
    if result.estimate_baseline and result.estimate_other is not None:
        result.ratio = result.estimate_other / result.estimate_baseline
    if len(base) < MIN_VALUES or len(other) < MIN_VALUES:
        result.notes.append(f"fewer than {MIN_VALUES} values on a side")
        return result
    if not result.estimate_baseline:
        result.notes.append("the baseline's estimate is 0: no ratio")
        return result
    result.p = float(stats.mannwhitneyu(other, base, alternative="two-sided").pvalue)

    def ratio(b: np.ndarray, o: np.ndarray, axis: int = -1) -> np.ndarray:
        return stat(o, axis=axis) / stat(b, axis=axis)

    if np.ptp(base) == 0 and np.ptp(other) == 0:  # no spread: the bootstrap has nothing to resample
        result.ci_low = result.ci_high = result.ratio
        return result
    result.ci_low, result.ci_high = bootstrap_interval((base, other), ratio, confidence=confidence, seed=seed,
                                                       n_resamples=n_resamples)
    return result


def bootstrap_interval(samples: tuple[np.ndarray, ...], statistic, *, confidence: float,
                       seed: int | Sequence[int], n_resamples: int = 4999) -> tuple[float, float]:
    """The BCa bootstrap confidence interval of `statistic` (vectorized, takes `axis`) over independent
    samples, deterministic for a seed; percentile where BCa degenerates on ties."""
    from scipy import stats

    low = high = math.nan
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():  # a degenerate BCa is expected on ties: the percentile one follows
            warnings.simplefilter("ignore", RuntimeWarning)
            warnings.simplefilter("ignore", getattr(stats, "DegenerateDataWarning", RuntimeWarning))
            interval = stats.bootstrap(samples, statistic, confidence_level=confidence, method=method,
                                       n_resamples=n_resamples, vectorized=True,
                                       rng=np.random.default_rng(seed), paired=False).confidence_interval
        low, high = float(interval.low), float(interval.high)
        if math.isfinite(low) and math.isfinite(high):
            break
    return low, high


def estimate_interval(values: Sequence[float], statistic: str = "median", *, confidence: float = 0.95,
                      seed: int | Sequence[int] = 0, n_resamples: int = 4999) -> tuple[float, float, float]:
    """One sample's statistic with its bootstrap confidence interval: (estimate, low, high). Needs
    MIN_VALUES values; without spread the interval is the estimate itself."""
    stat = _statistic(statistic)
    data = np.asarray(values, dtype=float)
    if len(data) < MIN_VALUES:
        raise ValueError(f"a confidence interval needs at least {MIN_VALUES} values, got {len(data)}")
    estimate = float(stat(data))
    if np.ptp(data) == 0:
        return estimate, estimate, estimate
    low, high = bootstrap_interval((data,), stat, confidence=confidence, seed=seed, n_resamples=n_resamples)
    return estimate, low, high


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values, in the input's order (monotone, capped at 1)."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [0.0] * len(p_values)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def verdict(result: Comparison, *, alpha: float, min_effect: float, higher_is_better: bool) -> str:
    if result.p is None or result.ci_low is None or result.ci_high is None:
        return "inconclusive"
    if 1 - min_effect <= result.ci_low and result.ci_high <= 1 + min_effect:
        return "same"
    if result.p_holm is None or result.p_holm >= alpha or result.ci_low <= 1 <= result.ci_high:
        return "inconclusive"
    lower = result.ci_high < 1
    return "faster" if lower != higher_is_better else "slower"


def geometric_mean(ratios: Sequence[float | None]) -> float | None:
    values = [r for r in ratios if r is not None and r > 0 and math.isfinite(r)]
    if not values:
        return None
    return float(math.exp(sum(math.log(r) for r in values) / len(values)))
