"""The order in which an experiment's jobs go to its hosts (pure; `order.json` records it).

`sequential` (doe-suite's): run 0's reps, then run 1's, ... `rmit` (randomized multiple interleaved
trials): rounds, each holding one rep of every unfinished run in a fresh permutation drawn from the seed
and the round's number, so that a slow drift of the machine spreads evenly over the runs. Round r holds
rep r of each of its runs. Python's `random` seeded with a string is stable across Python versions.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

SEQUENTIAL, RMIT = "sequential", "rmit"


def permutation(runs: Sequence[int], seed: int, round_index: int) -> list[int]:
    """The runs of one round in its order: the same for the same seed and round, fresh for every round."""
    shuffled = list(runs)
    random.Random(f"doe-rmit:{seed}:{round_index}").shuffle(shuffled)
    return shuffled


def rmit_rounds(n_runs: int, n_reps: int, seed: int) -> list[list[int]]:
    """The first n_reps rounds, each with every run."""
    return [permutation(range(n_runs), seed, index) for index in range(n_reps)]


def round_jobs(rounds: Sequence[Sequence[int]]) -> list[tuple[int, int]]:
    """The jobs (run, rep) of the rounds, in order: round r holds rep r of each of its runs."""
    return [(run, index) for index, runs in enumerate(rounds) for run in runs]


def new_seed() -> int:
    """A seed for a design that gives none (recorded in order.json, so a resume keeps it)."""
    return random.SystemRandom().randrange(2**31)
