#!/usr/bin/env python3
"""Host-side queue helper: one call handles a whole batch of jobs, so the controller needs one Ansible
task per phase for all jobs of a host, never one per job.

    doe_queue.py [--tsp tsp] [--socket S] --root DIR enqueue  --request B64   (a batch of jobs)
    doe_queue.py [--tsp tsp] [--socket S] --root DIR status   --request B64 [--lock-file F --lock-owner O]
                                                          (states, stops leftovers; final: shutdown)
    doe_queue.py [--tsp tsp] [--socket S] --root DIR shutdown [--remove-dir] [--lock-file F --lock-owner O]
                                                                             (stop all jobs and tsp)
    doe_queue.py [--tsp tsp] [--socket S] --root DIR setup                    (queue ready + host facts)

Every action takes --wrapper auto|native|python (default auto): which job wrapper runs the jobs. setup
builds the native one (doe_job.c) when the host has a C compiler; auto uses it when it is built and up
to date, else doe_job.py. Both read the same job.spec and write the same files.

A request is base64 of JSON (shell-safe, so Ansible can call this with `raw`: no Python module run
per host, about ten times cheaper); without --request it is read from stdin. The queue is task
spooler on socket S (default: tsp's own), or with --scheduler slurm the Slurm cluster whose login host
this is (doe_slurm.py: one sbatch per job, same wrapper, same files). A host serves one experiment; each job lives in
<root>/<exp>/run_<i>/rep_<j>/ with config.json, job.spec (`tr '\\0' '\\n' < job.spec` shows it), results/
and scratch/; the job wrapper (next to this file) runs it and writes the done marker .doe_done last.
Enqueue is idempotent: a job whose label is in the queue or whose done marker exists is skipped. The
label of a job is doe:<exp>:<run>:<rep>:<attempt> (the controller uses the same). Output: one line
`DOE-JSON:<json>` on stdout. Standard library only.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
JOB_WRAPPER = os.path.join(HERE, "doe_job.py")
NATIVE_WRAPPER_SOURCE = os.path.join(HERE, "doe_job.c")
NATIVE_WRAPPER = os.path.join(HERE, "doe_job")
JOB_SPEC = "job.spec"
JOB_SPEC_TAG = "doe-job-1"
STARTED_MARKER = ".doe_started"
DONE_MARKER = ".doe_done"
# Per experiment: the finished jobs in order (the wrappers append), and the latest fetch list.
JOURNAL = ".doe_journal"
FETCH_LIST = ".doe_fetch"
# `tsp -l` rows: ID State Output E-Level Times Command, the command prefixed with "[label]".
TSP_ROW = re.compile(r"^(\d+)\s+(queued|running|finished|skipped|allrunning)\s.*?\[([^\]]*)\]")
TSP_ELEVEL = re.compile(r"^\d+\s+finished\s+\S+\s+(-?\d+)\s")
# A long poll may last up to this many times its wait while its jobs are about to finish.
STRETCH_FACTOR = 3.0


class QueueError(Exception):
    pass


def write_atomic(path: str, data: str | bytes, mode: int | None = None) -> None:
    """Readers see the old or the new file, never a part. No fsync: after a machine crash the queue
    itself is gone too, and the controller enqueues the job again."""
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as handle:
        handle.write(data.encode("utf-8") if isinstance(data, str) else data)
    if mode is not None:
        os.chmod(tmp, mode)
    os.replace(tmp, path)


def read_json(path: str):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def job_path(root: str, rel: str) -> str:
    """The job dir for a relative name from the controller; never outside root."""
    if rel.startswith("/") or ".." in rel.split("/"):
        raise QueueError(f"job dir {rel!r} is not a plain relative path")
    return os.path.join(root, rel)


TSP_TIMEOUT = 60  # seconds; a tsp client can hang on a server that died mid-answer


def run_tsp(tsp: str, *args: str) -> subprocess.CompletedProcess:
    """One tsp call that cannot hang the poll: a client stuck longer than TSP_TIMEOUT is an error."""
    try:
        return subprocess.run([tsp, *args], capture_output=True, text=True, check=False, timeout=TSP_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise QueueError(f"{tsp} {' '.join(args[:2])} did not answer within {TSP_TIMEOUT} s "
                         f"(TS_SOCKET={os.environ.get('TS_SOCKET', 'default')})") from None


def tsp_entries(tsp: str) -> dict[str, dict]:
    """label -> {"id", "state", "exit_level"} of the queue's entries (the last entry wins)."""
    listing = run_tsp(tsp, "-l")
    if listing.returncode != 0:
        raise QueueError(f"{tsp} -l failed: {listing.stderr.strip()}")
    entries = {}
    for line in listing.stdout.splitlines()[1:]:
        row = TSP_ROW.match(line)
        if not row:
            continue
        level = TSP_ELEVEL.match(line)
        entries[row.group(3)] = {"id": int(row.group(1)), "state": row.group(2),
                                 "exit_level": int(level.group(1)) if level else None}
    return entries


