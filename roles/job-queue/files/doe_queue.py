#!/usr/bin/env python3
"""Host-side queue helper: one call handles a whole batch of jobs, so the controller needs one Ansible
task per phase for all jobs of a host, never one per job.

    doe_queue.py enqueue --root DIR [--tsp tsp]   stdin: {"jobs": [...], "wait_started": bool}
    doe_queue.py status  --root DIR [--tsp tsp]   stdin: {"jobs": [{"label", "dir"}...], "stop": [dir...]}
    doe_queue.py stop    --root DIR [--tsp tsp]   stdin: {"dirs": [dir...]}
    doe_queue.py shutdown --root DIR [--tsp tsp]  stop every job of this root and the tsp server
    doe_queue.py facts                            CPU, memory and kernel of this host

The queue is task spooler with $TS_SOCKET set by the caller. Each job lives in <root>/<dir>/ with
config.json, job.json, results/ and scratch/; doe_job.py (next to this file) runs it and writes the
done marker .doe_done last. Enqueue is idempotent: a job whose label is in the queue or whose done
marker exists is skipped. Output is one JSON document on stdout. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import marshal
import os
import platform
import re
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
JOB_WRAPPER = os.path.join(HERE, "doe_job.py")
STARTED_MARKER = ".doe_started"
DONE_MARKER = ".doe_done"
# `tsp -l` rows: ID State Output E-Level Times Command, the command prefixed with "[label]".
TSP_ROW = re.compile(r"^(\d+)\s+(queued|running|finished|skipped|allrunning)\s.*?\[([^\]]*)\]")
TSP_ELEVEL = re.compile(r"^\d+\s+finished\s+\S+\s+(-?\d+)\s")


class QueueError(Exception):
    pass


def write_atomic(path: str, data: str | bytes) -> None:
    """Readers see the old or the new file, never a part. No fsync: after a machine crash the queue
    itself is gone too, and the controller enqueues the job again."""
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as handle:
        handle.write(data.encode("utf-8") if isinstance(data, str) else data)
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


def tsp_entries(tsp: str) -> dict[str, dict]:
    """label -> {"id", "state", "exit_level"} of the queue's entries (the last entry wins)."""
    listing = subprocess.run([tsp, "-l"], capture_output=True, text=True, check=False)
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


def archive_attempt(job_dir: str, marker: dict) -> None:
    """Move a previous attempt aside so a retry starts clean (retry of a failed job)."""
    target = os.path.join(job_dir, f"attempt_{marker.get('attempt') or 1}")
    os.makedirs(target, exist_ok=True)
    for name in ("results", STARTED_MARKER, DONE_MARKER):
        source = os.path.join(job_dir, name)
        if os.path.lexists(source):
            os.replace(source, os.path.join(target, name))


def enqueue(root: str, tsp: str, request: dict) -> dict:
    jobs = request.get("jobs", [])
    queue = tsp_entries(tsp)
    enqueued, skipped = [], []
    for job in jobs:
        job_dir = job_path(root, job["dir"])
        marker = read_json(os.path.join(job_dir, DONE_MARKER))
        attempt = job.get("attempt") or 1
        if marker is not None and (marker.get("attempt") or 1) >= attempt:
            skipped.append(job["dir"])
            continue
        entry = queue.get(job["label"])
        if entry is not None and entry["state"] in ("queued", "running", "allrunning"):
            skipped.append(job["dir"])
            continue
        if marker is not None:
            archive_attempt(job_dir, marker)
        os.makedirs(os.path.join(job_dir, "results"), exist_ok=True)
        os.makedirs(os.path.join(job_dir, "scratch"), exist_ok=True)
        write_atomic(os.path.join(job_dir, "config.json"), job["config"])
        spec = {key: job.get(key) for key in ("label", "cmds", "timeout", "host", "host_type", "host_idx")}
        spec["attempt"] = attempt
        write_atomic(os.path.join(job_dir, "job.json"), json.dumps(spec, indent=1))  # for people
        write_atomic(os.path.join(job_dir, "job.marshal"), marshal.dumps(spec))  # for the wrapper: fast to load
        # argv list, no shell: the label and paths never meet a shell parser.
        submitted = subprocess.run([tsp, "-n", "-L", job["label"], sys.executable, "-S", JOB_WRAPPER, job_dir],
                                   capture_output=True, text=True, check=False)
        if submitted.returncode != 0:
            raise QueueError(f"{tsp} refused job {job['label']}: {submitted.stderr.strip()}")
        enqueued.append(job["dir"])
    result = {"enqueued": enqueued, "skipped": skipped}
    if request.get("wait_started"):
        result["started"] = wait_started(root, [job["dir"] for job in jobs],
                                         float(request.get("wait_timeout", 60)))
    return result


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


