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
import sys
import time

from doe_queue import JOB_SPEC, read_json, write_atomic  # the helper that imports this module, next to it

RECORD = ".doe_slurm"
# Written before the helper cancels a job: the wrapper's SIGTERM then came from doe, not from Slurm.
STOP_REQUESTED = ".doe_stop_requested"
DONE_MARKER = ".doe_done"
STARTED_MARKER = ".doe_started"
# In the submitting host's job folder: the parts of a multi-host job's allocation (run_allocation reads it).
ALLOCATION = ".doe_allocation.json"
BARRIER_TIMEOUT = 120  # seconds the first-phase parts (servers) may take to start
STOP_GRACE = 15  # seconds a stopped part has to end before it is killed
CANCEL_WAIT = 90  # seconds a cancelled job may take to end (Slurm's KillWait is 30 s by default)
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
        self._sbatch(label, job_dir, run_config, [], "exec " + shlex.join([*wrapper_argv, job_dir]))

    def submit_allocation(self, label: str, wrapper_argv: list[str], job_dir: str, parts: list[dict],
                          run_config: dict) -> None:
        """A multi-host job as one allocation of a node per host; `run_allocation` runs the parts in it.
        The other hosts' folders get a record that points at this one's (so their polls find the id)."""
        plan = {"wrapper": wrapper_argv, "barrier_timeout": BARRIER_TIMEOUT,
                "parts": [{key: part[key] for key in ("dir", "host", "phase", "check", "token")} for part in parts]}
        write_atomic(os.path.join(job_dir, ALLOCATION), json.dumps(plan))
        for part in parts:
            if part["dir"] != job_dir:
                _clear_stop(part["dir"])
                write_atomic(os.path.join(part["dir"], RECORD), json.dumps({"lead": job_dir, "label": label}))
        command = shlex.join([sys.executable, os.path.abspath(__file__), "allocation",
                              os.path.join(job_dir, ALLOCATION)])
        self._sbatch(label, job_dir, run_config,
                     [f"--nodes={len(parts)}", "--ntasks-per-node=1", "--exclusive"], "exec " + command)

    def _sbatch(self, label: str, job_dir: str, run_config: dict, extra_args: list[str], command: str) -> None:
        exp, run, rep = label.split(":")[1:4]
        argv = ["sbatch", "--parsable", "--no-requeue", "--open-mode=append",
                "--job-name", f"{self.name_prefix}.{exp}.{run}.{rep}", "--comment", _comment(label, job_dir),
                "--chdir", job_dir, "--output", os.path.join(job_dir, "slurm.log"), *self.sbatch_args, *extra_args]
        minutes = run_config.get("$slurm_job_minutes$") or run_config.get("$euler_job_minutes$")
        if minutes:
            argv.append(f"--time={int(minutes)}")  # the last --time wins over the host type's
        load = f"module load {shlex.join(self.modules)} && " if self.modules else ""
        argv += ["--wrap", load + command]
        _clear_stop(job_dir)
        record = os.path.join(job_dir, RECORD)
        write_atomic(record, json.dumps({"id": None, "label": label, "submitted": time.time()}))
        done = self.run(*argv)
        if done.returncode != 0:
            os.remove(record)
            raise SlurmError(f"sbatch refused job {label}: {done.stderr.strip()}")
        job_id = done.stdout.strip().split(";")[0]
        write_atomic(record, json.dumps({"id": job_id, "label": label, "submitted": time.time()}))

    # --- asking --------------------------------------------------------------------------------------
    def entries(self, root: str, rels: list[str], read_only: bool = False) -> dict[str, dict]:
        """label -> {"id", "state": queued|running|finished, "slurm_state", "reason"} of the given jobs'
        latest submissions, from one squeue call. Unless `read_only`, a submission whose id was not
        written gets it, and a job pending too long is cancelled."""
        records = {}
        for rel in rels:
            job_dir = os.path.join(root, rel)
            record = _read_record(job_dir)
            if isinstance(record, dict) and record.get("label"):
                records[rel] = (job_dir, record)
        if not read_only and any(record.get("id") is None for _, record in records.values()):
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
                too_long = self.max_pending_seconds and waited > self.max_pending_seconds
                if slurm_state == "PENDING" and too_long and not read_only:
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
        record = _read_record(job_dir)
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
        """Cancel the jobs under root that have not ended (the running ones were stopped before), then
        wait until Slurm has ended them: scancel only asks, and a job that was just starting would
        otherwise write into its folder after the caller removed it."""
        waiting = []
        for current, subdirs, files in os.walk(root):
            if RECORD in files and DONE_MARKER not in files:
                job_id = self._recorded_id(current)
                if job_id is not None:
                    waiting.append((current, job_id))
            subdirs[:] = [d for d in subdirs if d not in ("results", "scratch")]
        if not waiting:
            return
        self.cancel(waiting)
        ending = sorted({job_id for _, job_id in waiting})  # a multi-host job's parts share the lead's id
        deadline = time.monotonic() + CANCEL_WAIT
        while ending and time.monotonic() < deadline:
            time.sleep(0.5)
            ending = [job_id for job_id, (state, _) in self.squeue(ending).items() if state not in ENDED]