class TaskSpooler:
    """The host's own queue: one task spooler server per suite and host, one job at a time."""

    def __init__(self, tsp: str) -> None:
        self.tsp = tsp

    def prepare(self) -> None:
        done = run_tsp(self.tsp, "-S", "1")
        if done.returncode != 0:
            raise QueueError(f"{self.tsp} -S 1 failed: {done.stderr.strip()}")

    def entries(self, root: str, rels: list[str], read_only: bool = False) -> dict[str, dict]:
        """label -> {"state": queued|running|finished, "exit_level", ...} of the jobs in the queue."""
        return tsp_entries(self.tsp)

    def submit(self, label: str, wrapper_argv: list[str], job_dir: str, run_config: dict) -> None:
        # argv list, no shell: the label and paths never meet a shell parser.
        submitted = run_tsp(self.tsp, "-n", "-L", label, *wrapper_argv, job_dir)
        if submitted.returncode != 0:
            raise QueueError(f"{self.tsp} refused job {label}: {submitted.stderr.strip()}")

    def remove(self, entry: dict, job_dir: str) -> None:
        """Take a job that has not started out of the queue."""
        run_tsp(self.tsp, "-r", str(entry["id"]))

    def stop(self, job_dir: str, started: dict) -> bool:
        """Ask a started job's wrapper to stop (it then writes its marker); False if it is gone."""
        if not wrapper_running(started["wrapper_pid"], job_dir):
            return False
        try:
            os.kill(started["wrapper_pid"], signal.SIGTERM)
        except ProcessLookupError:
            return False
        return True

    def kill(self, job_dir: str, started: dict) -> None:
        """The wrapper hangs: kill what it started."""
        for pgid in [started["main_pgid"], *started.get("background_pgids", [])]:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            os.kill(started["wrapper_pid"], signal.SIGKILL)
        except ProcessLookupError:
            pass

    def verdict(self, job_dir: str, marker: dict, entry: dict | None) -> dict | None:
        """The done marker's state as the poll reports it (None: not ended yet, in another queue)."""
        return {"state": "done", **marker}

    def lost(self, entry: dict) -> dict:
        """A job the queue ended without the wrapper's marker (killed, or its wrapper did not start)."""
        return {"state": "lost", "exit_code": entry["exit_level"]}

    def close(self, root: str) -> None:
        """Every job is stopped: the queue's server goes."""
        run_tsp(self.tsp, "-C")
        run_tsp(self.tsp, "-K")


# Errors that are a message for the controller, not a bug (a scheduler module adds its own).
EXPECTED_ERRORS: tuple[type[Exception], ...] = (QueueError, ValueError, KeyError, OSError)


def open_queue(args: argparse.Namespace) -> tuple[object, tuple[type[Exception], ...]]:
    """The queue the jobs go to, and the errors it raises for the controller to show."""
    if args.scheduler == "slurm":
        sys.path.insert(0, HERE)
        import doe_slurm  # only on Slurm login hosts

        config = read_request(args.scheduler_config) if args.scheduler_config else {}
        return doe_slurm.Slurm(config), (*EXPECTED_ERRORS, doe_slurm.SlurmError)
    return TaskSpooler(args.tsp), EXPECTED_ERRORS


def archive_attempt(job_dir: str, marker: dict) -> None:
    """Move a previous attempt aside so a retry starts clean (retry of a failed job)."""
    target = os.path.join(job_dir, f"attempt_{marker.get('attempt') or 1}")
    os.makedirs(target, exist_ok=True)
    for name in ("results", STARTED_MARKER, DONE_MARKER):
        source = os.path.join(job_dir, name)
        if os.path.lexists(source):
            os.replace(source, os.path.join(target, name))


def config_json(run_config: dict) -> str:
    """config.json exactly as the controller writes it: 4-space indent, keys sorted."""
    return json.dumps(run_config, indent=4, sort_keys=True, separators=(", ", ": "), ensure_ascii=False)


