"""The host-side queue helper and job wrapper, driven directly with a real task spooler."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.integration.run.conftest import REPO, process_gone, tsp_servers_under, wait_for

FILES = REPO / "roles" / "job-queue" / "files"
QUEUE = FILES / "doe_queue.py"
pytestmark = pytest.mark.tsp


@pytest.fixture(scope="module")
def installed_bin(tmp_path_factory):
    """The queue helper and both job wrappers as a host has them after setup (the native one built once)."""
    bin_dir = tmp_path_factory.mktemp("host") / "bin"
    bin_dir.mkdir()
    for name in ("doe_queue.py", "doe_job.py", "doe_job.c"):
        shutil.copy2(FILES / name, bin_dir / name)
    done = subprocess.run([sys.executable, str(bin_dir / "doe_queue.py"), "--root", str(bin_dir.parent / "root"),
                           "--socket", str(bin_dir.parent / "ts.sock"), "--wrapper", "native", "setup"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0 and '"job_wrapper": "native"' in done.stdout, done.stderr
    subprocess.run([sys.executable, str(bin_dir / "doe_queue.py"), "--root", str(bin_dir.parent / "root"),
                    "--socket", str(bin_dir.parent / "ts.sock"), "shutdown"], check=True, capture_output=True)
    return bin_dir


@pytest.fixture(params=["native", "python"])
def queue(tmp_path, installed_bin, request):
    socket = tmp_path / "ts.sock"
    root = tmp_path / "root"
    bin_dir = tmp_path / "bin"
    shutil.copytree(installed_bin, bin_dir)  # copy2 keeps the build newer than its source

    def call(action: str, request_body: dict | None = None, expect_rc: int = 0):
        argv = [sys.executable, str(bin_dir / "doe_queue.py"), "--root", str(root), "--socket", str(socket),
                "--wrapper", call.wrapper, action]
        if request_body is not None:
            argv += ["--request", base64.b64encode(json.dumps(request_body).encode()).decode()]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        assert done.returncode == expect_rc, done.stderr
        if expect_rc:
            return done.stderr
        assert done.stdout.startswith("DOE-JSON:")
        return json.loads(done.stdout[len("DOE-JSON:"):])

    call.root = root
    call.wrapper = request.param
    call.bin_dir = bin_dir
    yield call
    call("shutdown")


def batch(runs: dict[int, dict], jobs: list[list[int]], **extra) -> dict:
    """An enqueue request for host h-0 (type small, index 0); each run's $CMD$ comes from `runs`."""
    configs = {str(run): {"n": run, "$CMD$": {"small": [cmds]}} for run, cmds in runs.items()}
    return {"exp": "e", "host": "h-0", "host_type": "small", "host_idx": 0, "runs": configs, "jobs": jobs, **extra}


def wait_done(queue, jobs: list[list[int]]) -> dict:
    request = {"exp": "e", "jobs": jobs, "wait": 5}
    return wait_for(lambda: (r := queue("status", request)) and all(
        s["state"] == "done" for s in r["jobs"].values()) and r, what="jobs done")


def test_enqueue_runs_each_job_once_with_separate_streams_and_exit_codes(queue):
    request = batch({0: {"main": "echo out; echo err >&2; head -c 11 config.json"}, 1: {"main": "echo bad; exit 3"}},
                    [[0, 0, 1], [1, 0, 1]])
    first = queue("enqueue", request)
    again = queue("enqueue", request)
    assert first["enqueued"] == ["e/run_0/rep_0", "e/run_1/rep_0"]
    assert again["enqueued"] == [] and again["skipped"] == first["enqueued"]
    report = wait_done(queue, [[0, 0, 1], [1, 0, 1]])
    assert queue("enqueue", request)["enqueued"] == []
    ok, bad = report["jobs"]["e/run_0/rep_0"], report["jobs"]["e/run_1/rep_0"]
    assert (ok["status"], ok["exit_code"]) == ("finished", 0)
    assert (bad["status"], bad["exit_code"]) == ("failed", 3)
    results = queue.root / "e/run_0/rep_0/results"
    assert (results / "stdout.log").read_text() == 'out\n{\n    "$CMD'
    assert (results / "stderr.log").read_text() == "err\n"
    assert json.loads((queue.root / "e/run_0/rep_0/config.json").read_text())["n"] == 0
    assert report["fetch_count"] == 2
    assert Path(report["fetch_list"]).read_text() == "e/run_0/rep_0/results/\ne/run_1/rep_0/results/\n"
    info = (results / ".doe_runtime_info.yaml").read_text()
    for key in ("start_time", "end_time", "wall_seconds", "max_rss_kb", "exit_code", "status", "host",
                "host_type", "host_idx"):
        assert f"\n{key}: " in f"\n{info}"