def stop_jobs(root: str, tsp: str, dirs: list[str], grace: float = 15.0) -> list[str]:
    """Stop the given jobs: running ones get SIGTERM (the wrapper then writes its marker),
    queued ones are removed from the queue. Returns the dirs that were stopped."""
    queue = None
    stopped, waiting = [], []
    for rel in dirs:
        job_dir = job_path(root, rel)
        if os.path.exists(os.path.join(job_dir, DONE_MARKER)):
            continue
        started = read_json(os.path.join(job_dir, STARTED_MARKER))
        if started is not None:
            try:
                os.kill(started["wrapper_pid"], signal.SIGTERM)
                waiting.append((rel, started))
            except ProcessLookupError:
                pass
            continue
        if queue is None:
            queue = tsp_entries(tsp)
        spec = read_json(os.path.join(job_dir, "job.json")) or {}
        entry = queue.get(spec.get("label", ""))
        if entry is not None and entry["state"] == "queued":
            subprocess.run([tsp, "-r", str(entry["id"])], capture_output=True, check=False)
            stopped.append(rel)
    deadline = time.monotonic() + grace
    for rel, started in waiting:
        marker = os.path.join(job_path(root, rel), DONE_MARKER)
        while not os.path.exists(marker) and time.monotonic() < deadline:
            time.sleep(0.02)
        if not os.path.exists(marker):
            # The wrapper hangs: kill what it started; status then reports the job as lost.
            for pgid in [started["main_pgid"], *started.get("background_pgids", [])]:
                try:
                    os.killpg(pgid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            try:
                os.kill(started["wrapper_pid"], signal.SIGKILL)
            except ProcessLookupError:
                pass
        stopped.append(rel)
    return stopped


def status(root: str, tsp: str, request: dict) -> dict:
    stopped = stop_jobs(root, tsp, request.get("stop", [])) if request.get("stop") else []
    queue = None
    states, fetch = {}, []
    for job in request.get("jobs", []):
        job_dir = job_path(root, job["dir"])
        marker = read_json(os.path.join(job_dir, DONE_MARKER))
        if marker is not None and (marker.get("attempt") or 1) >= (job.get("attempt") or 1):
            states[job["dir"]] = {"state": "done", **marker}
            fetch.append(f"{job['dir']}/results/")
            continue
        if queue is None:
            queue = tsp_entries(tsp)
        entry = queue.get(job["label"])
        if entry is None:
            states[job["dir"]] = {"state": "unknown"}
        elif entry["state"] in ("queued", "running", "allrunning"):
            started = os.path.exists(os.path.join(job_dir, STARTED_MARKER))
            states[job["dir"]] = {"state": "running" if started else "queued"}
        else:
            # tsp finished it but the wrapper left no marker: it was killed.
            states[job["dir"]] = {"state": "lost", "exit_code": entry["exit_level"]}
            if os.path.isdir(os.path.join(job_dir, "results")):
                fetch.append(f"{job['dir']}/results/")
    return {"jobs": states, "fetch": fetch, "stopped": stopped, "rsync_filters": rsync_filters(fetch)}


def rsync_filters(dirs: list[str]) -> list[str]:
    """rsync options that transfer exactly these dirs (and the parents they need), nothing else."""
    includes: dict[str, None] = {}
    for rel in dirs:
        parts = rel.strip("/").split("/")
        for depth in range(1, len(parts)):
            includes["/" + "/".join(parts[:depth]) + "/"] = None
        includes["/" + "/".join(parts) + "/***"] = None
    return [f"--include={pattern}" for pattern in includes] + ["--exclude=*"]


def shutdown(root: str, tsp: str) -> dict:
    """Stop every job under root that is still running, then the queue's server."""
    running = []
    for current, subdirs, files in os.walk(root):
        if STARTED_MARKER in files and DONE_MARKER not in files:
            running.append(os.path.relpath(current, root))
        subdirs[:] = [d for d in subdirs if d not in ("results", "scratch")]
    stopped = stop_jobs(root, tsp, running) if running else []
    subprocess.run([tsp, "-C"], capture_output=True, check=False)
    subprocess.run([tsp, "-K"], capture_output=True, check=False)
    return {"stopped": stopped}


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


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="doe_queue.py")
    parser.add_argument("action", choices=["enqueue", "status", "stop", "shutdown", "facts"])
    parser.add_argument("--root", help="folder that holds this host's job dirs")
    parser.add_argument("--tsp", default="tsp", help="task spooler binary (Debian: tsp, elsewhere: ts)")
    args = parser.parse_args(argv)
    try:
        if args.action == "facts":
            result = facts()
        else:
            if not args.root:
                raise QueueError("--root is required")
            os.makedirs(args.root, exist_ok=True)
            if args.action == "shutdown":
                result = shutdown(args.root, args.tsp)
            else:
                raw = sys.stdin.read()
                request = json.loads(raw) if raw.strip() else {}
                if args.action == "enqueue":
                    result = enqueue(args.root, args.tsp, request)
                elif args.action == "status":
                    result = status(args.root, args.tsp, request)
                else:
                    result = {"stopped": stop_jobs(args.root, args.tsp, request.get("dirs", []))}
    except QueueError as error:
        sys.stderr.write(f"doe_queue: {error}\n")
        return 1
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