def job_label(exp: str, run: int, rep: int, attempt: int) -> str:
    return f"doe:{exp}:{run}:{rep}:{attempt}"


def job_rel(exp: str, run: int, rep: int) -> str:
    return f"{exp}/run_{run}/rep_{rep}"


def job_spec(request: dict, cmds: dict, label: str, attempt: int) -> bytes:
    """The wrapper's job.spec (doe_job.py describes the fields). Values from the design are rendered
    here as JSON strings (also valid YAML), so the wrappers only copy them."""
    host = {"host": request.get("host"), "host_type": request["host_type"], "host_idx": request["host_idx"]}
    host_yaml = "".join(f"{key}: {json.dumps(value)}\n" for key, value in host.items())
    host_json = ", ".join(f'"{key}": {json.dumps(value)}' for key, value in host.items())
    tail_json = f'"label": {json.dumps(label)}, "attempt": {json.dumps(attempt)}'
    timeout = request.get("timeout")
    commands = [cmds["main"], *(command for name, command in cmds.items() if name != "main")]
    fields = [JOB_SPEC_TAG, repr(float(timeout)) if timeout else "", host_yaml, host_json, tail_json, *commands]
    if any("\0" in field for field in fields):
        raise QueueError(f"job {label}: a command contains a NUL character")
    return "".join(f"{field}\0" for field in fields).encode("utf-8")


def enqueue(root: str, queue, request: dict, wrapper: str = "auto") -> dict:
    """Enqueue a batch; first stop the leftovers (servers) of the previous multi-host job.

    request: {exp, host, host_type, host_idx, timeout, runs: {run: run config}, jobs: [[run, rep, attempt]],
              stop: [dir], wait_started: bool, wait_timeout: seconds,
              parts: [{host, host_type, host_idx, root, phase, check, token}] (Slurm only: each job is one
              allocation running every host's part; this host writes all their folders)}
    """
    stopped = stop_jobs(root, queue, request["stop"]) if request.get("stop") else []
    exp = request["exp"]
    entries = queue.entries(root, [job_rel(exp, run, rep) for run, rep, _ in request.get("jobs", [])])
    wrapper_argv = job_wrapper_argv(wrapper)
    enqueued, skipped = [], []
    for run, rep, attempt in request.get("jobs", []):
        rel = job_rel(exp, run, rep)
        label = job_label(exp, run, rep, attempt)
        job_dir = job_path(root, rel)
        marker = read_json(os.path.join(job_dir, DONE_MARKER))
        if marker is not None and (marker.get("attempt") or 1) >= attempt:
            skipped.append(rel)
            continue
        entry = entries.get(label)
        if entry is not None and entry["state"] in ("queued", "running", "allrunning"):
            skipped.append(rel)
            continue
        run_config = request["runs"][str(run)]
        if request.get("parts"):
            # One multi-host job as one Slurm allocation: this host writes every host's folder.
            parts = []
            for part in request["parts"]:
                part_request = {**request, **part}
                part_dir = job_path(part["root"], rel)
                write_job_dir(part_dir, part_request, run_config, label, attempt)
                parts.append({**part, "dir": part_dir})
            queue.submit_allocation(label, wrapper_argv, job_dir, parts, run_config)
        else:
            write_job_dir(job_dir, request, run_config, label, attempt, marker)
            queue.submit(label, wrapper_argv, job_dir, run_config)
        enqueued.append(rel)
    result = {"enqueued": enqueued, "skipped": skipped, "stopped": stopped,
              "changed": bool(enqueued or stopped)}
    if request.get("wait_started"):
        dirs = [job_rel(exp, run, rep) for run, rep, _ in request.get("jobs", [])]
        result["started"] = wait_started(root, dirs, float(request.get("wait_timeout", 60)))
    return result


def write_job_dir(job_dir: str, request: dict, run_config: dict, label: str, attempt: int,
                  marker: dict | None = None) -> None:
    """A job's folder before it is queued: the last attempt archived, config.json and job.spec."""
    cmds = run_config["$CMD$"][request["host_type"]][request["host_idx"]]
    if marker is None:
        marker = read_json(os.path.join(job_dir, DONE_MARKER))
    try:
        if marker is not None:
            archive_attempt(job_dir, marker)
        os.makedirs(os.path.join(job_dir, "results"), exist_ok=True)
        os.makedirs(os.path.join(job_dir, "scratch"), exist_ok=True)
        write_atomic(os.path.join(job_dir, "config.json"), config_json(run_config))
        write_atomic(os.path.join(job_dir, JOB_SPEC), job_spec(request, cmds, label, attempt))
    except OSError as error:  # a full disk or a read-only folder: say where
        raise QueueError(f"cannot write the job folder {job_dir}: {error.strerror or error}") from None


