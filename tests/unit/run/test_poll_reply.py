"""What a host's poll report means for the jobs the controller has queued there."""

from __future__ import annotations

from doe_cli.run.poll_reply import EndedJob, encode_request, helper_report, parse_host_reply
from doe_cli.run.state import FINISHED, PENDING, QUEUED, JobRecord


def jobs(**statuses: str) -> dict:
    """{(run, rep): JobRecord} from keywords run_rep=status (attempt 1)."""
    return {tuple(int(part) for part in name.split("_")[1:]): JobRecord(status=status)
            for name, status in statuses.items()}


def test_finished_and_lost_jobs_end_unknown_ones_are_scheduled_again_and_the_rest_wait():
    records = jobs(r_0_0=QUEUED, r_0_1=QUEUED, r_1_0=QUEUED, r_1_1=QUEUED, r_2_0=QUEUED)
    report = {"jobs": {"e/run_0/rep_0": {"state": "done", "status": "finished", "exit_code": 0},
                       "e/run_0/rep_1": {"state": "lost"},
                       "e/run_1/rep_0": {"state": "unknown"},
                       "e/run_1/rep_1": {"state": "running"},
                       "e/run_2/rep_0": {"state": "queued"}},
              "queue": {"running": 1}, "cursor": 812, "more": True}
    reply = parse_host_reply(report, records, set(records))
    assert reply.ended == [
        EndedJob("e/run_0/rep_0", (0, 0), {"state": "done", "status": "finished", "exit_code": 0}, done=True),
        EndedJob("e/run_0/rep_1", (0, 1), {"state": "lost"}, done=False)]
    assert reply.unknown == [(1, 0)]
    assert reply.waiting == [(1, 1), (2, 0)] and reply.running == [(1, 1)]
    assert (reply.queue_running, reply.cursor, reply.more, reply.idle, reply.shut_down) == (1, 812, True, False, False)


def test_jobs_not_queued_or_not_outstanding_on_this_host_are_no_news():
    records = jobs(r_0_0=FINISHED, r_0_1=PENDING, r_1_0=QUEUED)
    report = {"jobs": {"e/run_0/rep_0": {"state": "done"}, "e/run_0/rep_1": {"state": "done"},
                       "e/run_1/rep_0": {"state": "done"}, "e/run_9/rep_0": {"state": "done"}}}
    reply = parse_host_reply(report, records, outstanding=set())  # this host reported (1, 0) already
    assert reply.ended == [] and reply.unknown == [] and reply.waiting == []


def test_a_finished_marker_of_an_earlier_attempt_is_ignored_but_a_lost_job_is_not():
    records = {(0, 0): JobRecord(status=QUEUED, attempt=2), (0, 1): JobRecord(status=QUEUED, attempt=2)}
    report = {"jobs": {"e/run_0/rep_0": {"state": "done", "attempt": 1}, "e/run_0/rep_1": {"state": "lost"}}}
    reply = parse_host_reply(report, records, set(records))
    assert [ended.key for ended in reply.ended] == [(0, 1)]


def test_a_shut_down_idle_queue_and_skipped_files_are_reported():
    skipped = [{"path": "e/run_0/rep_0/results/big.bin", "reason": "larger than 1 MB"}]
    reply = parse_host_reply({"shut_down": True, "idle": True, "skipped": skipped}, {}, set())
    assert reply.shut_down and reply.idle and reply.skipped == skipped
    assert (reply.cursor, reply.queue_running, reply.more) == (0, 0, False)


def test_the_helper_json_line_is_found_among_other_output_and_requests_round_trip():
    import base64
    import json

    assert helper_report({"stdout": "Warning: x\r\nDOE-JSON: {\"idle\": true}\n"}) == {"idle": True}
    assert helper_report({"stdout": "DOE-JSON: {not json"}) is None
    assert helper_report({}) is None
    request = {"exp": "e", "jobs": [[0, 1, 1]]}
    assert json.loads(base64.b64decode(encode_request(request))) == request


def test_a_clusters_state_of_waiting_jobs_is_kept_and_ended_jobs_have_none():
    records = jobs(r_0_0=QUEUED, r_0_1=QUEUED, r_0_2=QUEUED)
    report = {"jobs": {"e/run_0/rep_0": {"state": "queued", "scheduler": ["PENDING", "Resources"]},
                       "e/run_0/rep_1": {"state": "running", "scheduler": ["RUNNING", "None"]},
                       "e/run_0/rep_2": {"state": "done", "status": "finished", "scheduler": ["COMPLETED", None]}}}
    reply = parse_host_reply(report, records, set(records))
    assert reply.scheduler == {(0, 0): ["PENDING", "Resources"], (0, 1): ["RUNNING", "None"]}
