"""When a run of an adaptive experiment has enough repetitions (pure: values in, a decision out).

A run's estimate is the statistic (median or mean) of its finished reps' values with a BCa bootstrap
confidence interval (etl.comparison, deterministic for the seed and the run). It has converged when the
interval's half-width is at most `target_ci` of the estimate; otherwise it gets another rep unless its
attempts reached `max` or the experiment's time is up. Fewer than three values give no interval.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

ADAPTING, CONVERGED, MAX_REACHED, TIME_CAP, METRIC_ERROR = (
    "adapting", "converged", "max reached", "time cap", "metric error")
N_RESAMPLES = 2999


@dataclass(frozen=True)
class Estimate:
    n: int
    estimate: float | None
    ci_low: float | None
    ci_high: float | None

    @property
    def relative_half_width(self) -> float | None:
        if self.estimate is None or self.ci_low is None or self.ci_high is None:
            return None
        if self.estimate == 0:
            return 0.0 if self.ci_low == self.ci_high else math.inf
        return (self.ci_high - self.ci_low) / 2 / abs(self.estimate)


def estimate(values: Sequence[float], statistic: str, confidence: float, seed: Sequence[int]) -> Estimate:
    from etl.comparison import MIN_VALUES, estimate_interval

    if len(values) < MIN_VALUES:
        if not values:
            return Estimate(0, None, None, None)
        return Estimate(len(values), point_estimate(values, statistic), None, None)
    value, low, high = estimate_interval(values, statistic, confidence=confidence, seed=seed,
                                         n_resamples=N_RESAMPLES)
    return Estimate(len(values), value, low, high)


def point_estimate(values: Sequence[float], statistic: str) -> float:
    """The median or mean of some values (at least one)."""
    return statistics.median(values) if statistic == "median" else statistics.fmean(values)


def decide(current: Estimate, *, minimum: int, target_ci: float, attempts: int, maximum: int,
           time_up: bool) -> str:
    """What becomes of a run none of whose reps is outstanding: ADAPTING (one more rep) or why it stops."""
    width = current.relative_half_width
    if current.n >= minimum and width is not None and width <= target_ci:
        return CONVERGED
    if attempts >= maximum:
        return MAX_REACHED
    if time_up:
        return TIME_CAP
    return ADAPTING