def job_label_of(job_dir: str) -> str | None:
    """The label in a job's job.spec (its tail field), None without a readable spec."""
    try:
        with open(os.path.join(job_dir, JOB_SPEC), "rb") as handle:
            fields = handle.read().decode("utf-8").split("\0")
        return json.loads("{" + fields[4] + "}")["label"]
    except (OSError, ValueError, IndexError, KeyError):
        return None


def native_wrapper_problem(choice: str, build: bool) -> str | None:
    """None when jobs run with the native wrapper, else why not. `build`: build it if it is missing or
    older than its source (setup does; `native` always does, and fails without it)."""
    if choice == "python":
        return "the python wrapper was chosen"
    if native_wrapper_current():
        return None
    problem = build_native_wrapper() if build or choice == "native" else "not built"
    if problem is not None and choice == "native":
        raise QueueError(f"cannot build the native job wrapper: {problem}")
    return problem


def job_wrapper_argv(choice: str) -> list[str]:
    """How tsp starts a job's wrapper (the job dir follows): the native build if it is wanted and
    current, else doe_job.py as byte code for this interpreter."""
    if native_wrapper_problem(choice, build=False) is None:
        return [NATIVE_WRAPPER]
    return [sys.executable, "-S", "-I", compiled_job_wrapper()]


def native_wrapper_current() -> bool:
    try:
        return os.stat(NATIVE_WRAPPER).st_mtime >= os.stat(NATIVE_WRAPPER_SOURCE).st_mtime
    except OSError:
        return False


def build_native_wrapper() -> str | None:
    """Put a build of doe_job.c next to it; None when done, else why not. Builds are kept per source
    hash in the user's cache dir, so a host compiles each version once, not once per suite."""
    import hashlib  # only at setup

    try:
        with open(NATIVE_WRAPPER_SOURCE, "rb") as handle:
            digest = hashlib.sha256(handle.read()).hexdigest()[:16]
    except OSError as error:
        return f"cannot read {NATIVE_WRAPPER_SOURCE}: {error.strerror}"
    cache_dir = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "doe")
    cached = os.path.join(cache_dir, f"doe_job-{platform.machine()}-{digest}")
    if not os.path.exists(cached):
        try:
            os.makedirs(cache_dir, exist_ok=True)
        except OSError:
            cached = NATIVE_WRAPPER  # no cache: build in place
        problem = compile_wrapper(cached)
        if problem is not None:
            return problem
    if cached != NATIVE_WRAPPER:
        with open(cached, "rb") as handle:
            write_atomic(NATIVE_WRAPPER, handle.read(), mode=0o755)
    # A folder mounted noexec (often /tmp) holds the build but cannot run it: then doe_job.py runs the jobs.
    try:
        probe = subprocess.run([NATIVE_WRAPPER], capture_output=True, text=True, check=False, timeout=30)
        problem = None if probe.returncode == 2 and "usage" in probe.stderr else f"exit {probe.returncode}"
    except (OSError, subprocess.TimeoutExpired) as error:
        problem = str(error)
    if problem is not None:
        os.remove(NATIVE_WRAPPER)
        return f"the native job wrapper does not run in {HERE}: {problem}"
    return None


def compile_wrapper(target: str) -> str | None:
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return "no C compiler (cc) on this host"
    temporary = f"{target}.{os.getpid()}.tmp"
    try:
        built = subprocess.run([compiler, "-O2", "-o", temporary, NATIVE_WRAPPER_SOURCE], capture_output=True,
                               text=True, check=False, timeout=120)
        if built.returncode != 0:
            return f"{compiler} failed: {built.stderr.strip()[-300:]}"
        os.replace(temporary, target)
        return None
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"{compiler} failed: {error}"
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def compiled_job_wrapper() -> str:
    """The job wrapper as byte code for this interpreter (the one that runs it): a script started by
    name is compiled on every start, about 3 ms per job. Compiled again when the script is newer."""
    compiled = JOB_WRAPPER + "c"
    try:
        if os.path.exists(compiled) and os.stat(compiled).st_mtime > os.stat(JOB_WRAPPER).st_mtime:
            return compiled
        import py_compile  # ~20 ms, so only when needed

        py_compile.compile(JOB_WRAPPER, cfile=compiled, doraise=True)  # written atomically
        return compiled
    except Exception:  # noqa: BLE001 - no byte code (read-only dir, odd interpreter): run the script
        return JOB_WRAPPER


