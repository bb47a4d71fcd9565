"""Slurm as a host's queue (`doe_queue.py --scheduler slurm`), on a cluster's login host.

Each job is one `sbatch` of the same job wrapper the task spooler runs, in the job's folder on the
cluster's shared filesystem, so a job writes the same files on every cloud. The job's Slurm id goes
into `<job dir>/.doe_slurm` (written before the submission with no id, then with it: a helper killed
in between finds the job again by its comment instead of submitting it twice). One `squeue` call per
poll answers for all the jobs asked about; the wrapper's done marker decides completion (`sacct` is
not used: many clusters have no accounting). Jobs are cancelled only by their recorded ids.

Settings (JSON, base64 in --scheduler-config): sbatch_args (a list), modules (environment modules loaded
before the wrapper), job_name_prefix (<prj>.<suite>.<id>), max_pending_minutes (0: wait forever),
slurm_conf (SLURM_CONF for every Slurm command).
Standard library only.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time

from doe_queue import read_json, write_atomic  # the helper that imports this module, next to it

RECORD = ".doe_slurm"
# Written before the helper cancels a job: the wrapper's SIGTERM then came from doe, not from Slurm.
STOP_REQUESTED = ".doe_stop_requested"
DONE_MARKER = ".doe_done"
SLURM_TIMEOUT = 60  # seconds; slurmctld may be slow, but a poll must not hang
IDS_PER_CALL = 2000  # keeps squeue's and scancel's command lines short
# squeue's states, as the helper reports them to the poll.
WAITING = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD", "SUSPENDED", "STOPPED"}
ENDED = {"COMPLETED", "FAILED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "CANCELLED", "PREEMPTED",
         "BOOT_FAIL", "DEADLINE", "SPECIAL_EXIT", "REVOKED"}
ENDED_BY_SLURM = ENDED - {"COMPLETED", "FAILED"}


class SlurmError(Exception):
    pass


class Slurm:
    def __init__(self, config: dict) -> None:
        self.sbatch_args = [str(arg) for arg in config.get("sbatch_args") or []]
        self.modules = [str(module) for module in config.get("modules") or []]
        self.name_prefix = str(config.get("job_name_prefix") or "doe")
        self.max_pending_seconds = float(config.get("max_pending_minutes") or 0) * 60
        if config.get("slurm_conf"):
            os.environ["SLURM_CONF"] = str(config["slurm_conf"])

    def run(self, *argv: str) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=SLURM_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise SlurmError(f"{argv[0]} did not answer within {SLURM_TIMEOUT} s") from None
        except FileNotFoundError:
            raise SlurmError(f"{argv[0]} is not on this host's PATH (is this a Slurm login host?)") from None

    def prepare(self) -> None:
        done = self.run("sinfo", "-h", "-o", "%P")
        if done.returncode != 0:
            raise SlurmError(f"Slurm does not answer (sinfo): {done.stderr.strip()}")

    # --- submitting ------------------------------------------------------------------------------------
    def submit(self, label: str, wrapper_argv: list[str], job_dir: str, run_config: dict) -> None:
        exp, run, rep = label.split(":")[1:4]
        argv = ["sbatch", "--parsable", "--no-requeue", "--open-mode=append",
                "--job-name", f"{self.name_prefix}.{exp}.{run}.{rep}", "--comment", _comment(label, job_dir),
                "--chdir", job_dir, "--output", os.path.join(job_dir, "slurm.log"), *self.sbatch_args]
        minutes = run_config.get("$slurm_job_minutes$") or run_config.get("$euler_job_minutes$")
        if minutes:
            argv.append(f"--time={int(minutes)}")  # the last --time wins over the host type's
        load = f"module load {shlex.join(self.modules)} && " if self.modules else ""
        argv += ["--wrap", load + "exec " + shlex.join([*wrapper_argv, job_dir])]
        for stale in (STOP_REQUESTED,):
            try:
                os.remove(os.path.join(job_dir, stale))
            except FileNotFoundError:
                pass
        record = os.path.join(job_dir, RECORD)
        write_atomic(record, json.dumps({"id": None, "label": label, "submitted": time.time()}))
        done = self.run(*argv)
        if done.returncode != 0:
            os.remove(record)
            raise SlurmError(f"sbatch refused job {label}: {done.stderr.strip()}")
        job_id = done.stdout.strip().split(";")[0]
        write_atomic(record, json.dumps({"id": job_id, "label": label, "submitted": time.time()}))

    # --- asking --------------------------------------------------------------------------------------
    def entries(self, root: str, rels: list[str]) -> dict[str, dict]:
        """label -> {"id", "state": queued|running|finished, "slurm_state", "reason"} of the given jobs'
        latest submissions, from one squeue call."""
        records = {}
        for rel in rels:
            job_dir = os.path.join(root, rel)
            record = read_json(os.path.join(job_dir, RECORD))
            if isinstance(record, dict) and record.get("label"):
                records[rel] = (job_dir, record)
        if any(record.get("id") is None for _, record in records.values()):
            self._find_unrecorded(records)
        ids = [record["id"] for _, record in records.values() if record.get("id")]
        states = self.squeue(ids)
        found, cancel = {}, []
        for job_dir, record in records.values():
            if not record.get("id"):
                continue
            slurm_state, reason = states.get(record["id"], (None, None))
            entry = {"id": record["id"], "state": "finished", "slurm_state": slurm_state, "reason": reason,
                     "exit_level": None}
            if slurm_state in WAITING:
                entry["state"] = "queued"
                waited = time.time() - float(record.get("submitted") or time.time())
                if slurm_state == "PENDING" and self.max_pending_seconds and waited > self.max_pending_seconds:
                    cancel.append((job_dir, record["id"]))
                    entry.update(state="finished", pending_too_long=_duration(waited))
            elif slurm_state is not None and slurm_state not in ENDED:
                entry["state"] = "running"  # RUNNING, CONFIGURING, COMPLETING (not done yet), ...
            found[record["label"]] = entry
        if cancel:
            self.cancel(cancel)
        return found

    def squeue(self, ids: list[str]) -> dict[str, tuple[str, str]]:
        states = {}
        for start in range(0, len(ids), IDS_PER_CALL):
            chunk = ids[start:start + IDS_PER_CALL]
            done = self.run("squeue", "-h", "--states=all", "-j", ",".join(chunk), "-o", "%i|%T|%r")
            if done.returncode != 0:
                if "Invalid job id" in done.stderr:
                    continue  # every id of the chunk has left Slurm's memory (MinJobAge)
                raise SlurmError(f"squeue failed: {done.stderr.strip()}")
            for line in done.stdout.splitlines():
                parts = line.strip().split("|")
                if len(parts) == 3:
                    states[parts[0]] = (parts[1], parts[2])
        return states

    def _find_unrecorded(self, records: dict) -> None:
        """Submissions whose id was not written (the helper was killed during sbatch): by comment."""
        done = self.run("squeue", "-h", "--me", "--states=all", "-o", "%i|%k")
        by_comment = dict(reversed(line.split("|", 1)) for line in done.stdout.splitlines() if "|" in line)
        for rel, (job_dir, record) in list(records.items()):
            if record.get("id") is None:
                job_id = by_comment.get(_comment(record["label"], job_dir))
                if job_id is None:
                    del records[rel]  # never reached Slurm: submitted again
                else:
                    record["id"] = job_id
                    write_atomic(os.path.join(job_dir, RECORD), json.dumps(record))

    # --- verdicts --------------------------------------------------------------------------------------
    def verdict(self, job_dir: str, marker: dict, entry: dict | None) -> dict | None:
        """The marker as the poll reports it, with Slurm's reason when Slurm ended the job (time limit,
        preemption, node failure, scancel by someone else): the wrapper then wrote a marker that looks
        like a stop by doe, or like a job killed by a signal. None: Slurm has not said its last word
        (COMPLETING); the next poll knows. Jobs from the journal (entry None) get no Slurm state."""
        state = {"state": "done", **marker}
        if marker.get("status") == "finished" and not marker.get("stopped_by_controller"):
            return state
        if os.path.exists(os.path.join(job_dir, STOP_REQUESTED)):
            # doe stopped it; Slurm's signal may have reached the job's commands before the wrapper's
            # own, so a death by signal counts as the stop it was, as on the other clouds.
            if marker.get("stopped_by_controller") or int(marker.get("exit_code") or 0) >= 128:
                state.update(status="finished", stopped_by_controller=True)
            return state
        slurm_state = (entry or {}).get("slurm_state")
        if entry is not None and slurm_state is not None and slurm_state not in ENDED:
            return None
        if slurm_state in ENDED_BY_SLURM:
            reason = f"Slurm: {slurm_state}"
        elif marker.get("stopped_by_controller"):
            reason = "stopped by Slurm"
        else:
            return state  # the job's own failure
        state.update(status="failed", stopped_by_controller=False, reason=reason)
        return state

    def lost(self, entry: dict) -> dict:
        if entry.get("pending_too_long") is not None:
            reason = f"Slurm: pending for {entry['pending_too_long']} ({entry.get('reason')}), cancelled"
        elif entry.get("slurm_state"):
            reason = f"Slurm: {entry['slurm_state']}" + (f" ({entry['reason']})" if entry.get("reason") not in
                                                          (None, "None") else "")
        else:
            reason = "Slurm: the job left the queue without the wrapper's marker"
        return {"state": "lost", "exit_code": None, "reason": reason}

    # --- stopping ----------------------------------------------------------------------------------------
    def cancel(self, jobs: list[tuple[str, str]], signal_name: str | None = None) -> None:
        for job_dir, _ in jobs:
            write_atomic(os.path.join(job_dir, STOP_REQUESTED), "")
        ids = [job_id for _, job_id in jobs]
        for start in range(0, len(ids), IDS_PER_CALL):
            flags = ["--full", f"--signal={signal_name}"] if signal_name else []
            self.run("scancel", *flags, *ids[start:start + IDS_PER_CALL])

    def _recorded_id(self, job_dir: str) -> str | None:
        record = read_json(os.path.join(job_dir, RECORD))
        return record.get("id") if isinstance(record, dict) else None

    def stop(self, job_dir: str, started: dict) -> bool:
        job_id = self._recorded_id(job_dir)
        if job_id is None:
            return False
        self.cancel([(job_dir, job_id)])
        return True

    def remove(self, entry: dict, job_dir: str) -> None:
        self.cancel([(job_dir, entry["id"])])

    def kill(self, job_dir: str, started: dict) -> None:
        job_id = self._recorded_id(job_dir)
        if job_id is not None:
            self.cancel([(job_dir, job_id)], signal_name="KILL")

    def close(self, root: str) -> None:
        """Cancel the jobs under root that have not ended (the running ones were stopped before)."""
        waiting = []
        for current, subdirs, files in os.walk(root):
            if RECORD in files and DONE_MARKER not in files:
                job_id = self._recorded_id(current)
                if job_id is not None:
                    waiting.append((current, job_id))
            subdirs[:] = [d for d in subdirs if d not in ("results", "scratch")]
        if waiting:
            self.cancel(waiting)


def _comment(label: str, job_dir: str) -> str:
    return f"doe {label} {job_dir}"


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"