def test_a_jobs_own_runtime_info_is_kept_byte_for_byte_next_to_does_hidden_record(queue):
    own = "{wall_time: 0:00.01, max_rss: 1234}\n"
    queue("enqueue", batch({0: {"main": "printf '%s\\n' '" + own.strip() + "' > results/runtime_info.yaml"}},
                           [[0, 0, 1]]))
    report = wait_done(queue, [[0, 0, 1]])
    results = queue.root / "e/run_0/rep_0/results"
    assert (results / "runtime_info.yaml").read_text() == own
    record = yaml.safe_load((results / ".doe_runtime_info.yaml").read_text())
    assert record["exit_code"] == 0 and record["host"] == "h-0"
    assert report["jobs"]["e/run_0/rep_0"]["status"] == "finished"


def test_background_commands_end_with_main_and_timeout_is_recorded(queue):
    # main waits for the background command's pid file: background commands start first, but nothing
    # makes main wait for them (a main that needs them ready has to wait, as here).
    wait_for_pid = "i=0; while [ ! -s results/bg.pid ] && [ $i -lt 1000 ]; do sleep 0.01; i=$((i+1)); done"
    queue("enqueue", batch({0: {"main": wait_for_pid,
                                "bg": "echo $$ > results/bg.tmp && mv results/bg.tmp results/bg.pid; exec sleep 300"}},
                           [[0, 0, 1]]))
    queue("enqueue", batch({1: {"main": "sleep 300"}}, [[1, 0, 1]], timeout=0.5))
    report = wait_done(queue, [[0, 0, 1], [1, 0, 1]])
    pid = int((queue.root / "e/run_0/rep_0/results/bg.pid").read_text())
    assert process_gone(pid)
    timed_out = report["jobs"]["e/run_1/rep_0"]
    assert timed_out["status"] == "timeout" and timed_out["exit_code"] == 143


def test_a_poll_with_a_cursor_reports_only_what_finished_since_in_pages(queue):
    jobs = [[run, 0, 1] for run in range(5)]
    queue("enqueue", batch({run: {"main": f"echo {run}"} for run in range(5)}, jobs))
    first = queue("status", {"exp": "e", "cursor": 0, "max_report": 3, "wait": 10, "wait_for": 5})
    assert sorted(first["jobs"]) == [f"e/run_{run}/rep_0" for run in range(3)] or len(first["jobs"]) == 3
    assert first["more"] is True and first["fetch_count"] == 3
    assert all(state["state"] == "done" for state in first["jobs"].values())
    rest = queue("status", {"exp": "e", "cursor": first["cursor"], "max_report": 3})
    assert len(rest["jobs"]) == 2 and rest["more"] is False and rest["idle"] is True
    assert set(first["jobs"]) | set(rest["jobs"]) == {f"e/run_{run}/rep_0" for run in range(5)}
    nothing_new = queue("status", {"exp": "e", "cursor": rest["cursor"], "max_report": 3})
    assert (nothing_new["jobs"], nothing_new["fetch_count"], nothing_new["cursor"]) == ({}, 0, rest["cursor"])
    # The controller names only what the journal cannot tell, e.g. a job its host never got.
    named = queue("status", {"exp": "e", "cursor": rest["cursor"], "jobs": [[7, 0, 1]]})
    assert named["jobs"] == {"e/run_7/rep_0": {"state": "unknown"}} and named["queue"] == {"queued": 0, "running": 0}