def wait_started(root: str, dirs: list[str], timeout: float) -> list[str]:
    """Readiness barrier: return once every job has started (or already ended)."""
    deadline = time.monotonic() + timeout
    waiting = list(dirs)
    delay = 0.005
    while waiting:
        waiting = [d for d in waiting
                   if not os.path.exists(os.path.join(job_path(root, d), STARTED_MARKER))
                   and not os.path.exists(os.path.join(job_path(root, d), DONE_MARKER))]
        if not waiting:
            break
        if time.monotonic() > deadline:
            raise QueueError(f"jobs did not start within {timeout:g} s: {', '.join(waiting)}")
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
    return dirs


def stop_jobs(root: str, queue, dirs: list[str], grace: float = 15.0) -> list[str]:
    """Stop the given jobs: running ones get SIGTERM (the wrapper then writes its marker),
    queued ones are removed from the queue. Returns the dirs that were stopped."""
    entries = None
    stopped, waiting = [], []
    for rel in dirs:
        job_dir = job_path(root, rel)
        if os.path.exists(os.path.join(job_dir, DONE_MARKER)):
            continue
        started = read_json(os.path.join(job_dir, STARTED_MARKER))
        if started is not None:
            if queue.stop(job_dir, started):
                waiting.append((rel, started))
            continue
        if entries is None:
            entries = queue.entries(root, dirs)
        entry = entries.get(job_label_of(job_dir) or "")
        if entry is not None and entry["state"] == "queued":
            queue.remove(entry, job_dir)
            stopped.append(rel)
    deadline = time.monotonic() + grace
    for rel, started in waiting:
        marker = os.path.join(job_path(root, rel), DONE_MARKER)
        while not os.path.exists(marker) and time.monotonic() < deadline:
            time.sleep(0.02)
        if not os.path.exists(marker):
            # The wrapper hangs: kill what it started; status then reports the job as lost.
            queue.kill(job_path(root, rel), started)
        stopped.append(rel)
    return stopped


def wrapper_running(pid: int, job_dir: str) -> bool:
    """Whether `pid` is still the job's wrapper (which works in its job dir). A wrapper that died
    without its marker (SIGKILL, a reboot) left a pid that may by now belong to any other process."""
    if not os.path.isdir("/proc/self"):
        return True  # no /proc to ask: trust the marker
    try:
        return os.path.realpath(os.readlink(f"/proc/{pid}/cwd")) == os.path.realpath(job_dir)
    except OSError:  # gone, or another user's process: not this job's wrapper
        return False


def wait_for_markers(root: str, request: dict) -> None:
    """Long poll: return once every requested job has its done marker (or, with a cursor, once the journal
    has request["wait_for"] new entries), or after request["wait"] seconds. Fewer, longer polls cost the
    controller far fewer Ansible runs than short ones. When the wait is over but the jobs finish at a
    rate that ends the rest within STRETCH_FACTOR times the wait, it goes on: answering just before the
    last jobs end would cost another Ansible round for nothing."""
    wait = float(request.get("wait") or 0)
    start = time.monotonic()
    deadline, last_chance = start + wait, start + STRETCH_FACTOR * wait
    exp = request.get("exp", "")
    if "cursor" in request:
        journal = JournalReader(journal_path(root, exp), int(request["cursor"]))
        target = int(request.get("wait_for") or 0)

        def n_left() -> int:
            return max(0, target - journal.count_new_lines())
    else:
        waiting = [job_path(root, job_rel(exp, run, rep)) for run, rep, _ in request.get("jobs", [])]

        def n_left() -> int:
            nonlocal waiting
            waiting = [d for d in waiting if not os.path.exists(os.path.join(d, DONE_MARKER))]
            return len(waiting)
    n_left_at_start = None
    while True:
        left = n_left()
        now = time.monotonic()
        if n_left_at_start is None:
            n_left_at_start = left
        if not left or now >= last_chance:
            break
        if now >= deadline:
            finished = n_left_at_start - left
            if finished <= 0 or now + left * (now - start) / finished > last_chance:
                break
        time.sleep(0.05)  # a scan of hundreds of markers costs ~1 ms; the jobs need the CPU more


