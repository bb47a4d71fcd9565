"""The rounds of a run: each tick makes one Ansible call for all hosts of all experiments. It enqueues
(a batch of jobs per host), then polls (job states of every host, leftovers of completed multi-host jobs
stopped, newly finished job dirs fetched with one rsync per host); a tick with nothing to enqueue only
polls, a new suite's first tick also sets the hosts up, and a resumed suite's first tick may first check
and lock its hosts (the cloud says), in the same run."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

from doe_cli.ansible_adapter import PlaybookResult
from doe_cli.errors import DoeError
from doe_cli.fileio import write_atomic
from doe_cli.run.ansible_env import ENQUEUE_TASKS, FETCH_TASK, STATUS_TASK, stdout_hint
from doe_cli.run.host_feed import ENQUEUE_WINDOW, MAX_MISSING_POLLS, MAX_REPORT
from doe_cli.run.hosts import HostSlot
from doe_cli.run.intake import ResultIntake
from doe_cli.run.poll_reply import HostReply, encode_request, helper_report, parse_host_reply
from doe_cli.run.prepare import PreparedRun
from doe_cli.run.runtime import ExpRuntime, PlaybookRunner
from doe_cli.run.setup import HostSetup
from doe_cli.run.state import FAILED, FINISHED, PENDING, QUEUED, scheduler_states_file
from etl.layout import JobKey, job_dir, job_key_text

# An enqueue or a host's poll failing this many times in a row stops the run (the jobs keep running).
MAX_FAILURES_IN_A_ROW = 5
# One host-helper request per command line: Linux limits one argument to 128 KiB (base64 adds a third).
MAX_REQUEST_BYTES = 64 * 1024
# Seconds the readiness barrier waits for first-phase jobs (servers) to start; their queue is empty then.
BARRIER_TIMEOUT = 120

# Per host: what enqueue_chunks needs (experiment, jobs, slot, multi-host jobs to stop, first phase).
Due = tuple[ExpRuntime, list[JobKey], HostSlot, list[str], bool]


def enqueue_chunks(exp: ExpRuntime, keys: list[JobKey], slot: HostSlot, stop: list[str], wait_started: bool,
                   timeout: float | None, parts: list[dict] | None = None) -> list[str]:
    """A host's batch as base64 requests, each small enough for one command line. `parts`: the job is one
    allocation for all the experiment's hosts, which this host submits (Cloud.allocation_parts)."""
    base = {"exp": exp.name, "host": slot.name, "host_type": slot.host_type, "host_idx": slot.idx,
            "timeout": timeout, "stop": stop, "wait_started": wait_started, "wait_timeout": BARRIER_TIMEOUT,
            **({"parts": parts} if parts else {})}
    chunks: list[str] = []
    jobs: list[list[int]] = []
    runs: dict[str, dict] = {}
    size = 0
    for key in keys:
        if str(key[0]) not in runs:
            runs[str(key[0])] = exp.runs[key[0]]
            size += len(json.dumps(exp.runs[key[0]]))
        jobs.append([key[0], key[1], exp.state.jobs[key].attempt])
        size += 16
        if size > MAX_REQUEST_BYTES:
            chunks.append(encode_request({**base, "runs": runs, "jobs": jobs}))
            jobs, runs, size = [], {}, 0
    if jobs or not chunks:
        chunks.append(encode_request({**base, "runs": runs, "jobs": jobs}))
    return chunks


def unreachable_hosts(result: PlaybookResult) -> dict[str, str]:
    """Hosts that did not answer, and why: Ansible could not reach them, or the fetch's ssh could not
    (rsync exit code 255: the host dropped between its status and its fetch)."""
    found = {f.host: f.message for f in result.failures() if f.unreachable}
    for host, res in result.task_results(FETCH_TASK).items():
        if res.get("rc") == 255 and host not in found:
            lines = [line for line in str(res.get("stderr") or "").splitlines() if line.strip()]
            found[host] = f"the fetch could not connect: {lines[0] if lines else 'rsync exit code 255'}"
    return found