def test_stop_ends_a_running_job_and_status_reports_it(queue):
    result = queue("enqueue", batch({0: {"main": "exec sleep 300"}}, [[0, 0, 1]], wait_started=True))
    assert result["started"] == ["e/run_0/rep_0"]
    request = {"exp": "e", "jobs": [[0, 0, 1]]}
    assert queue("status", request)["jobs"]["e/run_0/rep_0"]["state"] == "running"
    stopped = queue("status", {**request, "stop": ["e/run_0/rep_0"]})
    state = stopped["jobs"]["e/run_0/rep_0"]
    assert stopped["stopped"] == ["e/run_0/rep_0"]
    assert state["state"] == "done" and state["stopped_by_controller"] is True and state["status"] == "finished"


def test_unknown_and_retried_jobs(queue):
    assert queue("status", {"exp": "e", "jobs": [[9, 0, 1]]})["jobs"] == {"e/run_9/rep_0": {"state": "unknown"}}
    queue("enqueue", batch({0: {"main": "exit 4"}}, [[0, 0, 1]]))
    wait_done(queue, [[0, 0, 1]])
    assert queue("enqueue", batch({0: {"main": "echo second"}}, [[0, 0, 2]]))["enqueued"] == ["e/run_0/rep_0"]
    report = wait_done(queue, [[0, 0, 2]])
    assert report["jobs"]["e/run_0/rep_0"]["exit_code"] == 0
    assert (queue.root / "e/run_0/rep_0/attempt_1/results/stdout.log").exists()


def test_job_dirs_outside_the_root_are_refused(queue):
    error = queue("status", {"exp": "..", "jobs": [[0, 0, 1]], "stop": ["../../escape"]}, expect_rc=1)
    assert "not a plain relative path" in error


def test_a_hanging_tsp_client_is_an_error_not_a_hang(tmp_path, monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location("doe_queue_under_test", QUEUE)
    helper = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helper)
    hanging_tsp = tmp_path / "tsp"
    hanging_tsp.write_text("#!/bin/sh\nexec sleep 60\n")
    hanging_tsp.chmod(0o755)
    monkeypatch.setattr(helper, "TSP_TIMEOUT", 0.5)

    with pytest.raises(helper.QueueError, match="did not answer within 0.5 s"):
        helper.setup(str(tmp_path / "root"), helper.TaskSpooler(str(hanging_tsp)))


def test_shutdown_releases_the_hosts_lock_only_for_its_owner(tmp_path):
    socket, root, lock = tmp_path / "ts.sock", tmp_path / "root", tmp_path / "doe.lock"

    def shutdown(owner: str) -> dict:
        argv = [sys.executable, str(QUEUE), "--root", str(root), "--socket", str(socket), "shutdown",
                "--lock-file", str(lock), "--lock-owner", owner]
        done = subprocess.run(argv, capture_output=True, text=True, check=True)
        return json.loads(done.stdout[len("DOE-JSON:"):])

    lock.write_text("other_2\n")
    assert shutdown("suite_1")["lock"] == "not-ours" and lock.read_text() == "other_2\n"
    lock.write_text("suite_1\n")
    assert shutdown("suite_1")["lock"] == "released" and not lock.exists()
    assert shutdown("suite_1")["lock"] == "not-ours"  # nothing left to release


def test_a_final_status_shuts_the_queue_down_once_every_job_is_done(queue, tmp_path):
    lock = tmp_path / "doe.lock"
    lock.write_text("suite_1\n")
    queue("enqueue", batch({0: {"main": "true"}}, [[0, 0, 1]]))
    wait_done(queue, [[0, 0, 1]])

    def final_status(jobs: list[list[int]]) -> dict:
        request = base64.b64encode(json.dumps({"exp": "e", "jobs": jobs, "final": True}).encode()).decode()
        argv = [sys.executable, str(queue.bin_dir / "doe_queue.py"), "--root", str(queue.root),
                "--socket", str(tmp_path / "ts.sock"), "status", "--request", request, "--lock-file", str(lock), "--lock-owner", "suite_1"]
        done = subprocess.run(argv, capture_output=True, text=True, check=True)
        return json.loads(done.stdout[len("DOE-JSON:"):])

    # A job of the request is not done yet (never queued): the queue stays up, the lock stays.
    assert "shut_down" not in final_status([[0, 0, 1], [1, 0, 1]]) and lock.exists()
    report = final_status([[0, 0, 1]])
    assert report["all_done"] and report["shut_down"]["lock"] == "released" and not lock.exists()
    wait_for(lambda: tsp_servers_under(tmp_path) == [], what="the task spooler server gone")


