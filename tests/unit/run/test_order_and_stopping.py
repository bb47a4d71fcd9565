"""The pure parts of randomized interleaved order (doe_cli.run.order) and adaptive repetitions
(doe_cli.run.stopping), on seeded synthetic workloads."""

from __future__ import annotations

import numpy as np
import pytest

from doe_cli.run.order import permutation, rmit_rounds, round_jobs
from doe_cli.run.stopping import ADAPTING, CONVERGED, MAX_REACHED, TIME_CAP, Estimate, decide, estimate
from etl.comparison import Pair, compare


def test_rmit_rounds_hold_every_run_once_in_a_fresh_order_per_round():
    rounds = rmit_rounds(8, 6, seed=3)
    assert all(sorted(r) == list(range(8)) for r in rounds)
    assert len({tuple(r) for r in rounds}) > 1  # not one permutation repeated
    jobs = round_jobs(rounds)
    assert sorted(jobs) == [(run, rep) for run in range(8) for rep in range(6)]
    assert [rep for _, rep in jobs] == sorted(rep for _, rep in jobs)  # rep r of every run before rep r+1


def test_the_same_seed_gives_the_same_order_and_another_seed_another():
    assert rmit_rounds(10, 5, seed=42) == rmit_rounds(10, 5, seed=42)
    assert rmit_rounds(10, 5, seed=42) != rmit_rounds(10, 5, seed=43)
    # A later round of a subset (the runs still adapting) is drawn from the seed and the round alone.
    assert permutation([1, 4, 7], 42, 9) == permutation([1, 4, 7], 42, 9)


def test_every_position_is_taken_by_every_run_about_equally_often():
    counts = np.zeros((4, 4))
    for order in rmit_rounds(4, 4000, seed=1):
        for position, run in enumerate(order):
            counts[run, position] += 1
    assert np.all(np.abs(counts - 1000) < 4 * np.sqrt(1000 * 0.75 * 0.25) * 2)


def adapt(sample, *, minimum=5, maximum=60, target=0.02, seed=0, statistic="median"):
    """Simulates one run: reps drawn one after another from `sample` until the rule stops it."""
    values = [sample() for _ in range(minimum)]
    while True:
        current = estimate(values, statistic, 0.95, (seed, 0))
        decision = decide(current, minimum=minimum, target_ci=target, attempts=len(values), maximum=maximum,
                          time_up=False)
        if decision != ADAPTING:
            return decision, current, values
        values.append(sample())


def lognormal(sigma, seed):
    rng = np.random.default_rng(seed)
    return lambda: float(100 * rng.lognormal(0, sigma))


def test_a_noisy_run_gets_more_reps_than_a_quiet_one_and_both_meet_the_target():
    quiet = adapt(lognormal(0.01, 1))
    noisy = adapt(lognormal(0.05, 1))
    assert quiet[0] == noisy[0] == CONVERGED
    assert len(noisy[2]) > len(quiet[2]) >= 5
    for _, current, _ in (quiet, noisy):
        assert current.relative_half_width <= 0.02


def test_the_same_seed_gives_the_same_stopping_point():
    first = adapt(lognormal(0.05, 7), seed=3)
    assert first == adapt(lognormal(0.05, 7), seed=3)


def test_a_run_that_never_converges_stops_at_max_or_at_the_time_cap():
    assert adapt(lognormal(1.0, 2), maximum=12)[0] == MAX_REACHED
    wide = Estimate(n=6, estimate=10.0, ci_low=5.0, ci_high=15.0)
    assert decide(wide, minimum=5, target_ci=0.02, attempts=6, maximum=40, time_up=True) == TIME_CAP
    assert decide(wide, minimum=5, target_ci=0.6, attempts=6, maximum=40, time_up=True) == CONVERGED
    # Below the minimum even a narrow interval does not stop a run; two values give none.
    assert decide(Estimate(3, 1.0, 1.0, 1.0), minimum=5, target_ci=0.1, attempts=3, maximum=9,
                  time_up=False) == ADAPTING
    assert estimate([1.0, 3.0], "median", 0.95, (0, 0)) == Estimate(2, 2.0, None, None)


def test_bimodal_noise_is_adapted_without_error():
    rng = np.random.default_rng(5)

    def bimodal():
        return float(rng.choice([100.0, 130.0]) * rng.lognormal(0, 0.01))

    decision, current, values = adapt(bimodal, target=0.05, maximum=80, statistic="mean")
    assert decision in (CONVERGED, MAX_REACHED) and current.n == len(values)


def drifting_values(order: list[tuple[int, int]], seed: int) -> dict[int, list[float]]:
    """Two identical runs measured in this job order on a machine that slows down 1 % per job."""
    rng = np.random.default_rng(seed)
    values: dict[int, list[float]] = {0: [], 1: []}
    for position, (run, _) in enumerate(order):
        values[run].append(100 * (1 + 0.01 * position) * rng.lognormal(0, 0.005))
    return values


@pytest.mark.parametrize("seed", range(12))
def test_under_drift_sequential_order_makes_identical_runs_differ_and_rmit_does_not(seed):
    sequential = [(run, rep) for run in range(2) for rep in range(15)]
    interleaved = round_jobs(rmit_rounds(2, 15, seed=seed))
    verdicts = {}
    for name, order in (("sequential", sequential), ("rmit", interleaved)):
        values = drifting_values(order, seed)
        [result] = compare([Pair({"order": name}, values[0], values[1])], n_resamples=999, seed=seed)
        verdicts[name] = result.verdict
    assert verdicts["sequential"] == "slower"
    assert verdicts["rmit"] not in ("faster", "slower")


@pytest.mark.parametrize("statistic", ["median", "mean"])
def test_the_runs_confidence_interval_covers_the_true_value_about_as_often_as_it_says(statistic):
    """Over 200 seeded samples of 25 values, a 95% interval holds the true median/mean within binomial bounds
    (190 +- 3 standard deviations)."""
    sigma = 0.2
    truth = 100.0 if statistic == "median" else 100 * float(np.exp(sigma**2 / 2))
    covered = 0
    for seed in range(200):
        values = list(100 * np.random.default_rng(seed).lognormal(0, sigma, 25))
        current = estimate(values, statistic, 0.95, (seed, 0))
        covered += current.ci_low <= truth <= current.ci_high
    assert 181 <= covered <= 199
