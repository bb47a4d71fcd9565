"""Host assignment, suite ids and host-helper requests."""

from __future__ import annotations

import base64
import importlib.util
import json
from types import SimpleNamespace

import pytest

from doe_cli.errors import UserError
from doe_cli.run.hosts import assign_hosts
from doe_cli.run.poll_reply import encode_request, helper_report
from doe_cli.run.prepare import normalise_repositories
from doe_cli.run.suite_id import resolve_suite_id
from tests.conftest import REPO_ROOT


def suite(*experiments):
    exps = {name: SimpleNamespace(name=name, host_types={ht: SimpleNamespace(n=n) for ht, n in types})
            for name, types in experiments}
    return SimpleNamespace(experiments=exps)


def test_hosts_are_assigned_by_type_order_then_experiment_order():
    slots = assign_hosts(suite(("a", [("client", 2), ("server", 1)]), ("b", [("server", 1)]), ("c", [("client", 1)])))
    assert [(s.exp, s.host_type, s.idx, s.n, s.type_index) for s in slots] == [
        ("a", "client", 0, 2, 0), ("a", "client", 1, 2, 1), ("c", "client", 0, 1, 2),
        ("a", "server", 0, 1, 0), ("b", "server", 0, 1, 1)]
    assert slots[0].name == "a-client-0"
    assert assign_hosts(suite(("a", [("client", 2), ("server", 1)]))) == slots[:2] + [slots[3]]


def test_suite_ids(tmp_path):
    with pytest.raises(UserError, match="start one with: doe run --suite s --id new"):
        resolve_suite_id(tmp_path, "s", "last")
    (tmp_path / "s_100").mkdir()
    (tmp_path / "s_20").mkdir()
    (tmp_path / "s_x_300").mkdir()
    assert resolve_suite_id(tmp_path, "s", "last") == (100, False)
    assert resolve_suite_id(tmp_path, "s", "20") == (20, False)
    new_id, is_new = resolve_suite_id(tmp_path, "s", "new")
    assert is_new and new_id > 1_700_000_000
    for bad in ("0", "-3", "abc", "21"):
        with pytest.raises(UserError):
            resolve_suite_id(tmp_path, "s", bad)


def test_requests_are_shell_safe_and_reports_are_found_among_other_lines():
    request = {"exp": "e", "jobs": [[0, 0, 1]], "runs": {"0": {"cmd": "echo 'a' \"$b\" `c`; rm -rf /"}}}
    encoded = encode_request(request)
    assert set(encoded) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
    assert json.loads(base64.b64decode(encoded)) == request
    assert helper_report({"stdout": 'noise\r\nDOE-JSON:{"ok": true}\r\nShared connection closed'}) == {"ok": True}
    assert helper_report({"stdout": "no report"}) is None


def load_doe_queue():
    spec = importlib.util.spec_from_file_location("doe_queue", REPO_ROOT / "roles/job-queue/files/doe_queue.py")
    doe_queue = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(doe_queue)
    return doe_queue


def test_job_paths_stay_inside_the_root():
    doe_queue = load_doe_queue()
    assert doe_queue.job_path("/root", "e/run_0/rep_1") == "/root/e/run_0/rep_1"
    with pytest.raises(doe_queue.QueueError):
        doe_queue.job_path("/root", "../x")


def test_the_journal_is_read_from_the_cursor_in_complete_lines_and_pages(tmp_path):
    doe_queue = load_doe_queue()
    journal = tmp_path / ".doe_journal"
    journal.write_bytes(b"/h/e/run_0/rep_0\n/h/e/run_1/rep_0\n/h/e/run_2/rep_0\n/h/e/run_3/re")  # a line being written
    entries, cursor, more = doe_queue.JournalReader(str(journal), 0).read(2)
    assert (entries, more) == (["/h/e/run_0/rep_0", "/h/e/run_1/rep_0"], True)
    entries, cursor, more = doe_queue.JournalReader(str(journal), cursor).read(2)
    assert (entries, more) == (["/h/e/run_2/rep_0"], False)
    assert doe_queue.JournalReader(str(journal), cursor).read(2) == ([], cursor, False)  # the partial line waits
    with open(journal, "ab") as handle:
        handle.write(b"p_0\n")
    reader = doe_queue.JournalReader(str(journal), cursor)
    assert reader.count_new_lines() == 1 and reader.read(5)[0] == ["/h/e/run_3/rep_0"]
    # A journal shorter than the cursor is a new one (the host was set up again): read from its start.
    journal.write_bytes(b"/h/e/run_9/rep_1\n")
    assert doe_queue.JournalReader(str(journal), cursor).read(5) == (["/h/e/run_9/rep_1"], 17, False)
    assert doe_queue.journal_job_rel("e", "/h/e/run_9/rep_1") == "e/run_9/rep_1"
    assert doe_queue.journal_job_rel("e", "garbage") is None


def test_repositories_are_normalised():
    assert normalise_repositories("https://h/x/app.git") == [{"repo": "https://h/x/app.git", "version": "HEAD",
                                                              "dir": "code"}]
    assert normalise_repositories([{"repo": "a", "version": "v1"}, "https://h/lib.git"]) == [
        {"repo": "a", "version": "v1", "dir": "code"}, {"repo": "https://h/lib.git", "version": "HEAD", "dir": "lib"}]
    assert normalise_repositories([]) == []
    with pytest.raises(UserError, match=r"git_remote_repository\[0\]"):
        normalise_repositories([{"version": "x"}])


def test_a_large_batch_is_split_into_command_line_sized_requests():
    from doe_cli.run.hosts import HostSlot
    from doe_cli.run.rounds import MAX_REQUEST_BYTES, enqueue_chunks
    from doe_cli.run.runtime import ExpRuntime
    from doe_cli.run.state import ExperimentState

    runs = [{"payload": "x" * 2000, "$CMD$": {"small": [{"main": f"echo {i}"}]}} for i in range(100)]
    state = ExperimentState.new("s", 1, "e", n_runs=100, n_reps=2)
    exp = ExpRuntime(name="e", state=state, state_path=None, slots=[], check_hosts=set(), first_phase=set(),
                     runs=runs, n_reps=2)
    slot = HostSlot(exp="e", host_type="small", idx=0, n=1)
    chunks = enqueue_chunks(exp, list(state.jobs), slot, stop=[], wait_started=False, timeout=None)
    decoded = [json.loads(base64.b64decode(chunk)) for chunk in chunks]
    assert len(chunks) > 1 and all(len(chunk) < 2 * MAX_REQUEST_BYTES for chunk in chunks)
    jobs = [tuple(job) for request in decoded for job in request["jobs"]]
    assert jobs == [(run, rep, 1) for run in range(100) for rep in range(2)]
    for request in decoded:  # every job's run config travels in the same request
        assert {str(run) for run, _, _ in request["jobs"]} <= set(request["runs"])