def test_both_wrappers_record_the_same_fields_and_quote_design_values(queue):
    host = 'h "0" \\ é: {x}'
    request = {**batch({0: {"main": "true"}}, [[0, 0, 1]]), "host": host}
    queue("enqueue", request)
    marker = wait_done(queue, [[0, 0, 1]])["jobs"]["e/run_0/rep_0"]
    info = yaml.safe_load((queue.root / "e/run_0/rep_0/results/.doe_runtime_info.yaml").read_text())
    assert list(info) == ["start_time", "end_time", "wall_seconds", "max_rss_kb", "exit_code", "status", "host",
                          "host_type", "host_idx", "stopped_by_controller"]
    assert (info["host"], info["host_type"], info["host_idx"]) == (host, "small", 0)
    assert marker["host"] == host and marker["label"] == "doe:e:0:0:1" and marker["attempt"] == 1
    assert isinstance(info["wall_seconds"], float) and 0 < info["wall_seconds"] < 60
    assert info["start_time"].endswith("Z") and info["start_time"] <= info["end_time"]
    assert (info["exit_code"], info["status"], info["stopped_by_controller"]) == (0, "finished", False)
    assert {key: marker[key] for key in info} == info


def test_a_job_gets_default_signals_and_its_peak_memory_is_recorded(queue):
    # SIGPIPE at its default: `yes` ends quietly when head is done (ignored, it would complain and fail).
    allocate = f"{sys.executable} -c 'b = bytearray(64 * 2**20); b[::4096] = b\"x\" * len(b[::4096])'"
    queue("enqueue", batch({0: {"main": "yes | head -n 1"}, 1: {"main": allocate}}, [[0, 0, 1], [1, 0, 1]]))
    report = wait_done(queue, [[0, 0, 1], [1, 0, 1]])
    assert (queue.root / "e/run_0/rep_0/results/stderr.log").read_text() == ""
    assert report["jobs"]["e/run_0/rep_0"]["exit_code"] == 0
    assert report["jobs"]["e/run_1/rep_0"]["max_rss_kb"] >= 64 * 1024


@pytest.mark.skipif(shutil.which("unshare") is None or not hasattr(os, "geteuid") or os.geteuid() != 0,
                    reason="needs root and unshare for a private noexec mount")
def test_a_noexec_folder_falls_back_to_the_python_wrapper(tmp_path):
    """Hosts often mount /tmp noexec: the build is there but cannot run, so setup says so and jobs still run."""
    (tmp_path / "noexec").mkdir()
    script = f"""
set -e
mount -t tmpfs -o noexec tmpfs {tmp_path / 'noexec'}
mkdir {tmp_path / 'noexec' / 'bin'}
cp {FILES / 'doe_queue.py'} {FILES / 'doe_job.py'} {FILES / 'doe_job.c'} {tmp_path / 'noexec' / 'bin'}
q="{sys.executable} {tmp_path / 'noexec' / 'bin' / 'doe_queue.py'} --root {tmp_path / 'noexec' / 'root'} \\
   --socket {tmp_path / 'ts.sock'}"
$q setup
$q enqueue --request {base64.b64encode(json.dumps(batch({0: {"main": "echo ran"}}, [[0, 0, 1]])).encode()).decode()}
i=0; while [ ! -e {tmp_path / 'noexec' / 'root' / 'e/run_0/rep_0/.doe_done'} ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
cat {tmp_path / 'noexec' / 'root' / 'e/run_0/rep_0/results/stdout.log'}
$q shutdown >/dev/null
"""
    done = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script], capture_output=True,
                          text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    setup = json.loads(done.stdout.splitlines()[0][len("DOE-JSON:"):])
    assert setup["facts"]["job_wrapper"] == "python"
    assert "does not run" in setup["facts"]["job_wrapper_note"]
    assert done.stdout.splitlines()[-1] == "ran"


