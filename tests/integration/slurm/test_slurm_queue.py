"""The host-side queue helper with Slurm as the queue (`--scheduler slurm`), on the real test cluster."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import time

import pytest

from tests.integration.run.conftest import REPO, wait_for

FILES = REPO / "roles" / "job-queue" / "files"
pytestmark = pytest.mark.slurm


def b64(value: dict) -> str:
    return base64.b64encode(json.dumps(value).encode()).decode()


@pytest.fixture
def queue(slurm_cluster, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("doe_queue.py", "doe_slurm.py", "doe_job.py", "doe_job.c"):
        shutil.copy2(FILES / name, bin_dir / name)
    root = tmp_path / "root"

    def call(action: str, request_body: dict | None = None, expect_rc: int = 0, **config):
        settings = {"job_name_prefix": "prj.s.1", "slurm_conf": str(slurm_cluster.conf), **call.config, **config}
        argv = [sys.executable, str(bin_dir / "doe_queue.py"), "--root", str(root), "--scheduler", "slurm",
                "--scheduler-config", b64(settings), action]
        if request_body is not None:
            argv += ["--request", b64(request_body)]
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
        assert done.returncode == expect_rc, done.stderr
        if expect_rc:
            return done.stderr
        return json.loads(done.stdout[len("DOE-JSON:"):])

    call.root = root
    call.config = {}
    call.cluster = slurm_cluster
    call("setup")
    yield call
    call("shutdown")


def batch(runs: dict[int, dict], jobs: list[list[int]], **extra) -> dict:
    configs = {str(run): {"n": run, "$CMD$": {"small": [cmds]}} for run, cmds in runs.items()}
    return {"exp": "e", "host": "h-0", "host_type": "small", "host_idx": 0, "runs": configs, "jobs": jobs, **extra}


def wait_ended(queue, jobs: list[list[int]], timeout: float = 90) -> dict:
    request = {"exp": "e", "jobs": jobs, "wait": 2}
    return wait_for(lambda: (r := queue("status", request)) and all(
        s["state"] in ("done", "lost") for s in r["jobs"].values()) and r, what="jobs ended", timeout=timeout)


def slurm_ids(queue, *rels: str) -> list[str]:
    return [json.loads((queue.root / rel / ".doe_slurm").read_text())["id"] for rel in rels]


def test_each_job_is_one_sbatch_whose_wrapper_writes_the_usual_files(queue):
    first = queue("enqueue", batch({0: {"main": "echo out; echo err >&2; hostname > where"},
                                   1: {"main": "echo bad; exit 3"}}, [[0, 0, 1], [1, 0, 1]]))
    assert first["enqueued"] == ["e/run_0/rep_0", "e/run_1/rep_0"]
    again = queue("enqueue", batch({0: {"main": "true"}, 1: {"main": "true"}}, [[0, 0, 1], [1, 0, 1]]))
    assert again["enqueued"] == [] and sorted(again["skipped"]) == ["e/run_0/rep_0", "e/run_1/rep_0"]
    report = wait_ended(queue, [[0, 0, 1], [1, 0, 1]])
    good, bad = report["jobs"]["e/run_0/rep_0"], report["jobs"]["e/run_1/rep_0"]
    assert (good["state"], good["status"], good["exit_code"]) == ("done", "finished", 0)
    assert (bad["state"], bad["status"], bad["exit_code"]) == ("done", "failed", 3)
    results = queue.root / "e/run_0/rep_0/results"
    assert (results / "stdout.log").read_text() == "out\n" and (results / "stderr.log").read_text() == "err\n"
    names = queue.cluster.run("squeue", "-h", "--states=all", "-j", ",".join(slurm_ids(
        queue, "e/run_0/rep_0", "e/run_1/rep_0")), "-o", "%j").stdout.split()
    assert sorted(names) == ["prj.s.1.e.0.0", "prj.s.1.e.1.0"]


def test_a_job_cancelled_by_someone_else_is_a_failure_with_slurms_reason(queue):
    queue("enqueue", batch({0: {"main": "sleep 300"}}, [[0, 0, 1]], wait_started=True, wait_timeout=60))
    (job_id,) = slurm_ids(queue, "e/run_0/rep_0")
    queue.cluster.run("scancel", job_id)  # an admin, a preemption, a time limit: not doe
    state = wait_ended(queue, [[0, 0, 1]])["jobs"]["e/run_0/rep_0"]
    assert state["status"] == "failed" and state["stopped_by_controller"] is False, state
    assert state["reason"] == "Slurm: CANCELLED", state


def test_a_stop_from_doe_cancels_the_job_and_is_no_failure(queue):
    queue("enqueue", batch({0: {"main": "exec sleep 300"}}, [[0, 0, 1]], wait_started=True, wait_timeout=60))
    stopped = queue("status", {"exp": "e", "jobs": [[0, 0, 1]], "stop": ["e/run_0/rep_0"]})
    assert stopped["stopped"] == ["e/run_0/rep_0"]
    state = wait_ended(queue, [[0, 0, 1]])["jobs"]["e/run_0/rep_0"]
    assert state["status"] == "finished" and state["stopped_by_controller"] is True, state


def test_a_job_pending_for_a_reason_that_never_clears_is_cancelled_and_reported(queue):
    queue.config = {"sbatch_args": ["--nodes=3"], "max_pending_minutes": 0.02}  # two nodes exist
    queue("enqueue", batch({0: {"main": "true"}}, [[0, 0, 1]]))
    state = wait_ended(queue, [[0, 0, 1]])["jobs"]["e/run_0/rep_0"]
    assert state["state"] == "lost" and "pending" in state["reason"], state
    assert "(Partition" in state["reason"], state  # PartitionNodeLimit or PartitionConfig: Slurm's words
    (job_id,) = slurm_ids(queue, "e/run_0/rep_0")
    wait_for(lambda: "CANCELLED" in queue.cluster.run("squeue", "-h", "--states=all", "-j", job_id,
                                                      "-o", "%T").stdout, what="the job cancelled")


def test_a_read_only_status_changes_nothing_on_the_cluster(queue):
    """doe status asks while a controller may be polling: no cancel, no record written."""
    queue.config = {"sbatch_args": ["--nodes=3"], "max_pending_minutes": 0.001}  # two nodes exist
    queue("enqueue", batch({0: {"main": "true"}, 1: {"main": "true"}}, [[0, 0, 1], [1, 0, 1]]))
    (pending_id,) = slurm_ids(queue, "e/run_0/rep_0")
    unrecorded = queue.root / "e/run_1/rep_0/.doe_slurm"
    record = json.loads(unrecorded.read_text())
    unrecorded.write_text(json.dumps({**record, "id": None}))  # as if killed between sbatch and its record
    time.sleep(0.2)  # past max_pending_minutes: a controller's poll would cancel now
    seen = queue("status", {"exp": "e", "jobs": [[0, 0, 1], [1, 0, 1]], "read_only": True})
    assert seen["jobs"]["e/run_0/rep_0"]["state"] == "queued", seen
    assert seen["jobs"]["e/run_0/rep_0"]["scheduler"][0] == "PENDING", seen
    assert json.loads(unrecorded.read_text())["id"] is None
    assert "PENDING" in queue.cluster.run("squeue", "-h", "-j", pending_id, "-o", "%T").stdout
    # The controller's poll acts: the pending job is cancelled, the lost id found again.
    acted = queue("status", {"exp": "e", "jobs": [[0, 0, 1], [1, 0, 1]]})
    assert acted["jobs"]["e/run_0/rep_0"]["state"] == "lost", acted
    assert json.loads(unrecorded.read_text())["id"] == record["id"]  # shutdown cancels it by that id


def test_a_submission_whose_id_was_not_recorded_is_found_by_its_comment_not_submitted_twice(queue):
    queue("enqueue", batch({0: {"main": "sleep 2"}}, [[0, 0, 1]]))
    record_file = queue.root / "e/run_0/rep_0/.doe_slurm"
    record = json.loads(record_file.read_text())
    record_file.write_text(json.dumps({**record, "id": None}))  # killed between sbatch and writing its id
    again = queue("enqueue", batch({0: {"main": "sleep 2"}}, [[0, 0, 1]]))
    assert again["enqueued"] == [] and again["skipped"] == ["e/run_0/rep_0"]
    assert json.loads(record_file.read_text())["id"] == record["id"]
    assert wait_ended(queue, [[0, 0, 1]])["jobs"]["e/run_0/rep_0"]["status"] == "finished"


def test_shutdown_cancels_the_queued_jobs_by_their_recorded_ids_only(queue, tmp_path):
    other = queue.cluster.run("sbatch", "--parsable", "-o", "/dev/null", "--nodes=3", "--wrap", "true").stdout.strip()
    try:
        queue.config = {"sbatch_args": ["--nodes=3"]}  # pending until cancelled
        queue("enqueue", batch({0: {"main": "true"}, 1: {"main": "true"}}, [[0, 0, 1], [1, 0, 1]]))
        ids = slurm_ids(queue, "e/run_0/rep_0", "e/run_1/rep_0")
        queue("shutdown")

        def states() -> dict[str, str]:
            listing = queue.cluster.run("squeue", "-h", "--states=all", "-j", ",".join([*ids, other]),
                                        "-o", "%i %T").stdout
            return dict(line.split() for line in listing.splitlines())

        wait_for(lambda: all(states().get(job_id) == "CANCELLED" for job_id in ids), what="both cancelled")
        time.sleep(0.5)
        assert states()[other] == "PENDING"  # another suite's job stays
    finally:
        queue.cluster.run("scancel", other)