class Rounds:
    def __init__(self, prepared: PreparedRun, playbooks: PlaybookRunner, setup: HostSetup, intake: ResultIntake,
                 log: Callable[[str], None]) -> None:
        self.prepared = prepared
        self.exps = prepared.exps
        self.allocations = {name: self._allocation(exp) for name, exp in self.exps.items()}
        self.scheduler_states: dict[str, dict[str, list]] = {}
        self.playbooks = playbooks
        self.setup = setup
        self.intake = intake
        self.log = log
        self.host_check_vars = prepared.host_check_vars  # until the first round checked the hosts
        self.poll_failures: dict[str, int] = {}
        self.enqueue_failures = 0
        self.unreachable_since: dict[str, float] = {}  # hosts that did not answer, since when
        self.shut_down: set[str] = set()  # hosts whose queue a final status already shut down

    def _allocation(self, exp: ExpRuntime) -> list[dict] | None:
        """The parts of each job of a multi-host experiment the cloud runs as one allocation, or None."""
        parts = self.prepared.cloud.allocation_parts(exp.slots, self.prepared.host_vars) if exp.multi else None
        if parts is None:
            return None
        timeouts = self.prepared.job_timeouts
        return [{**part, "phase": 1 if slot.name in exp.first_phase else 2, "check": slot.name in exp.check_hosts,
                 "timeout": timeouts.get(slot.name)} for slot, part in zip(exp.slots, parts, strict=True)]

    def enqueue_hosts(self, exp: ExpRuntime) -> list[str]:
        """The hosts an experiment's jobs are enqueued on: all, or the first when it submits allocations."""
        return exp.hosts[:1] if self.allocations.get(exp.name) else exp.hosts

    def stops_pending(self) -> bool:
        """A multi-host job whose polled hosts finished waits for its other hosts to be stopped: no pause."""
        return any(exp.stops_pending() for exp in self.exps.values())

    # --- enqueue ----------------------------------------------------------------------------------
    def enqueue_tick(self) -> bool:
        """Enqueue what is due and, in the same Ansible run, poll as the next poll tick would (with the
        new jobs queued). Returns whether that poll happened."""
        due, batch = self._due()

        def enqueue_requests() -> dict[str, dict]:
            # Built again once a new suite's setup reported the host variables the commands use.
            return {host: {"phase": 1 if first else 2,
                           "chunks": enqueue_chunks(exp, keys, slot, stop, first,
                                                    self.prepared.job_timeouts.get(slot.name),
                                                    self.allocations.get(exp.name))}
                    for host, (exp, keys, slot, stop, first) in due.items()}

        requests = enqueue_requests()
        poll_requests = self.poll_requests(queued_too=batch) if requests else {}
        round_vars = {"doe_enqueue_requests": requests, "doe_poll_requests": poll_requests,
                      "job_queue_staging_dir": str(self.prepared.staging)}
        on_event = self._progress_recorder(batch)
        if self.setup.pending:
            result = self.setup.run(round_vars if requests else None, on_event=on_event,
                                    enqueue_requests=enqueue_requests)
            if not requests:
                return False
        elif not requests:
            return False
        else:
            result = self._round(round_vars, sorted(set(requests) | set(poll_requests)), on_event=on_event)
        accepted = self._mark_queued(result, batch)
        unreachable = unreachable_hosts(result)
        self._note_unreachable(unreachable, result)
        self._count_enqueue_failures(result, all(host in accepted or host in unreachable for host in requests))
        # A host whose enqueue failed did not get to the poll; that is no poll failure.
        self.read_poll(result, {host: request for host, request in poll_requests.items()
                                if host not in requests or host in accepted})
        return True

    def _due(self) -> tuple[dict[str, Due], dict[str, list[JobKey]]]:
        """Per host, what to enqueue now; per experiment, the jobs of that batch."""
        due: dict[str, Due] = {}
        batch: dict[str, list[JobKey]] = {}
        unfinished = [exp for exp in self.exps.values() if not exp.state.done()]
        for exp in unfinished[:1] if self.prepared.cloud.runs_experiments_one_at_a_time else unfinished:
            keys, draining = self._next_jobs(exp)
            if not keys:
                continue
            batch[exp.name] = keys
            allocated = bool(self.allocations.get(exp.name))
            for slot in exp.slots[:1] if allocated else exp.slots:
                stop = [job_dir(exp.name, key) for key in draining if slot.name not in exp.host_done.get(key, {})]
                # An allocation starts its servers before its clients itself: no barrier to wait at here.
                due[slot.name] = (exp, keys, slot, stop, slot.name in exp.first_phase and not allocated)
        return due, batch

    @staticmethod
    def _next_jobs(exp: ExpRuntime) -> tuple[list[JobKey], list[JobKey]]:
        """The experiment's jobs to enqueue now, and the multi-host jobs whose other hosts to stop first."""
        n_pending = exp.state.counts()[PENDING]
        if not n_pending:
            return [], []
        if exp.multi:
            # One job at a time on all hosts. A job whose polled hosts finished only waits for its
            # other hosts (servers) to be stopped: the enqueue stops them before the next job starts.
            queued = exp.state.with_status(QUEUED)
            draining = [key for key in queued if exp.check_hosts <= set(exp.host_done.get(key, {}))]
            if len(draining) < len(queued):
                return [], []
            return exp.state.first_pending(1), draining
        # A window of jobs per host, refilled once half of it is done.
        room = ENQUEUE_WINDOW - len(exp.feeds[exp.slots[0].name].outstanding)
        if room < min(n_pending, ENQUEUE_WINDOW // 2):
            return [], []
        return exp.state.first_pending(room), []

    def _progress_recorder(self, batch: dict[str, list[JobKey]]) -> Callable[[dict[str, Any]], None]:
        """The run's events record progress as it happens: the setup once every host is set up (the
        enqueue starts), the queued jobs once every enqueue returned (the poll starts). So a Ctrl-C or
        a kill during the round's long poll neither repeats the setup nor hides queued jobs."""
        seen: list[dict] = []

        def on_event(event: dict[str, Any]) -> None:
            kind = event.get("event")
            if kind in ("runner_on_ok", "runner_on_failed", "runner_on_unreachable"):
                seen.append(event)
            if kind != "playbook_on_task_start":
                return
            task = event.get("event_data", {}).get("task")
            so_far = PlaybookResult(playbook="", status="running", rc=0, stats={}, events=list(seen))
            if task in ENQUEUE_TASKS and self.setup.pending:
                with contextlib.suppress(DoeError):  # a failed setup is reported after the run
                    self.setup.finish(so_far)
            elif task == STATUS_TASK:
                self._mark_queued(so_far, batch)

        return on_event

    def _count_enqueue_failures(self, result: PlaybookResult, all_accepted: bool) -> None:
        if all_accepted:
            self.enqueue_failures = 0  # unreachable hosts get their jobs once they answer again
            return
        self.enqueue_failures += 1
        if self.enqueue_failures >= MAX_FAILURES_IN_A_ROW:
            raise DoeError(f"enqueue failed {MAX_FAILURES_IN_A_ROW} times in a row: {result.summary()}"
                           f"{stdout_hint(result)}; resume with: {self.prepared.run.resume_command}")
        self.log(f"warning: enqueue failed on some hosts, retrying next round: {result.summary()}"
                 f"{stdout_hint(result)}")

    def _mark_queued(self, result: PlaybookResult, batch: dict[str, list[JobKey]]) -> set[str]:
        """The batch's jobs of experiments whose hosts all accepted them are queued (saved); returns
        the hosts that accepted. Marking twice changes nothing."""
        accepted: set[str] = set()
        for task in ENQUEUE_TASKS:
            for host, res in result.task_results(task).items():
                if not res.get("failed") and all(helper_report(item) is not None
                                                 for item in res.get("results", [])):
                    accepted.add(host)
        for name, keys in batch.items():
            exp = self.exps[name]
            if not all(host in accepted for host in self.enqueue_hosts(exp)):
                continue
            pending = [key for key in keys if exp.state.jobs[key].status == PENDING]
            for key in pending:
                exp.state.set(key, QUEUED)
                self._write_config_json(exp, key)
            for feed in exp.feeds.values():
                feed.outstanding.update(pending)
            if exp.adaptive is not None:
                exp.adaptive.note_started()
            exp.state.record(exp.state_path)
        return accepted

    def _write_config_json(self, exp: ExpRuntime, key: JobKey) -> None:
        from doe_cli.design import config_json

        path = self.prepared.suite_dir / job_dir(exp.name, key) / "config.json"
        if not path.exists():
            write_atomic(path, config_json(exp.runs[key[0]]), durable=False)

    # --- poll -------------------------------------------------------------------------------------
    def poll_tick(self) -> None:
        requests = self.poll_requests()
        if not requests:
            return
        if self.host_check_vars is not None:
            result = self._round({"doe_enqueue_requests": {}, "doe_poll_requests": requests,
                                  "job_queue_staging_dir": str(self.prepared.staging)}, limit=list(requests))
        else:
            result = self.playbooks.run("poll.yml", {"job_queue_requests": requests,
                                                     "job_queue_staging_dir": str(self.prepared.staging)},
                                        limit=list(requests))
        self.read_poll(result, requests)

    def _round(self, round_vars: dict[str, Any], limit: list[str],
               on_event: Callable[[dict[str, Any]], None] | None = None) -> PlaybookResult:
        """enqueue-and-poll.yml. A first round that checks the hosts (see Cloud.check_hosts) runs on every
        host of the suite; one that fails the check stops them all before any enqueue."""
        if self.host_check_vars is None:
            return self.playbooks.run("enqueue-and-poll.yml", round_vars, limit=limit, on_event=on_event)
        result = self.playbooks.run("enqueue-and-poll.yml", {**round_vars, **self.host_check_vars},
                                    on_event=on_event)
        self.prepared.cloud.read_check(result, self.prepared.suite_dir)
        self.host_check_vars = None
        return result

    def poll_requests(self, queued_too: dict[str, list[JobKey]] | None = None) -> dict[str, dict]:
        """Per host with queued jobs (or jobs of queued_too, about to be queued): its poll request."""
        requests: dict[str, dict] = {}
        stops_pending = self.stops_pending()
        for exp in self.exps.values():
            about_to_queue = (queued_too or {}).get(exp.name, [])
            # The hosts' last jobs are named: their queues shut down once those are done.
            final = not self.prepared.options.keep and exp.state.counts()[PENDING] <= len(about_to_queue) \
                and not exp.may_grow()
            for slot in exp.slots:
                outstanding = exp.feeds[slot.name].outstanding.union(about_to_queue)
                if outstanding:
                    requests[slot.name] = self._poll_request(exp, slot, outstanding, final, stops_pending)
                    (self.prepared.staging / slot.name).mkdir(parents=True, exist_ok=True)
        return {host: {"request": encode_request(request)} for host, request in requests.items()}

    def _poll_request(self, exp: ExpRuntime, slot: HostSlot, outstanding: set[JobKey], final: bool,
                      stops_pending: bool) -> dict[str, Any]:
        feed = exp.feeds[slot.name]
        named, all_named = feed.named_jobs(outstanding, final)
        request: dict[str, Any] = {
            "exp": exp.name, "cursor": feed.cursor, "max_report": MAX_REPORT,
            "max_file_bytes": self.prepared.max_file_bytes,
            "jobs": [[key[0], key[1], exp.state.jobs[key].attempt] for key in named],
            # The polled hosts finished these multi-host jobs: stop the rest (servers) of each.
            "stop": [job_dir(exp.name, key) for key, done in exp.host_done.items()
                     if exp.check_hosts <= set(done) and slot.name not in done]}
        if final and all_named:
            request["final"] = True
        # Long poll on hosts whose jobs decide completion, unless a multi-host job waits to be
        # stopped or the journal has more to report; with jobs left to enqueue, the answer comes
        # once half the window is done.
        if slot.name in exp.check_hosts and not stops_pending and not feed.more:
            request["wait"] = self.prepared.options.long_poll
            left_after = 0 if final else ENQUEUE_WINDOW // 2
            request["wait_for"] = max(1, len(outstanding) - left_after)
        return request

    def read_poll(self, result: PlaybookResult, requests: dict[str, dict]) -> None:
        """Job states, fetched results and failures of the hosts polled with `requests`."""
        unreachable = unreachable_hosts(result)
        statuses = result.task_results(STATUS_TASK)
        reports = {host: helper_report(res) for host, res in statuses.items()}
        # A status without a readable report (it could not be parsed, or was too large to pass) is a failed poll.
        broken = result.failed_hosts() | set(unreachable) | {host for host, report in reports.items() if report is None}
        self._note_unreachable(unreachable, result)
        self._count_poll_failures(result, requests, set(unreachable), broken | (set(requests) - set(statuses)))
        by_host = {slot.name: (exp, slot) for exp in self.exps.values() for slot in exp.slots}
        changed: set[str] = set()
        running: dict[str, set[JobKey]] = {name: set() for name in self.exps}  # a multi-host job counts once
        queue_running: dict[str, int] = dict.fromkeys(self.exps, 0)
        for host, report in reports.items():
            if host in broken or report is None or host not in requests:
                continue
            exp, slot = by_host[host]
            reply = parse_host_reply(report, exp.state.jobs, exp.feeds[host].outstanding)
            if self._apply_reply(exp, slot, reply):
                changed.add(exp.name)
            running[exp.name].update(reply.running)
            queue_running[exp.name] += reply.queue_running
        for name, keys in running.items():
            self.exps[name].running = len(keys) if self.exps[name].multi else queue_running[name]
        self._record_scheduler_states()
        for name in changed:
            exp = self.exps[name]
            for key, done in list(exp.host_done.items()):
                if set(exp.hosts) <= set(done):
                    self.intake.complete(exp, key, done)
                    del exp.host_done[key]
            exp.state.record(exp.state_path)
            if exp.adaptive is not None:
                exp.adaptive.flush()

    def _record_scheduler_states(self) -> None:
        """A cluster's state of each queued job, for `doe status` (written when it changed)."""
        found = {name: {job_key_text(key): value for key, value in sorted(exp.scheduler.items())
                        if exp.state.jobs[key].status == QUEUED}
                 for name, exp in self.exps.items() if exp.scheduler}
        if found != self.scheduler_states:
            self.scheduler_states = found
            write_atomic(scheduler_states_file(self.prepared.suite_dir), json.dumps(found), durable=False)

    def _apply_reply(self, exp: ExpRuntime, slot: HostSlot, reply: HostReply) -> bool:
        """One host's reply into the feeds and job state; True if a job's state changed."""
        host, feed = slot.name, exp.feeds[slot.name]
        if reply.shut_down:  # the host's last jobs are done: its queue is down, its lock gone
            self.shut_down.add(host)
        self.intake.note_not_fetched(host, reply.skipped)
        missed: list[str] = []
        for ended in reply.ended:
            if not self.intake.place(exp, slot, ended.key) and ended.done:
                feed.not_arrived(ended.key)
                missed.append(ended.rel)
                continue
            feed.done(ended.key)
            exp.host_done.setdefault(ended.key, {})[host] = ended.info
        for key in reply.unknown:
            # Neither queued nor finished on its host (e.g. the controller died before the enqueue
            # reached it): schedule again; enqueue skips hosts that have it.
            exp.state.set(key, PENDING)
            for other in exp.feeds.values():
                other.done(key)
        for key in reply.waiting:
            feed.to_check.discard(key)
        for ended in reply.ended:
            exp.scheduler.pop(ended.key, None)
        exp.scheduler.update(reply.scheduler)
        feed.after_report(reply.idle, reply.more, reply.cursor)
        self.intake.stop_if_results_never_arrive(host, feed, missed)
        return len(missed) < len(reply.ended) or bool(reply.unknown)

    def _count_poll_failures(self, result: PlaybookResult, requests: dict[str, dict], unreachable: set[str],
                             failed: set[str]) -> None:
        for host in requests:
            if host in unreachable:
                continue  # its jobs keep running; the other hosts are polled meanwhile
            if host in failed:
                self.poll_failures[host] = self.poll_failures.get(host, 0) + 1
                if self.poll_failures[host] >= MAX_FAILURES_IN_A_ROW:
                    raise DoeError(f"polling host {host} failed {MAX_FAILURES_IN_A_ROW} times in a row: "
                                   f"{result.summary()}{stdout_hint(result)}; jobs keep running; resume with: "
                                   f"{self.prepared.run.resume_command}")
                continue
            self.poll_failures[host] = 0

    def _note_unreachable(self, unreachable: dict[str, str], result: PlaybookResult) -> None:
        """A host that stops answering (network, sshd, reboot) is reported once and retried each round
        while the others go on; the run stops only after options.unreachable_timeout seconds."""
        now = time.monotonic()
        timeout = self.prepared.options.unreachable_timeout
        for host, reason in unreachable.items():
            if host not in self.unreachable_since:
                self.unreachable_since[host] = now
                self.intake.reporting.host_unreachable(host, reason)
                self.log(f"warning: host {host} is unreachable ({reason or 'no answer'}); its jobs "
                         f"keep running there, the other hosts are polled meanwhile")
            elif now - self.unreachable_since[host] > timeout:
                raise DoeError(f"host {host} has been unreachable for {timeout:g} s "
                               f"({reason or 'no answer'}); its jobs keep running; resume with: "
                               f"{self.prepared.run.resume_command}")
        answered = [host for host in result.stats.get("processed", {}) if host not in unreachable]
        self.intake.reporting.hosts_answered(answered)
        for host in answered:
            if self.unreachable_since.pop(host, None) is not None:
                self.log(f"host {host} answers again")

    def fetch_finished(self) -> int:
        """Poll without waiting until the hosts have reported every job they finished, and fetch those
        (`doe clean` does before the hosts go); returns the number of jobs completed."""
        def completed() -> int:
            return sum(c[FINISHED] + c[FAILED] for c in (exp.state.counts() for exp in self.exps.values()))

        before = completed()
        feeds = [feed for exp in self.exps.values() for feed in exp.feeds.values()]
        # Pages of the journals, a round naming what an idle queue never reported, and room for refetches.
        for _ in range(sum(len(feed.outstanding) for feed in feeds) // MAX_REPORT + MAX_MISSING_POLLS + 2):
            requests = self.poll_requests()
            if not requests:
                break
            result = self.playbooks.run("poll.yml", {"job_queue_requests": requests,
                                                     "job_queue_staging_dir": str(self.prepared.staging)},
                                        limit=list(requests))
            self.read_poll(result, requests)
            if not any(feed.more or feed.to_check for feed in feeds):
                break
        return completed() - before