def test_a_main_that_ends_at_once_still_ends_its_background_commands_without_the_kill_grace(queue):
    """Background commands are in their own session when the wrapper goes on, so the SIGTERM to their group
    reaches them even if main ends before they ran a line (else they would linger until the 5 s SIGKILL)."""
    queue("enqueue", batch({run: {"main": "true", "bg": "exec sleep 300"} for run in range(5)},
                           [[run, 0, 1] for run in range(5)]))
    report = wait_done(queue, [[run, 0, 1] for run in range(5)])
    assert [job["exit_code"] for job in report["jobs"].values()] == [0] * 5
    assert max(job["wall_seconds"] for job in report["jobs"].values()) < 4.0  # the grace is 5 s


def test_a_read_only_status_leaves_the_controllers_fetch_list_alone(queue):
    queue("enqueue", batch({0: {"main": "true"}, 1: {"main": "true"}}, [[0, 0, 1], [1, 0, 1]]))
    controller = wait_done(queue, [[0, 0, 1]])  # its fetch list names run_0 only
    fetch_list = Path(controller["fetch_list"])
    wait_for(lambda: queue("status", {"exp": "e", "jobs": [[1, 0, 1]]})["queue"] == {"queued": 0, "running": 0},
             what="run_1 ended")
    fetch_list.write_text("e/run_0/rep_0/results/\n")  # what the controller's rsync is reading
    seen = queue("status", {"exp": "e", "jobs": [[0, 0, 1], [1, 0, 1]], "read_only": True})
    assert seen["jobs"]["e/run_1/rep_0"]["state"] == "done" and seen["queue"] == {"queued": 0, "running": 0}
    assert fetch_list.read_text() == "e/run_0/rep_0/results/\n"
    assert queue("status", {"exp": "e", "jobs": [[1, 0, 1]]})["fetch_count"] == 1  # the controller's poll writes it
    assert fetch_list.read_text() == "e/run_1/rep_0/results/\n"


def test_a_job_that_ends_while_its_status_is_read_is_done_not_lost(queue, tmp_path):
    """The marker is looked for before the queue listing; a job ending between the two is still done."""
    queue("enqueue", batch({0: {"main": "true"}}, [[0, 0, 1]]))
    wait_done(queue, [[0, 0, 1]])
    marker = queue.root / "e/run_0/rep_0/.doe_done"
    aside = marker.with_name("marker.aside")
    marker.rename(aside)
    # A tsp whose listing comes just after the job's end: the marker appears as the list is read.
    racing_tsp = tmp_path / "racing-tsp"
    racing_tsp.write_text(f'#!/bin/sh\n[ "$1" = -l ] && mv {aside} {marker}\nexec tsp "$@"\n')
    racing_tsp.chmod(0o755)
    request = base64.b64encode(json.dumps({"exp": "e", "jobs": [[0, 0, 1]]}).encode()).decode()
    argv = [sys.executable, str(queue.bin_dir / "doe_queue.py"), "--root", str(queue.root), "--tsp",
            str(racing_tsp), "--socket", str(tmp_path / "ts.sock"), "status", "--request", request]
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    state = json.loads(done.stdout[len("DOE-JSON:"):])["jobs"]["e/run_0/rep_0"]
    assert state["state"] == "done" and state["status"] == "finished"


def test_a_stale_started_marker_never_stops_the_process_that_now_has_its_pid(queue):
    """A wrapper killed without its marker left a pid behind; shutting the queue down must not signal
    whatever process has that pid by now (here: an unrelated sleep)."""
    queue("enqueue", batch({0: {"main": "true"}}, [[0, 0, 1]]))
    wait_done(queue, [[0, 0, 1]])
    job_dir = queue.root / "e/run_0/rep_0"
    (job_dir / ".doe_done").unlink()  # as if the wrapper had died before writing it
    bystander = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        started = json.loads((job_dir / ".doe_started").read_text())
        started.update(wrapper_pid=bystander.pid, main_pgid=bystander.pid, background_pgids=[])
        (job_dir / ".doe_started").write_text(json.dumps(started))
        queue("shutdown")
        assert bystander.poll() is None, "shutdown signalled a process that is not the job's wrapper"
    finally:
        bystander.kill()
        bystander.wait()
