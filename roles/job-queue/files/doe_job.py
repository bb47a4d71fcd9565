#!/usr/bin/env python3
"""Job wrapper: task spooler runs this once per job; it runs the job's commands in the job dir.

Usage: python3 -S -I doe_job.py <job_dir>

<job_dir>/job.marshal (written by doe_queue.py with the same interpreter) names the commands
({"main": ..., "<background>": ...}), an optional timeout in seconds and who we are. Background
commands start first, each in its own session/process group; then main runs with `sh -c`; when main
ends (or times out, or this wrapper gets SIGTERM) the background groups are terminated. The wrapper
writes results/stdout.log and results/stderr.log (separate streams), results/runtime_info.yaml and,
last and atomically, the done marker .doe_done (JSON) that the poll trusts.

It runs once per job, so it avoids slow imports: `signal` pulls in enum (~14 ms), `json` pulls in
re, `subprocess` pulls in threading, `os` costs ~1.5 ms; _signal, marshal and the built-in posix
module (what os wraps, already loaded at start-up) do the same work.
"""

import _signal as signal
import marshal
import posix
import resource
import sys
import time

STARTED_MARKER = ".doe_started"
DONE_MARKER = ".doe_done"
KILL_GRACE_SECONDS = 5.0


class Stop(Exception):
    """The controller stops this job (SIGTERM/SIGINT/SIGHUP)."""


class Timeout(Exception):
    """The job's time limit passed."""


def json_value(value) -> str:
    """JSON for None/bool/int/float/str; a JSON string is also a valid double-quoted YAML scalar."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(c if c >= " " else f"\\u{ord(c):04x}" for c in text) + '"'


def write_atomic(path: str, text: str, durable: bool = True) -> None:
    tmp = f"{path}.tmp.{posix.getpid()}"
    fd = posix.open(tmp, posix.O_WRONLY | posix.O_CREAT | posix.O_TRUNC, 0o644)
    try:
        posix.write(fd, text.encode("utf-8"))
        if durable:
            posix.fsync(fd)
    finally:
        posix.close(fd)
    posix.replace(tmp, path)


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int((ts % 1) * 1000):03d}Z"


def spawn(command: str, out_fd: int, err_fd: int) -> int:
    """`sh -c command` in its own session (so its whole process group can be signalled)."""
    actions = [(posix.POSIX_SPAWN_OPEN, 0, "/dev/null", posix.O_RDONLY, 0),
               (posix.POSIX_SPAWN_DUP2, out_fd, 1), (posix.POSIX_SPAWN_DUP2, err_fd, 2)]
    return posix.posix_spawn("/bin/sh", ["sh", "-c", command], posix.environ, file_actions=actions, setsid=True)


def make_dir(path: str) -> None:
    try:
        posix.mkdir(path, 0o755)
    except FileExistsError:
        pass


def reap(pid: int, timeout: float):
    """Exit status of pid, or None if it is still running after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        done, status = posix.waitpid(pid, posix.WNOHANG)
        if done:
            return status
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.01)


def terminate_group(pid: int, status, grace: float = KILL_GRACE_SECONDS):
    """SIGTERM the process group of pid, SIGKILL it after the grace period; returns pid's status."""
    try:
        posix.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        pass
    if status is None:
        status = reap(pid, grace)
        if status is None:
            try:
                posix.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            status = posix.waitpid(pid, 0)[1]
    return status


def main(job_dir: str) -> int:
    posix.chdir(job_dir)
    with open("job.marshal", "rb") as handle:
        job = marshal.load(handle)
    make_dir("results")
    make_dir("scratch")
    out_fd = posix.open("results/stdout.log", posix.O_WRONLY | posix.O_CREAT | posix.O_TRUNC, 0o644)
    err_fd = posix.open("results/stderr.log", posix.O_WRONLY | posix.O_CREAT | posix.O_TRUNC, 0o644)

    def on_stop(_signum, _frame):
        raise Stop()

    def on_alarm(_signum, _frame):
        raise Timeout()

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, on_stop)
    signal.signal(signal.SIGALRM, on_alarm)

    cmds = job["cmds"]
    background: list[int] = []
    main_pid = None
    main_status = None
    stopped = timed_out = False
    start = time.time()
    try:
        for name, command in cmds.items():
            if name != "main":
                background.append(spawn(command, out_fd, err_fd))
        main_pid = spawn(cmds["main"], out_fd, err_fd)
        pgids = ", ".join(map(str, background))
        write_atomic(STARTED_MARKER, f'{{"wrapper_pid": {posix.getpid()}, "main_pgid": {main_pid}, '
                     f'"background_pgids": [{pgids}], "start_time": "{iso(start)}"}}', durable=False)
        if job.get("timeout"):
            signal.setitimer(signal.ITIMER_REAL, float(job["timeout"]))
        main_status = posix.waitpid(main_pid, 0)[1]
        signal.setitimer(signal.ITIMER_REAL, 0)
    except Timeout:
        timed_out = True
    except Stop:
        stopped = True
    # From here on no signal may interrupt writing the results.
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGALRM):
        signal.signal(signum, signal.SIG_IGN)
    signal.setitimer(signal.ITIMER_REAL, 0)
    if main_pid is not None:
        # Also catches what main left behind in its group (e.g. `server &` without wait).
        main_status = terminate_group(main_pid, main_status, grace=KILL_GRACE_SECONDS if main_status is None else 0)
    for pid in background:
        terminate_group(pid, None)
    end = time.time()
    posix.close(out_fd)
    posix.close(err_fd)

    if main_status is None:
        exit_code = 128 + signal.SIGTERM
    else:
        exit_code = posix.waitstatus_to_exitcode(main_status)
        exit_code = exit_code if exit_code >= 0 else 128 - exit_code  # shell convention for signals
    if timed_out:
        status = "timeout"
    elif exit_code == 0 or stopped:
        # A job stopped by the controller (a server whose clients finished) ended as designed.
        status = "finished"
    else:
        status = "failed"
    info = [
        ("start_time", iso(start)), ("end_time", iso(end)), ("wall_seconds", round(end - start, 6)),
        ("max_rss_kb", int(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)), ("exit_code", exit_code),
        ("status", status), ("host", job.get("host")), ("host_type", job.get("host_type")),
        ("host_idx", job.get("host_idx")), ("stopped_by_controller", stopped),
    ]
    write_atomic("results/runtime_info.yaml", "".join(f"{k}: {json_value(v)}\n" for k, v in info))
    marker = info + [("label", job.get("label")), ("attempt", job.get("attempt") or 1)]
    write_atomic(DONE_MARKER, "{" + ", ".join(f'"{k}": {json_value(v)}' for k, v in marker) + "}")
    return exit_code


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.stderr.write("usage: doe_job.py <job_dir>\n")
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
