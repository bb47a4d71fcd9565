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
    state.jobs[(0, 0)].status = FINISHED
    state.jobs[(0, 0)].exit_code = 0
    state.jobs[(1, 0)].status, state.jobs[(1, 0)].exit_code, state.jobs[(1, 0)].attempt = FAILED, 7, 2
    state.jobs[(2, 0)].status = QUEUED
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
