"""Durable per-experiment job state: `<exp>/state.yml` plus an append-only journal of changes.

The file keeps doe-suite's six job-id lists (so existing readers work) plus a `jobs` mapping with
each job's status, exit code and attempt. Transitions: pending -> queued -> finished | failed; a job
is moved to finished/failed only once its results are fetched, so the lists stay consistent with
what is on disk. `exp_job_ids_running` is kept for compatibility and stays empty.
Changes are appended to `<exp>/.state_journal` (one line per job, written before the controller acts
on them); state.yml is rewritten (compacted) when the journal has grown as long as the experiment has jobs,
and at the end of a run: a 100,000-job state.yml is 30 MB, too much to rewrite at every poll. The
journal's first line names the generation of state.yml it continues, so a crash between a rewrite
and the journal's removal replays nothing stale.
"""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from doe_cli.errors import DoeError
from doe_cli.fileio import load_yaml, write_atomic
from etl.layout import JobKey, job_key_text, parse_job_key

PENDING, QUEUED, FINISHED, FAILED = "pending", "queued", "finished", "failed"
COMPLETED = (FINISHED, FAILED)
STATUSES = (PENDING, QUEUED, FINISHED, FAILED)
JOURNAL = ".state_journal"



@dataclass(slots=True)  # one per job: at 100,000 jobs, no __dict__ each saves about 4 MB
class JobRecord:
    status: str = PENDING
    exit_code: int | None = None
    attempt: int = 1


def scheduler_states_file(suite_dir: Path) -> Path:
    """A cluster's state and reason of each queued job ({exp: {"run_N/rep_R": [state, reason]}}), as the
    running controller last polled them."""
    return suite_dir / ".doe" / "scheduler_states.json"


def setup_marker(suite_dir: Path) -> Path:
    """Present while the suite's hosts are set up: written after setup, removed when they are cleaned up."""
    return suite_dir / ".doe" / "setup.done"


