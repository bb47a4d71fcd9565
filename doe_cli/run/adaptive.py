"""The run loop's side of `order: rmit` and adaptive repetitions: the suite's `order.json`, and per adaptive
experiment the reps added as results arrive (`<exp>/adaptive.json` says per run n, estimate, CI, status).

order.json: per experiment with `order: rmit` or `repetitions:`, its order, seed and (rmit) the rounds so
far, each a list of runs; round r holds rep r of each. A resumed suite reads it back, so it keeps its
order and seed. The pure rules are doe_cli.run.order and doe_cli.run.stopping.

An adaptive run is decided once none of its reps is pending or queued: converged, max reached, time cap,
or one more rep (sequential: at once; rmit: once the whole round is done, in a new round of the runs still
adapting). A failed rep does not count: it runs again as a new attempt while the run's attempts stay
below `max` and the time cap has not passed. A metric that cannot be read stops its run's adapting, said once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from doe_cli.design.repetitions import Repetitions
from doe_cli.errors import DoeError
from doe_cli.fileio import write_atomic
from doe_cli.run.order import RMIT, SEQUENTIAL, new_seed, permutation, rmit_rounds, round_jobs
from doe_cli.run.runtime import set_attempt_aside
from doe_cli.run.state import PENDING, QUEUED, ExperimentState
from doe_cli.run.stopping import ADAPTING, METRIC_ERROR, decide, estimate, point_estimate
from etl.layout import JobKey, job_dir

ORDER_FILE = "order.json"
SUMMARY_FILE = "adaptive.json"


def load_orders(suite_dir: Path) -> dict[str, dict]:
    path = suite_dir / ORDER_FILE
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        raise DoeError(f"{path}: cannot read the suite's job order: {error}") from None
    experiments = content.get("experiments") if isinstance(content, dict) else None
    if not isinstance(experiments, dict):
        raise DoeError(f"{path}: experiments: expected a mapping of experiment names to orders")
    return experiments


def save_orders(suite_dir: Path, orders: dict[str, dict]) -> None:
    write_atomic(suite_dir / ORDER_FILE, json.dumps({"experiments": orders}, separators=(",", ":")) + "\n")


def order_entry(order: str, seed: int | None, n_runs: int, n_reps: int) -> dict[str, Any]:
    """A new experiment's entry of order.json (its seed drawn if the design gives none)."""
    seed = new_seed() if seed is None else seed
    entry: dict[str, Any] = {"order": order, "seed": seed}
    if order == RMIT:
        entry["rounds"] = rmit_rounds(n_runs, n_reps, seed)
    return entry


def initial_order(entry: dict | None) -> list[JobKey] | None:
    """The jobs in the order they are handed out, if not in design order."""
    if entry is None or entry.get("order", SEQUENTIAL) != RMIT:
        return None
    return round_jobs(entry["rounds"])


