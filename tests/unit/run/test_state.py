"""The durable job state: doe-suite's six lists plus per-job status, written atomically."""

from __future__ import annotations

import pytest
import yaml

from doe_cli.errors import DoeError
from doe_cli.run.state import FAILED, FINISHED, PENDING, QUEUED, ExperimentState


def test_new_state_has_every_job_pending_in_order(tmp_path):
    state = ExperimentState.new("s", 17, "exp", n_runs=2, n_reps=2)
    path = tmp_path / "state.yml"
    state.save(path)
    content = yaml.safe_load(path.read_text())
    ids = [(j["exp_run"], j["exp_run_rep"]) for j in content["exp_job_ids"]]
    assert ids == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert content["exp_job_ids"][0] == {"suite": "s", "suite_id": 17, "exp_name": "exp", "exp_run": 0,
                                         "exp_run_rep": 0}
    assert content["exp_job_ids_pending"] == content["exp_job_ids"] == content["exp_job_ids_unfinished"]
    assert content["exp_job_ids_queued"] == content["exp_job_ids_running"] == content["exp_job_ids_finished"] == []
    assert "# pending + queued + running" in path.read_text().splitlines()[1]


def test_round_trip_keeps_status_exit_code_and_attempt(tmp_path):
    state = ExperimentState.new("s", 1, "e", n_runs=3, n_reps=1)
    state.set((0, 0), FINISHED, exit_code=0)
    state.set((1, 0), FAILED, exit_code=7, attempt=2)
    state.set((2, 0), QUEUED)
    assert state.counts() == {PENDING: 0, QUEUED: 1, FINISHED: 1, FAILED: 1} and not state.done()
    path = tmp_path / "state.yml"
    state.save(path)
    loaded = ExperimentState.load(path, "s", 1, "e")
    assert {k: (r.status, r.exit_code, r.attempt) for k, r in loaded.jobs.items()} == {
        (0, 0): (FINISHED, 0, 1), (1, 0): (FAILED, 7, 2), (2, 0): (QUEUED, None, 1)}
    content = yaml.safe_load(path.read_text())
    assert len(content["exp_job_ids_finished"]) == 2  # failed jobs are complete (fetched) too
    assert len(content["exp_job_ids_unfinished"]) == 1
    assert loaded.counts() == {PENDING: 0, QUEUED: 1, FINISHED: 1, FAILED: 1}


def test_a_doe_suite_state_without_job_details_loads(tmp_path):
    job = "{'suite': 's', 'suite_id': 1, 'exp_name': 'e', 'exp_run': %d, 'exp_run_rep': 0}"
    path = tmp_path / "state.yml"
    path.write_text(f"exp_job_ids: [{job % 0}, {job % 1}]\n"
                    f"exp_job_ids_unfinished: [{job % 1}] # pending + queued + running\n"
                    f"exp_job_ids_pending: []\nexp_job_ids_queued: [{job % 1}]\nexp_job_ids_running: []\n"
                    f"exp_job_ids_finished: [{job % 0}]\n")
    loaded = ExperimentState.load(path, "s", 1, "e")
    assert [r.status for r in loaded.jobs.values()] == [FINISHED, QUEUED]


def test_inconsistent_lists_are_refused(tmp_path):
    path = tmp_path / "state.yml"
    job = "{'suite': 's', 'suite_id': 1, 'exp_name': 'e', 'exp_run': 0, 'exp_run_rep': 0}"
    path.write_text(f"exp_job_ids: [{job}]\nexp_job_ids_pending: [{job}]\nexp_job_ids_finished: [{job}]\n")
    with pytest.raises(DoeError, match="inconsistent job lists"):
        ExperimentState.load(path, "s", 1, "e")


def test_save_replaces_the_file_atomically(tmp_path):
    path = tmp_path / "state.yml"
    state = ExperimentState.new("s", 1, "e", n_runs=1, n_reps=1)
    state.save(path)
    state.jobs[(0, 0)].status = QUEUED
    state.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["state.yml"]  # no temp file left behind
    assert ExperimentState.load(path, "s", 1, "e").jobs[(0, 0)].status == QUEUED


def test_changes_go_to_the_journal_and_a_load_replays_them(tmp_path):
    path = tmp_path / "state.yml"
    state = ExperimentState.new("s", 1, "e", n_runs=5000, n_reps=1)
    state.save(path)
    written = path.read_bytes()
    state.set((0, 0), QUEUED)
    state.set((1, 0), QUEUED)
    state.record(path)
    state.set((0, 0), FAILED, exit_code=3)
    state.record(path)
    assert path.read_bytes() == written  # nothing rewritten: two short appends
    assert (tmp_path / ".state_journal").read_text().splitlines() == [
        "generation 1", "run_0/rep_0 queued null 1", "run_1/rep_0 queued null 1", "run_0/rep_0 failed 3 1"]
    with open(tmp_path / ".state_journal", "a") as handle:
        handle.write("run_2/rep_0 fini")  # torn by a crash mid-write
    loaded = ExperimentState.load(path, "s", 1, "e")
    assert (loaded.jobs[(0, 0)].status, loaded.jobs[(0, 0)].exit_code) == (FAILED, 3)
    assert loaded.jobs[(1, 0)].status == QUEUED and loaded.jobs[(2, 0)].status == PENDING
    assert yaml.safe_load(path.read_text())["exp_job_ids_pending"][0]["exp_run"] == 0  # doe-suite's view: stale


def test_the_journal_is_compacted_once_as_long_as_the_suite_and_a_stale_one_is_ignored(tmp_path):
    path = tmp_path / "state.yml"
    state = ExperimentState.new("s", 1, "e", n_runs=1500, n_reps=1)
    state.save(path)
    for first in range(0, 1500, 100):
        for run in range(first, first + 100):
            state.set((run, 0), QUEUED)
        state.record(path)
    assert (tmp_path / ".state_journal").exists() and state.journal_lines == 1500
    state.set((0, 0), FINISHED, exit_code=0)
    state.record(path)  # the 1,501st line: state.yml is rewritten and the journal goes
    assert not (tmp_path / ".state_journal").exists()
    content = yaml.safe_load(path.read_text())
    assert len(content["exp_job_ids_queued"]) == 1499 and content["doe_journal_generation"] == 2
    # A crash between a rewrite and the journal's removal: the old journal's lines are not replayed.
    (tmp_path / ".state_journal").write_text("generation 1\nrun_0/rep_0 pending null 1\n")
    assert ExperimentState.load(path, "s", 1, "e").jobs[(0, 0)].status == FINISHED
    loaded = ExperimentState.load(path, "s", 1, "e")
    loaded.set((1, 0), FINISHED, exit_code=0)
    loaded.record(path)  # replaces the stale journal
    assert ExperimentState.load(path, "s", 1, "e").jobs[(1, 0)].status == FINISHED


def test_pending_jobs_come_in_design_order_and_a_job_pending_again_comes_last():
    state = ExperimentState.new("s", 1, "e", n_runs=4, n_reps=1)
    state.set((0, 0), QUEUED)
    state.set((1, 0), QUEUED)
    assert state.first_pending(5) == [(2, 0), (3, 0)]
    state.set((0, 0), PENDING)  # unknown to its host: scheduled again
    assert state.first_pending(2) == [(2, 0), (3, 0)] and state.first_pending(9)[-1] == (0, 0)
    for key in state.jobs:
        state.set(key, FINISHED, exit_code=0)
    assert state.done() and state.first_pending(1) == [] and state.counts()[FINISHED] == 4