class ExperimentState:
    def __init__(self, suite: str, suite_id: int, exp: str, jobs: dict[JobKey, JobRecord]) -> None:
        self.suite = suite
        self.suite_id = suite_id
        self.exp = exp
        self.jobs = jobs
        self.generation = 0        # of state.yml; the journal continues this one
        self.journal_lines = 0     # in the journal since state.yml was written
        self.changed: set[JobKey] = set()  # since the last save or record
        self.adaptive: dict[int, dict] | None = None  # adaptive repetitions: per run n, estimate, CI, status
        self._index()

    def _index(self) -> None:
        """Counts per status and the pending jobs in order, kept up to date by `set`: the run loop asks
        for them at every poll, which must not cost a pass over 100,000 jobs."""
        self._counts = dict.fromkeys(STATUSES, 0)
        self._pending: dict[JobKey, None] = {}
        for key, record in self.jobs.items():
            self._counts[record.status] += 1
            if record.status == PENDING:
                self._pending[key] = None

    def set(self, key: JobKey, status: str, *, exit_code: int | None = None, attempt: int | None = None) -> None:
        """Change a job's record; `record` or `save` makes it durable."""
        record = self.jobs[key]
        if record.status != status:
            self._counts[record.status] -= 1
            self._counts[status] += 1
            if status == PENDING:
                self._pending[key] = None
            elif record.status == PENDING:
                del self._pending[key]
        record.status, record.exit_code = status, exit_code
        if attempt is not None:
            record.attempt = attempt
        self.changed.add(key)

    def reorder(self, order: list[JobKey]) -> None:
        """Pending jobs are handed out in this order (e.g. rmit rounds); pending jobs it does not name
        follow in design order. Once per run, O(jobs)."""
        ordered = {key: None for key in order if key in self._pending}
        ordered.update(self._pending)
        self._pending = ordered

    def add(self, key: JobKey) -> None:
        """A new pending job (a rep an adaptive experiment adds); it is handed out after those pending."""
        if key in self.jobs:
            raise DoeError(f"{self.exp}: job {job_key_text(key)} exists already")
        self.jobs[key] = JobRecord()
        self._counts[PENDING] += 1
        self._pending[key] = None
        self.changed.add(key)

    @classmethod
    def new(cls, suite: str, suite_id: int, exp: str, n_runs: int, n_reps: int) -> ExperimentState:
        jobs = {(run, rep): JobRecord() for run in range(n_runs) for rep in range(n_reps)}
        return cls(suite, suite_id, exp, jobs)

    # --- queries --------------------------------------------------------------------------------
    def with_status(self, *statuses: str) -> list[JobKey]:
        return [key for key, record in self.jobs.items() if record.status in statuses]

    def counts(self) -> dict[str, int]:
        return dict(self._counts)

    def done(self) -> bool:
        return self._counts[PENDING] == self._counts[QUEUED] == 0

    def first_pending(self, limit: int) -> list[JobKey]:
        """Up to `limit` pending jobs, in the order they are handed out (design order, or the rmit rounds';
        a job that became pending again comes last)."""
        return list(itertools.islice(self._pending, limit))

    def job_id(self, key: JobKey) -> dict:
        return {"suite": self.suite, "suite_id": self.suite_id, "exp_name": self.exp,
                "exp_run": key[0], "exp_run_rep": key[1]}

    # --- file format ----------------------------------------------------------------------------
    def _flow(self, keys: list[JobKey]) -> str:
        items = (f"{{'suite': {self.suite!r}, 'suite_id': {self.suite_id}, 'exp_name': {self.exp!r}, "
                 f"'exp_run': {run}, 'exp_run_rep': {rep}}}" for run, rep in keys)
        return "[" + ", ".join(items) + "]"

    def render(self) -> str:
        pending = self.with_status(PENDING)
        queued = self.with_status(QUEUED)
        finished = self.with_status(*COMPLETED)
        lines = [
            f"exp_job_ids: {self._flow(list(self.jobs))}",
            f"exp_job_ids_unfinished: {self._flow(pending + queued)} # pending + queued + running",
            f"exp_job_ids_pending: {self._flow(pending)}",
            f"exp_job_ids_queued: {self._flow(queued)}",
            "exp_job_ids_running: []",
            f"exp_job_ids_finished: {self._flow(finished)}",
            "# doe: per job status (pending | queued | finished | failed), exit code and attempt",
            "jobs:",
        ]
        for (run, rep), record in self.jobs.items():
            exit_code = "null" if record.exit_code is None else str(record.exit_code)
            lines.append(f"  {job_key_text((run, rep))}: {{status: {record.status}, exit_code: {exit_code}, "
                         f"attempt: {record.attempt}}}")
        if self.adaptive is not None:
            lines.append("# doe: adaptive repetitions per run: values, estimate, confidence interval, status "
                         "(adaptive.json holds the latest)")
            lines.append("adaptive:")
            for run, entry in sorted(self.adaptive.items()):
                fields = {name: entry.get(name) for name in ("n", "estimate", "ci_low", "ci_high", "status")}
                lines.append(f"  run_{run}: {json.dumps(fields)}")
        return "\n".join(lines) + "\n"

    def save(self, path: Path) -> None:
        """Rewrite state.yml with every change, then drop the journal it absorbed."""
        self.generation += 1
        write_atomic(path, self.render() + f"doe_journal_generation: {self.generation}\n")
        path.with_name(JOURNAL).unlink(missing_ok=True)
        self.journal_lines = 0
        self.changed.clear()

    def record(self, path: Path) -> None:
        """Make the changes since the last call durable: appended to the journal, or a rewrite of
        state.yml once the journal is as long as the suite (so the rewrites cost O(1) per change)."""
        if not self.changed:
            return
        if self.journal_lines + len(self.changed) > len(self.jobs):
            self.save(path)
            return
        lines = [] if self.journal_lines else [f"generation {self.generation}\n"]
        for key in sorted(self.changed):
            record = self.jobs[key]
            exit_code = "null" if record.exit_code is None else str(record.exit_code)
            lines.append(f"{job_key_text(key)} {record.status} {exit_code} {record.attempt}\n")
        # A new journal replaces one left from an older generation (a crash right after a rewrite).
        fresh = os.O_TRUNC if not self.journal_lines else 0
        fd = os.open(path.with_name(JOURNAL), os.O_WRONLY | os.O_CREAT | os.O_APPEND | fresh, 0o644)
        try:
            os.write(fd, "".join(lines).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        self.journal_lines += len(self.changed)
        self.changed.clear()

    def _replay(self, journal: Path) -> None:
        """Apply the journal's complete lines if it continues this generation of state.yml."""
        try:
            text = journal.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        lines = text.split("\n")[:-1]  # a last line without its newline was torn by a crash
        if not lines or lines[0] != f"generation {self.generation}":
            return
        for line in lines[1:]:
            parts = line.split()
            if len(parts) != 4 or parts[1] not in STATUSES:
                continue
            key = parse_job_key(parts[0])
            # A job the state does not hold yet is a rep an adaptive experiment added.
            self.jobs[key] = JobRecord(status=parts[1], exit_code=None if parts[2] == "null" else int(parts[2]),
                                       attempt=int(parts[3]))
            self.journal_lines += 1

    @classmethod
    def load(cls, path: Path, suite: str, suite_id: int, exp: str) -> ExperimentState:
        try:
            content = load_yaml(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as error:
            raise DoeError(f"{path}: cannot read the job state: {error}") from None
        if not isinstance(content, dict) or not isinstance(content.get("exp_job_ids"), list):
            raise DoeError(f"{path}: exp_job_ids: expected a list of job ids")

        def keys(name: str) -> list[JobKey]:
            return [(int(j["exp_run"]), int(j["exp_run_rep"])) for j in content.get(name) or []]

        all_keys = keys("exp_job_ids")
        finished, queued, pending = set(keys("exp_job_ids_finished")), set(keys("exp_job_ids_queued")), \
            set(keys("exp_job_ids_pending"))
        if len(set(all_keys)) != len(all_keys) or set(all_keys) != finished | queued | pending \
                or len(finished) + len(queued) + len(pending) != len(all_keys):
            raise DoeError(f"{path}: inconsistent job lists (ids must be pending + queued + finished)")
        detail = content.get("jobs") or {}
        jobs: dict[JobKey, JobRecord] = {}
        for key in all_keys:
            record = detail.get(job_key_text(key)) or {}
            status = FINISHED if key in finished else QUEUED if key in queued else PENDING
            if status == FINISHED and record.get("status") == FAILED:
                status = FAILED
            jobs[key] = JobRecord(status=status, exit_code=record.get("exit_code"),
                                  attempt=int(record.get("attempt") or 1))
        state = cls(suite, suite_id, exp, jobs)
        state.generation = int(content.get("doe_journal_generation") or 0)
        state._replay(path.with_name(JOURNAL))
        state._index()
        return state