def _read_record(job_dir: str) -> dict | None:
    """A job's Slurm record; a host's part of an allocation points at the record of the host that
    submitted it (written there first, so the id may still be missing: then the part waits too)."""
    record = read_json(os.path.join(job_dir, RECORD))
    if isinstance(record, dict) and record.get("lead"):
        lead = read_json(os.path.join(str(record["lead"]), RECORD))
        if not isinstance(lead, dict) or lead.get("label") != record.get("label") or not lead.get("id"):
            return None
        return {**lead, "lead": record["lead"]}
    return record


def _clear_stop(job_dir: str) -> None:
    try:
        os.remove(os.path.join(job_dir, STOP_REQUESTED))
    except FileNotFoundError:
        pass


def _comment(label: str, job_dir: str) -> str:
    return f"doe {label} {job_dir}"


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


# --- inside an allocation ----------------------------------------------------------------------------
def run_allocation(plan_file: str) -> int:
    """The batch script of a multi-host job: every host's part on a node of its own (`srun -w`), in host
    order. The design's commands name other hosts by a token (their nodes are known only now): the
    tokens in each part's job.spec become the node names first. First-phase parts (servers) start,
    then, once they have started, the others; when the parts whose end decides the job (clients) are
    done, the rest are stopped as doe stops them on other clouds."""
    with open(plan_file, encoding="utf-8") as handle:
        plan = json.load(handle)
    parts = plan["parts"]
    nodes = _allocated_nodes()
    if len(nodes) < len(parts):
        print(f"doe: {len(parts)} hosts but {len(nodes)} nodes allocated", file=sys.stderr)
        return 1
    names = {part["token"]: node for part, node in zip(parts, nodes, strict=False)}
    for part in parts:
        _replace_tokens(os.path.join(part["dir"], JOB_SPEC), names)
    running: dict[str, subprocess.Popen] = {}
    for phase in (1, 2):
        started = [part for part in parts if part["phase"] == phase]
        for part in started:
            node = names[part["token"]]
            running[part["dir"]] = subprocess.Popen(
                ["srun", "--nodes=1", "--ntasks=1", f"--nodelist={node}", f"--chdir={part['dir']}",
                 f"--job-name={part['host']}", *plan["wrapper"], part["dir"]])
        if phase == 1 and started and not _wait_started([part["dir"] for part in started],
                                                        float(plan.get("barrier_timeout") or BARRIER_TIMEOUT)):
            print("doe: the first-phase hosts did not start in time", file=sys.stderr)
            _stop(parts, running)
            return 1
    deciding = [part["dir"] for part in parts if part["check"]] or list(running)
    for job_dir in deciding:
        running[job_dir].wait()
    _stop([part for part in parts if part["dir"] not in deciding], running)
    return 0


def _allocated_nodes() -> list[str]:
    done = subprocess.run(["scontrol", "show", "hostnames", os.environ.get("SLURM_JOB_NODELIST", "")],
                          capture_output=True, text=True, check=False, timeout=SLURM_TIMEOUT)
    return done.stdout.split()


def _replace_tokens(spec: str, names: dict[str, str]) -> None:
    with open(spec, "rb") as handle:
        content = handle.read()
    for token, node in names.items():
        content = content.replace(token.encode("utf-8"), node.encode("utf-8"))
    tmp = f"{spec}.tmp"
    with open(tmp, "wb") as handle:
        handle.write(content)
    os.replace(tmp, spec)


def _wait_started(dirs: list[str], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not all(os.path.exists(os.path.join(d, STARTED_MARKER)) or os.path.exists(os.path.join(d, DONE_MARKER))
                  for d in dirs):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _stop(parts: list[dict], running: dict[str, subprocess.Popen]) -> None:
    """Stop the parts still running as doe stops a job elsewhere: the marker says doe asked, and the
    wrapper gets SIGTERM (via its step: signalling srun would end the step before the wrapper wrote its
    marker). What has not ended after the grace time ends with the allocation."""
    stopping = [part for part in parts if part["dir"] in running and running[part["dir"]].poll() is None]
    if not stopping:
        return
    for part in stopping:
        write_atomic(os.path.join(part["dir"], STOP_REQUESTED), "")
    listed = subprocess.run(["squeue", "-h", "-s", "-j", os.environ.get("SLURM_JOB_ID", ""), "-o", "%i|%j"],
                            capture_output=True, text=True, check=False, timeout=SLURM_TIMEOUT).stdout
    steps = dict(reversed(line.strip().split("|", 1)) for line in listed.splitlines() if "|" in line)
    ids = [steps[part["host"]] for part in stopping if part["host"] in steps]
    if ids:
        subprocess.run(["scancel", "--signal=TERM", *ids], capture_output=True, check=False, timeout=SLURM_TIMEOUT)
    deadline = time.monotonic() + STOP_GRACE
    for part in stopping:
        try:
            running[part["dir"]].wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "allocation":
        sys.exit(run_allocation(sys.argv[2]))
    print("usage: doe_slurm.py allocation <plan file>", file=sys.stderr)
    sys.exit(2)
