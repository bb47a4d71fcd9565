"""The statistics of `doe compare` on seeded synthetic workloads."""

from __future__ import annotations

import numpy as np
import pytest

from etl.comparison import Pair, compare, geometric_mean, holm


def lognormal(rng, median: float, n: int, sigma: float = 0.1) -> np.ndarray:
    return rng.lognormal(np.log(median), sigma, n)


def test_holm_adjusts_in_input_order_and_stays_monotone():
    assert holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert holm([0.6, 0.2]) == pytest.approx([0.6, 0.4])
    assert holm([]) == []


def test_a_twenty_percent_slowdown_is_slower_and_a_throughput_gain_is_faster():
    rng = np.random.default_rng(7)
    base, slow = lognormal(rng, 100, 10), lognormal(rng, 120, 10)
    (result,) = compare([Pair({"x": 1}, base, slow)])
    assert result.verdict == "slower" and result.ci_low > 1.05 and result.p_holm < 0.01
    assert result.ratio == pytest.approx(np.median(slow) / np.median(base))
    (as_throughput,) = compare([Pair({"x": 1}, base, slow)], higher_is_better=True)
    assert as_throughput.verdict == "faster"


def test_identical_quiet_runs_are_the_same_and_few_values_are_inconclusive():
    rng = np.random.default_rng(3)
    same = compare([Pair({}, lognormal(rng, 50, 30, 0.002), lognormal(rng, 50, 30, 0.002))], min_effect=0.01)[0]
    assert same.verdict == "same"
    (few,) = compare([Pair({}, [1.0, 2.0], [5.0, 6.0, 7.0])])
    assert few.verdict == "inconclusive" and few.p is None and few.n_baseline == 2


def test_the_same_seed_gives_the_same_interval():
    rng = np.random.default_rng(11)
    pair = Pair({}, lognormal(rng, 10, 8), lognormal(rng, 11, 8))
    first, second = compare([pair], seed=5)[0], compare([pair], seed=5)[0]
    assert (first.ci_low, first.ci_high) == (second.ci_low, second.ci_high)


def test_a_over_a_comparisons_are_flagged_at_about_alpha():
    """Two samples of one distribution, 300 times: the test rejects in about 5% of them."""
    rng = np.random.default_rng(2024)
    rejected = sum(
        compare([Pair({}, lognormal(rng, 100, 12, 0.2), lognormal(rng, 100, 12, 0.2))], n_resamples=99)[0].p < 0.05
        for _ in range(300))
    # Binomial(300, 0.05): mean 15, 99.9% of outcomes within [4, 30].
    assert 4 <= rejected <= 30, rejected


def test_the_ratio_interval_covers_the_true_ratio_about_as_often_as_promised():
    """Means of lognormal samples whose true ratio is 1.25: a 95% interval covers it in ~95% of 200 tries."""
    rng = np.random.default_rng(99)
    sigma = 0.15
    true_ratio = 1.25  # the means scale with the medians for the same sigma
    covered = 0
    for _ in range(200):
        result = compare([Pair({}, lognormal(rng, 100, 20, sigma), lognormal(rng, 125, 20, sigma))],
                         statistic="mean", n_resamples=999)[0]
        covered += result.ci_low <= true_ratio <= result.ci_high
    # Binomial(200, 0.95): 99.9% of outcomes within [181, 197]; BCa is a little liberal at n=20.
    assert 176 <= covered <= 199, covered


def test_geometric_mean_ignores_missing_ratios():
    assert geometric_mean([2.0, 0.5, None]) == pytest.approx(1.0)
    assert geometric_mean([None]) is None


def test_too_few_values_for_any_significance_say_so_instead_of_a_bare_inconclusive():
    (result,) = compare([Pair({}, [1.0, 1.1, 0.9], [100.0, 110.0, 90.0])])
    assert result.verdict == "inconclusive" and result.ci_low > 50
    assert result.notes == ["3 and 3 values can never give p < 0.05 in a rank test; more repetitions are needed "
                            "for a verdict"]
    (enough,) = compare([Pair({}, [1.0, 1.1, 0.9, 1.05, 0.95], [100.0, 110.0, 90.0, 105.0, 95.0])])
    assert enough.verdict == "slower" and enough.notes == []