class AdaptiveRuns:
    """One adaptive experiment's runs: their values so far and what becomes of each."""

    def __init__(self, *, exp: str, spec: Repetitions, minimum: int, n_runs: int, entry: dict,
                 suite_dir: Path, host_types: list[str], save_order: Callable[[], None],
                 log: Callable[[str], None]) -> None:
        self.exp, self.spec, self.minimum, self.n_runs = exp, spec, minimum, n_runs
        self.entry, self.seed, self.rmit = entry, int(entry["seed"]), entry.get("order") == RMIT
        self.suite_dir, self.host_types = suite_dir, host_types
        self.save_order, self.log = save_order, log
        self.path = suite_dir / exp / SUMMARY_FILE
        stored = self._load()
        self.started: float | None = stored.get("started")
        self.runs: dict[int, dict[str, Any]] = {run: {"status": ADAPTING, "n": 0, "estimate": None,
                                                      "ci_low": None, "ci_high": None} for run in range(n_runs)}
        for run, saved in (stored.get("runs") or {}).items():
            if int(run) in self.runs and isinstance(saved, dict):
                self.runs[int(run)].update(saved)
        self.values: dict[int, dict[int, float]] = {run: {} for run in range(n_runs)}
        self.n_reps: dict[int, int] = {}
        self.adapting = 0
        self.dirty = not self.path.exists()

    def _load(self) -> dict:
        try:
            content = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:
            raise DoeError(f"{self.path}: cannot read the adaptive repetitions' state: {error}") from None
        return content if isinstance(content, dict) else {}

    # --- start and resume -------------------------------------------------------------------------
    def resume(self, state: ExperimentState) -> None:
        """Values of the reps already fetched, the rmit round order.json has but the state not yet (a
        crash in between), and a decision for every run that waits for one."""
        state.adaptive = self.runs  # state.yml shows them
        for key in round_jobs(self.entry.get("rounds") or []) if self.rmit else []:
            if key not in state.jobs:
                state.add(key)
        for run, rep in state.jobs:
            self.n_reps[run] = max(self.n_reps.get(run, 0), rep + 1)
        for (run, rep), record in state.jobs.items():
            if record.status == "finished" and self.runs[run]["status"] == ADAPTING:
                self._read(run, rep)
        self.adapting = sum(1 for entry in self.runs.values() if entry["status"] == ADAPTING)
        for run in range(self.n_runs):
            if self.runs[run]["status"] == ADAPTING and not self._outstanding(state, run):
                self._settle(state, run)
        self._next_round(state)

    def note_started(self) -> None:
        if self.started is None:
            self.started = time.time()
            self.dirty = True

    def may_grow(self) -> bool:
        return self.adapting > 0

    # --- as results arrive ------------------------------------------------------------------------
    def on_complete(self, state: ExperimentState, key: JobKey, failed: bool) -> None:
        run, rep = key
        if self.runs[run]["status"] != ADAPTING:
            return
        if failed and self._attempts(state, run) < self.spec.max and not self._time_up():
            attempt = state.jobs[key].attempt
            set_attempt_aside(self.suite_dir, self.exp, self.host_types, key, attempt)
            state.set(key, PENDING, attempt=attempt + 1)
            self.log(f"{self.exp} run {run} rep {rep}: a failed rep does not count; it runs again "
                     f"(attempt {attempt + 1})")
            return
        if not failed:
            self._read(run, rep)
        if self.runs[run]["status"] == ADAPTING and not self._outstanding(state, run):
            self._settle(state, run)
        self._next_round(state)

    def _read(self, run: int, rep: int) -> None:
        from etl.compare_reader import Metric, rep_values
        from etl.errors import EtlError

        rel = job_dir(self.exp, (run, rep))
        try:
            values = rep_values(self.suite_dir / rel, Metric(self.spec.file, self.spec.field), self.exp, run)
        except (EtlError, OSError) as error:
            detail = getattr(error, "detail", str(error))
            self._stop_on_error(run, f"{self.exp} run {run}: cannot read the metric {self.spec.metric}: {detail}")
            return
        if not values:
            self._stop_on_error(run, f"{self.exp} run {run}: no {self.spec.file} with {self.spec.field!r} in "
                                     f"{rel}/<host_type>/host_<i>/")
            return
        self.values[run][rep] = point_estimate(values, self.spec.statistic)

    def _stop_on_error(self, run: int, message: str) -> None:
        self.log(f"error: {message}; the run stops adapting")
        self.runs[run].update(status=METRIC_ERROR, error=message)
        self.adapting -= 1
        self.dirty = True

    def _outstanding(self, state: ExperimentState, run: int) -> bool:
        return any(state.jobs[(run, rep)].status in (PENDING, QUEUED) for rep in range(self.n_reps.get(run, 0)))

    def _attempts(self, state: ExperimentState, run: int) -> int:
        return sum(state.jobs[(run, rep)].attempt for rep in range(self.n_reps.get(run, 0)))

    def _time_up(self) -> bool:
        cap = self.spec.max_minutes
        return cap is not None and self.started is not None and time.time() - self.started >= cap * 60

    def _settle(self, state: ExperimentState, run: int) -> None:
        """A run none of whose reps is outstanding: its estimate, and one more rep or why it stops."""
        values = list(self.values[run].values())
        current = estimate(values, self.spec.statistic, self.spec.confidence, (self.seed, run))
        decision = decide(current, minimum=self.minimum, target_ci=self.spec.target_ci,
                          attempts=self._attempts(state, run), maximum=self.spec.max, time_up=self._time_up())
        self.runs[run].update(n=current.n, estimate=current.estimate, ci_low=current.ci_low,
                              ci_high=current.ci_high, status=decision)
        self.dirty = True
        if decision != ADAPTING:
            self.adapting -= 1
        elif not self.rmit:
            self._add(state, run)

    def _next_round(self, state: ExperimentState) -> None:
        """rmit: once no job of the experiment is outstanding, a new round of the runs still adapting."""
        if not self.rmit or not self.adapting:
            return
        counts = state.counts()
        if counts[PENDING] or counts[QUEUED]:
            return
        rounds = self.entry["rounds"]
        runs = [run for run in range(self.n_runs) if self.runs[run]["status"] == ADAPTING]
        rounds.append(permutation(runs, self.seed, len(rounds)))
        self.save_order()  # before the jobs: a resume adds a recorded round's missing jobs
        for run in rounds[-1]:
            self._add(state, run)

    def _add(self, state: ExperimentState, run: int) -> None:
        rep = self.n_reps.get(run, 0)
        state.add((run, rep))
        self.n_reps[run] = rep + 1

    def flush(self) -> None:
        """adaptive.json, when a decision changed it."""
        if not self.dirty:
            return
        content = {"metric": self.spec.metric, "statistic": self.spec.statistic, "target_ci": self.spec.target_ci,
                   "confidence": self.spec.confidence, "max": self.spec.max, "seed": self.seed,
                   "started": self.started, "runs": {str(run): entry for run, entry in self.runs.items()}}
        write_atomic(self.path, json.dumps(content, indent=1) + "\n")
        self.dirty = False
