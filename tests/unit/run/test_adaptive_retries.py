"""Failed reps of an adaptive run: retried as new attempts, but not past the time cap, and a crash in the
middle of setting an attempt aside never blocks the resume."""

from __future__ import annotations

import time

from doe_cli.design.repetitions import Repetitions
from doe_cli.run.adaptive import AdaptiveRuns, order_entry
from doe_cli.run.order import SEQUENTIAL
from doe_cli.run.runtime import set_attempt_aside
from doe_cli.run.state import FAILED, PENDING, QUEUED, ExperimentState
from doe_cli.run.stopping import ADAPTING, TIME_CAP
from etl.layout import job_dir

EXP = "exp"


def _adaptive(tmp_path, max_minutes):
    spec = Repetitions(max=10, file="out.csv", field="ms", max_minutes=max_minutes)
    logged: list[str] = []
    runs = AdaptiveRuns(exp=EXP, spec=spec, minimum=1, n_runs=1, entry=order_entry(SEQUENTIAL, 7, 1, 1),
                        suite_dir=tmp_path, host_types=["server"], save_order=lambda: None, log=logged.append)
    state = ExperimentState.new("suite", 1, EXP, n_runs=1, n_reps=1)
    runs.resume(state)
    runs.note_started()
    state.set((0, 0), QUEUED)
    return runs, state, logged


def _fetched(tmp_path, key, host_type="server", text="attempt 0"):
    folder = tmp_path / job_dir(EXP, key) / host_type / "host_0"
    folder.mkdir(parents=True)
    (folder / "stderr.log").write_text(text)


def test_a_failed_rep_runs_again_as_a_new_attempt_before_the_time_cap(tmp_path):
    runs, state, logged = _adaptive(tmp_path, max_minutes=60)
    _fetched(tmp_path, (0, 0))
    state.set((0, 0), FAILED)
    runs.on_complete(state, (0, 0), failed=True)
    assert (state.jobs[(0, 0)].status, state.jobs[(0, 0)].attempt) == (PENDING, 2)
    assert runs.runs[0]["status"] == ADAPTING and "attempt 2" in logged[-1]
    assert (tmp_path / job_dir(EXP, (0, 0)) / ".attempt_1" / "server" / "host_0" / "stderr.log").is_file()


def test_a_failed_rep_after_the_time_cap_is_not_retried_and_the_run_stops_on_the_cap(tmp_path):
    runs, state, _ = _adaptive(tmp_path, max_minutes=1)
    runs.started = time.time() - 120  # the cap passed while the rep ran
    _fetched(tmp_path, (0, 0))
    state.set((0, 0), FAILED)
    runs.on_complete(state, (0, 0), failed=True)
    assert (state.jobs[(0, 0)].status, state.jobs[(0, 0)].attempt) == (FAILED, 1)
    assert runs.runs[0]["status"] == TIME_CAP and runs.adapting == 0
    assert len(state.jobs) == 1  # no new rep either


def test_setting_an_attempt_aside_again_after_a_crash_keeps_both_copies(tmp_path):
    key = (0, 0)
    rep_dir = tmp_path / job_dir(EXP, key)
    _fetched(tmp_path, key, text="first fetch")
    set_attempt_aside(tmp_path, EXP, ["server"], key, 0)
    # The crash came before the state recorded attempt 1: the resume fetches attempt 0 again.
    _fetched(tmp_path, key, text="second fetch")
    set_attempt_aside(tmp_path, EXP, ["server"], key, 0)
    assert (rep_dir / ".attempt_0" / "server" / "host_0" / "stderr.log").read_text() == "first fetch"
    assert (rep_dir / ".attempt_0_2" / "server" / "host_0" / "stderr.log").read_text() == "second fetch"
    assert not (rep_dir / "server").exists()


def test_a_crash_between_two_host_types_moves_only_what_is_left(tmp_path):
    key = (0, 0)
    rep_dir = tmp_path / job_dir(EXP, key)
    _fetched(tmp_path, key, "client")
    set_attempt_aside(tmp_path, EXP, ["client"], key, 0)  # the crash came before server moved
    _fetched(tmp_path, key, "server")
    set_attempt_aside(tmp_path, EXP, ["client", "server"], key, 0)
    assert sorted(p.name for p in (rep_dir / ".attempt_0").iterdir()) == ["client", "server"]
    assert sorted(p.name for p in rep_dir.iterdir()) == [".attempt_0"]
