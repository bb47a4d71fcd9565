"""Durable per-experiment job state: `<exp>/state.yml`, written atomically after every change.

The file keeps doe-suite's six job-id lists (so existing readers work) plus a `jobs` mapping with
each job's status, exit code and attempt. Transitions: pending -> queued -> finished | failed; a job
is moved to finished/failed only once its results are fetched, so the lists stay consistent with
what is on disk. `exp_job_ids_running` is kept for compatibility and stays empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from doe_cli.errors import DoeError
from doe_cli.fileio import load_yaml, write_atomic

PENDING, QUEUED, FINISHED, FAILED = "pending", "queued", "finished", "failed"
COMPLETED = (FINISHED, FAILED)

JobKey = tuple[int, int]  # (run, rep)


@dataclass
class JobRecord:
    status: str = PENDING
    exit_code: int | None = None
    attempt: int = 1


def job_dir(exp: str, key: JobKey) -> str:
    """Relative job folder, the same locally and on hosts."""
    return f"{exp}/run_{key[0]}/rep_{key[1]}"


def setup_marker(suite_dir: Path) -> Path:
    """Present while the suite's hosts are set up: written after setup, removed when they are cleaned up."""
    return suite_dir / ".doe" / "setup.done"


class ExperimentState:
    def __init__(self, suite: str, suite_id: int, exp: str, jobs: dict[JobKey, JobRecord]) -> None:
        self.suite = suite
        self.suite_id = suite_id
        self.exp = exp
        self.jobs = jobs

    @classmethod
    def new(cls, suite: str, suite_id: int, exp: str, n_runs: int, n_reps: int) -> ExperimentState:
        jobs = {(run, rep): JobRecord() for run in range(n_runs) for rep in range(n_reps)}
        return cls(suite, suite_id, exp, jobs)

    # --- queries --------------------------------------------------------------------------------
    def with_status(self, *statuses: str) -> list[JobKey]:
        return [key for key, record in self.jobs.items() if record.status in statuses]

    def counts(self) -> dict[str, int]:
        counts = {PENDING: 0, QUEUED: 0, FINISHED: 0, FAILED: 0}
        for record in self.jobs.values():
            counts[record.status] += 1
        return counts

    def done(self) -> bool:
        return all(record.status in COMPLETED for record in self.jobs.values())

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
            lines.append(f"  run_{run}/rep_{rep}: {{status: {record.status}, exit_code: {exit_code}, "
                         f"attempt: {record.attempt}}}")
        return "\n".join(lines) + "\n"

    def save(self, path: Path) -> None:
        write_atomic(path, self.render())

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
            record = detail.get(f"run_{key[0]}/rep_{key[1]}") or {}
            status = FINISHED if key in finished else QUEUED if key in queued else PENDING
            if status == FINISHED and record.get("status") == FAILED:
                status = FAILED
            jobs[key] = JobRecord(status=status, exit_code=record.get("exit_code"),
                                  attempt=int(record.get("attempt") or 1))
        return cls(suite, suite_id, exp, jobs)