def journal_path(root: str, exp: str) -> str:
    """Each job's wrapper appends its job dir to this file after its done marker: what finished, in order."""
    return os.path.join(job_path(root, exp), JOURNAL)


class JournalReader:
    """Reads complete lines of a host's journal from a byte offset (the controller's cursor)."""

    def __init__(self, path: str, cursor: int) -> None:
        self.path = path
        self.cursor = cursor
        self._scanned = cursor
        self._new_lines = 0

    def size(self) -> int:
        try:
            return os.stat(self.path).st_size
        except FileNotFoundError:
            return 0

    def count_new_lines(self) -> int:
        """Complete lines after the cursor so far; reads only bytes not counted before."""
        size = self.size()
        if size > self._scanned:
            with open(self.path, "rb") as handle:
                handle.seek(self._scanned)
                chunk = handle.read(size - self._scanned)
            complete = chunk.rfind(b"\n") + 1
            self._new_lines += chunk.count(b"\n", 0, complete)
            self._scanned += complete
        return self._new_lines

    def read(self, limit: int) -> tuple[list[str], int, bool]:
        """Up to `limit` job dirs after the cursor, the cursor after them, and whether more follow."""
        size = self.size()
        if size < self.cursor:  # a new journal (the host's folder was set up again): read it all
            self.cursor = 0
        if size == self.cursor:
            return [], self.cursor, False
        # Line by line: a page costs its own lines, not the rest of a journal read from its start.
        entries, cursor, more = [], self.cursor, False
        with open(self.path, "rb") as handle:
            handle.seek(self.cursor)
            while True:
                line = handle.readline()
                if not line.endswith(b"\n"):  # the end, or a line still being written
                    break
                if len(entries) == limit:
                    more = True
                    break
                entries.append(line[:-1].decode("utf-8", "replace"))
                cursor += len(line)
        return entries, cursor, more


def journal_job_rel(exp: str, entry: str) -> str | None:
    """A journal entry (a job dir path) as <exp>/run_<i>/rep_<j>; None if it is not one."""
    parts = entry.rstrip("/").split("/")
    if len(parts) < 2 or not parts[-2].startswith("run_") or not parts[-1].startswith("rep_"):
        return None
    return job_rel(exp, parts[-2][4:], parts[-1][4:])


