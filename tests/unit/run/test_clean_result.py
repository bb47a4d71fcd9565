"""`doe clean-result`: which result folders count as incomplete, which of them must stay, and that only a
confirmed deletion deletes (and only what is incomplete)."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

import yaml
from typer.testing import CliRunner

from doe_cli.main import app
from doe_cli.run import clean_result
from doe_cli.run.state import FAILED, FINISHED, QUEUED, ExperimentState, setup_marker

OLD = time.time() - 3600


def result_folder(results: Path, suite: str, suite_id: int, jobs: dict[str, list[str] | None]) -> Path:
    """A result folder as doe writes it: the design's experiments, each with a state whose jobs have the
    statuses given (None: no state.yml for that experiment)."""
    folder = results / f"{suite}_{suite_id}"
    (folder / ".doe").mkdir(parents=True)
    (folder / "suite_design.yml").write_text(yaml.safe_dump({name: {"n_repetitions": 1} for name in jobs}))
    for exp, statuses in jobs.items():
        if statuses is None:
            continue
        state = ExperimentState.new(suite, suite_id, exp, n_runs=len(statuses), n_reps=1)
        for run, status in enumerate(statuses):
            if status != "pending":
                state.set((run, 0), status, exit_code=0 if status == FINISHED else None)
        (folder / exp).mkdir()
        state.save(folder / exp / "state.yml")
    return folder


def found(results: Path, suite: str | None = None) -> dict[str, str | None]:
    """Folder name -> why it stays (None: it would be deleted)."""
    return {entry.folder.name: entry.skip for entry in clean_result.find_incomplete(results, suite)}


def test_only_incomplete_folders_are_candidates(tmp_path):
    result_folder(tmp_path, "s", 1, {"a": [FINISHED, FAILED], "b": [FINISHED]})  # complete (a failure counts)
    partial = result_folder(tmp_path, "s", 2, {"a": [FINISHED, QUEUED], "b": ["pending"]})
    result_folder(tmp_path, "s", 3, {"a": [FINISHED, FINISHED], "b": None})  # b never recorded its jobs
    (tmp_path / "notes_4").mkdir()  # named like a result folder, but not doe's
    assert found(tmp_path) == {"s_2": None, "s_3": None}
    [entry, _] = clean_result.find_incomplete(tmp_path)
    assert entry.folder == partial and entry.describe() == "s_2: suite s, id 2, 1/3 jobs done"


def test_a_folder_without_any_state_is_incomplete_unless_it_is_being_created(tmp_path):
    stopped = result_folder(tmp_path, "s", 1, {"a": None})
    os.utime(stopped, (OLD, OLD))
    result_folder(tmp_path, "s", 2, {"a": None})  # just created: its run takes the lock a moment later
    assert found(tmp_path) == {"s_1": None, "s_2": "a doe run is creating it"}
    assert clean_result.find_incomplete(tmp_path)[0].describe() == \
        "s_1: suite s, id 1, no job state (stopped before its jobs were recorded)"


def test_a_folder_a_running_doe_run_holds_stays(tmp_path):
    folder = result_folder(tmp_path, "s", 1, {"a": [QUEUED]})
    with open(folder / ".doe" / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as the controller holds it
        assert found(tmp_path) == {"s_1": "a doe run is using it"}
        [entry] = clean_result.find_incomplete(tmp_path)
        assert clean_result.delete(entry) == "a doe run is using it"
    assert folder.is_dir()
    assert found(tmp_path) == {"s_1": None}  # the run ended


def test_a_folder_whose_hosts_are_still_set_up_stays(tmp_path):
    local = result_folder(tmp_path, "s", 1, {"a": [QUEUED]})
    host_dir = tmp_path / "hosts" / "s_1" / "a-small-0"
    host_dir.mkdir(parents=True)
    (local / ".inventory").mkdir()
    (local / ".inventory" / "local.yml").write_text(yaml.safe_dump({"all": {"hosts": {"a-small-0": {
        "job_queue_dir": str(host_dir), "job_queue_ts_socket": str(tmp_path / "hosts" / "sockets" / "a")}}}}))
    ssh = result_folder(tmp_path, "s", 2, {"a": [QUEUED]})
    (ssh / ".inventory").mkdir()
    (ssh / ".inventory" / "lab.yml").write_text(yaml.safe_dump({"all": {"hosts": {"h1": {"ansible_host": "x"}}}}))
    setup_marker(ssh).write_text("setup finished\n")
    unknown = result_folder(tmp_path, "s", 3, {"a": [QUEUED]})  # no inventory stored, but set up
    setup_marker(unknown).write_text("setup finished\n")
    reasons = found(tmp_path)
    for name in ("s_1", "s_2", "s_3"):
        assert reasons[name] is not None and reasons[name].startswith("its hosts are still set up"), reasons
    assert "doe run --suite s --id 2" in reasons["s_2"]

    host_dir.rmdir()  # doe clean --cloud local removed the host
    setup_marker(ssh).unlink()  # and released the SSH hosts
    assert found(tmp_path) == {"s_1": None, "s_2": None, "s_3": reasons["s_3"]}


def test_an_unreadable_state_is_not_taken_for_incomplete(tmp_path):
    folder = result_folder(tmp_path, "s", 1, {"a": [FINISHED]})
    (folder / "a" / "state.yml").write_text("exp_job_ids: {}\n")
    [(name, reason)] = found(tmp_path).items()
    assert name == "s_1" and reason.startswith("its job state cannot be read")


def test_delete_checks_again_under_the_lock(tmp_path):
    folder = result_folder(tmp_path, "s", 1, {"a": [FINISHED, QUEUED]})
    [entry] = clean_result.find_incomplete(tmp_path)
    state = ExperimentState.load(folder / "a" / "state.yml", "s", 1, "a")
    state.set((1, 0), FINISHED, exit_code=0)  # a resume finished it after the listing
    state.save(folder / "a" / "state.yml")
    assert clean_result.delete(entry) == "it is complete now" and folder.is_dir()
    state.set((1, 0), QUEUED)
    state.save(folder / "a" / "state.yml")
    assert clean_result.delete(entry) is None and not folder.exists()


def invoke(results: Path, *args: str, answer: str = ""):
    (results.parent / "designs").mkdir(exist_ok=True)
    return CliRunner().invoke(app, ["--config-dir", str(results.parent), "--results-dir", str(results),
                                    "clean-result", *args], input=answer)


def test_the_command_lists_asks_and_deletes_only_after_yes(tmp_path):
    results = tmp_path / "results"
    complete = result_folder(results, "s", 1, {"a": [FINISHED]})
    partial = result_folder(results, "s", 2, {"a": [FINISHED, QUEUED]})
    other = result_folder(results, "t", 3, {"a": ["pending"]})

    listed = invoke(results, "--dry-run")
    assert listed.exit_code == 0 and listed.stdout.splitlines() == [
        "s_2: suite s, id 2, 1/2 jobs done", "t_3: suite t, id 3, 0/1 jobs done"]
    assert "would delete 2 incomplete result folder(s)" in listed.stderr

    declined = invoke(results, answer="n\n")
    assert declined.exit_code == 1
    assert declined.stderr.strip().endswith("error: nothing deleted: not confirmed (--yes deletes without asking)")
    assert "delete these 2 incomplete result folder(s) with everything in them? [y/N]" in declined.stderr
    assert "Traceback" not in declined.stderr
    assert invoke(results).exit_code == 1  # no answer (a script's empty stdin) is no
    assert complete.is_dir() and partial.is_dir() and other.is_dir()

    deleted = invoke(results, "--suite", "s", answer="y\n")
    assert deleted.exit_code == 0 and "deleted 1 incomplete result folder(s)" in deleted.stderr
    assert complete.is_dir() and not partial.exists() and other.is_dir()

    scripted = invoke(results, "--yes")
    assert scripted.exit_code == 0 and not other.exists() and complete.is_dir()
    again = invoke(results)
    assert again.exit_code == 0 and again.stdout == "" and "no incomplete result folder to delete" in again.stderr