def status(root: str, queue, request: dict, lock_file: str | None = None, lock_owner: str = "") -> dict:
    """request: {exp, jobs: [[run, rep, attempt]], cursor, wait_for, max_report, stop: [dir], wait: seconds,
    final: bool, max_file_bytes, read_only: bool}
    -> states of the jobs finished since the journal cursor (at most max_report of them, the new cursor,
    whether more follow) and of every job in `jobs`; the queue's counts; what to fetch, as a list file
    for rsync --files-from. `final` (the host's last jobs, all of them in `jobs`): once all of them are
    done, the queue is shut down (and the host's lock released) in this same call; the fetch that
    follows needs only the files, and a fetch that fails is simply repeated by the next poll.
    `read_only` (doe status, while a controller may be polling): looks and changes nothing, so no job is
    stopped or cancelled, no record or fetch list written, and the queue keeps running."""
    read_only = bool(request.get("read_only"))
    stopped = stop_jobs(root, queue, request.get("stop", [])) if request.get("stop") else []
    if request.get("wait") and not stopped:
        wait_for_markers(root, request)
    exp = request.get("exp", "")
    # The queue is listed before the journal is read: a job the listing shows as ended has its journal
    # entry already (its wrapper writes it before exiting), so "idle" plus a read journal means every
    # enqueued job was reported, was lost, or never reached the queue.
    entries = queue.entries(root, [job_rel(exp, run, rep) for run, rep, _ in request.get("jobs", [])], read_only)
    prefix = f"doe:{exp}:"
    mine = [entry["state"] for label, entry in entries.items() if label.startswith(prefix)]
    counts = {"queued": mine.count("queued"), "running": mine.count("running") + mine.count("allrunning")}
    states, fetch = {}, []

    def done(rel: str, job_dir: str, attempt: int, entry: dict | None = None) -> bool:
        """Whether this attempt's done marker is there; if so the job's state says done, with the marker."""
        marker = read_json(os.path.join(job_dir, DONE_MARKER))
        if marker is None or (marker.get("attempt") or 1) < attempt:
            return False
        verdict = queue.verdict(job_dir, marker, entry)
        if verdict is None:
            return False  # the queue has not ended the job yet
        if rel not in states:
            fetch.append(f"{rel}/results/")
        states[rel] = verdict
        return True

    result = {}
    if "cursor" in request:
        journal = JournalReader(journal_path(root, exp), int(request["cursor"]))
        finished, result["cursor"], result["more"] = journal.read(int(request.get("max_report") or 500))
        for line in finished:
            rel = journal_job_rel(exp, line)
            if rel is not None:  # a job whose marker went aside (a retry is queued) is reported by its retry
                done(rel, job_path(root, rel), 1)
    for run, rep, attempt in request.get("jobs", []):
        rel = job_rel(exp, run, rep)
        job_dir = job_path(root, rel)
        entry = entries.get(job_label(exp, run, rep, attempt))
        if done(rel, job_dir, attempt, entry):
            continue
        if entry is None or not os.path.exists(os.path.join(job_dir, JOB_SPEC)):
            # Not in the queue, or its folder is gone (deleted with the host's files): run it again.
            states[rel] = {"state": "unknown"}
        elif entry["state"] in ("queued", "running", "allrunning"):
            started = os.path.exists(os.path.join(job_dir, STARTED_MARKER))
            states[rel] = {"state": "running" if started else "queued"}
            if entry.get("slurm_state"):  # what the scheduler says (doe status shows it)
                states[rel]["scheduler"] = [entry["slurm_state"], entry.get("reason")]
        elif done(rel, job_dir, attempt, entry):
            pass  # it ended after its marker was looked for above (the wrapper writes the marker before it exits)
        else:
            # The queue finished it but the wrapper left no marker: it was killed, or did not start.
            states[rel] = queue.lost(entry)
            if os.path.isdir(os.path.join(job_dir, "results")):
                fetch.append(f"{rel}/results/")
    requested = {job_rel(exp, run, rep) for run, rep, _ in request.get("jobs", [])}
    all_done = all(states[rel]["state"] in ("done", "lost") for rel in requested)
    max_bytes = request.get("max_file_bytes")
    fetch_list = os.path.join(job_path(root, exp), FETCH_LIST)
    if fetch and not read_only:
        write_atomic(fetch_list, "".join(f"{rel}\n" for rel in fetch))
    result.update({"jobs": states, "fetch_count": len(fetch), "fetch_list": fetch_list, "max_file_bytes": max_bytes,
                   "stopped": stopped,
                   "queue": counts, "idle": not any(counts.values()),
                   "skipped": not_fetched(root, fetch, max_bytes), "all_done": all_done, "changed": bool(stopped)})
    if request.get("final") and all_done and result["idle"] and not result.get("more"):
        result["shut_down"] = shutdown(root, queue, lock_file=lock_file, lock_owner=lock_owner)
        result["changed"] = True
    return result


def not_fetched(root: str, dirs: list[str], max_bytes: int | None) -> list[dict]:
    """What the fetch leaves out, so the controller can say so: symlinks and other non-regular
    files (never followed), and files over the size cap."""
    skipped = []
    for rel in dirs:
        top = job_path(root, rel.rstrip("/"))
        for current, subdirs, files in os.walk(top, followlinks=False):
            for name in subdirs + files:
                path = os.path.join(current, name)
                shown = os.path.join(rel.rstrip("/"), os.path.relpath(path, top))
                info = os.lstat(path)
                if os.path.islink(path):
                    skipped.append({"path": shown, "reason": f"symlink to {os.readlink(path)}"})
                elif name in files and not os.path.isfile(path):
                    skipped.append({"path": shown, "reason": "not a regular file"})
                elif name in files and max_bytes is not None and info.st_size > max_bytes:
                    skipped.append({"path": shown, "reason": f"{info.st_size} bytes, over the fetch cap of "
                                                             f"{max_bytes} bytes"})
    return skipped


def shutdown(root: str, queue, remove_dir: str | None = None, lock_file: str | None = None,
             lock_owner: str = "") -> dict:
    """Stop every job under root that is still running, then the queue's server; optionally remove
    the host's suite folder (the local cloud, after every result was fetched) and release the host's
    lock (SSH hosts) in the same call, which saves the controller a task per host."""
    running = []
    for current, subdirs, files in os.walk(root):
        if STARTED_MARKER in files and DONE_MARKER not in files:
            running.append(os.path.relpath(current, root))
        subdirs[:] = [d for d in subdirs if d not in ("results", "scratch")]
    stopped = stop_jobs(root, queue, running) if running else []
    queue.close(root)
    if remove_dir:
        shutil.rmtree(root, ignore_errors=True)  # the job folders (outside remove_dir on Slurm login hosts)
        shutil.rmtree(remove_dir, ignore_errors=True)
    result = {"stopped": stopped, "changed": bool(stopped) or bool(remove_dir)}
    if lock_file:
        result["lock"] = release_lock(lock_file, lock_owner)
        result["changed"] = result["changed"] or result["lock"] == "released"
    return result


def release_lock(lock_file: str, owner: str) -> str:
    """Remove the host's lock file if `owner` holds it (its first line); another suite's lock stays."""
    try:
        with open(lock_file, encoding="utf-8") as handle:
            holder = handle.readline().rstrip("\n")
    except OSError:
        return "not-ours"
    if holder != owner:
        return "not-ours"
    try:
        os.remove(lock_file)
    except FileNotFoundError:
        return "not-ours"
    return "released"


def setup(root: str, queue, wrapper: str = "auto") -> dict:
    """Make the queue ready (one slot: jobs of a host run one after another), build the native job
    wrapper where possible, and report the host."""
    queue.prepare()
    problem = native_wrapper_problem(wrapper, build=True)
    # provenance.json records which wrapper ran the jobs, and why not the native one.
    wrapper_facts = {"job_wrapper": "native"} if problem is None else {"job_wrapper": "python",
                                                                       "job_wrapper_note": problem}
    return {"facts": {**facts(), **wrapper_facts}, "changed": False}


def facts() -> dict:
    cpu_model, cores = None, os.cpu_count()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_kb = None
    try:
        with open("/proc/meminfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    mem_kb = int(line.split()[1])
                    break
    except OSError:
        pass
    uname = platform.uname()
    return {"cpu_model": cpu_model or uname.processor or None, "cpu_cores": cores, "memory_kb": mem_kb,
            "kernel": f"{uname.system} {uname.release}", "machine": uname.machine,
            "python": platform.python_version()}


def read_request(chunk: str | None) -> dict:
    raw = base64.b64decode(chunk).decode("utf-8") if chunk else sys.stdin.read()
    return json.loads(raw) if raw.strip() else {}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="doe_queue.py")
    parser.add_argument("--root", required=True, help="folder that holds this host's job dirs")
    parser.add_argument("--tsp", default="tsp", help="task spooler binary (Debian: tsp, elsewhere: ts)")
    parser.add_argument("--socket", default="", help="task spooler socket (TS_SOCKET); empty: tsp's default")
    parser.add_argument("--scheduler", choices=["tsp", "slurm"], default="tsp",
                        help="who runs the jobs: the host's own task spooler, or Slurm (doe_slurm.py)")
    parser.add_argument("--scheduler-config", default="",
                        help="base64 of JSON: the scheduler's settings (Slurm: sbatch arguments, job names)")
    parser.add_argument("action", choices=["enqueue", "status", "shutdown", "setup"])
    parser.add_argument("--request", help="base64 of the JSON request (default: JSON on stdin)")
    parser.add_argument("--remove-dir", action="store_true", help="shutdown: also remove the folder above bin/")
    parser.add_argument("--lock-file", help="shutdown (and a final status): also release this lock file if "
                                            "--lock-owner holds it")
    parser.add_argument("--lock-owner", default="", help="the lock's owner, <suite>_<id>")
    parser.add_argument("--wrapper", choices=["auto", "native", "python"], default="auto",
                        help="the job wrapper: native (doe_job.c, built at setup), python, or auto")
    args = parser.parse_args(argv)
    if args.socket:
        os.environ["TS_SOCKET"] = args.socket
    expected = EXPECTED_ERRORS
    try:
        os.makedirs(args.root, exist_ok=True)
        queue, expected = open_queue(args)
        if args.action == "shutdown":
            result = shutdown(args.root, queue, os.path.dirname(HERE) if args.remove_dir else None,
                              args.lock_file, args.lock_owner)
        elif args.action == "setup":
            result = setup(args.root, queue, args.wrapper)
        elif args.action == "enqueue":
            result = enqueue(args.root, queue, read_request(args.request), args.wrapper)
        else:
            result = status(args.root, queue, read_request(args.request), args.lock_file, args.lock_owner)
    except expected as error:
        # OSError: e.g. a full disk or a read-only folder; its text names the path.
        sys.stderr.write(f"doe_queue: {type(error).__name__}: {error}\n")
        return 1
    sys.stdout.write("DOE-JSON:" + json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
