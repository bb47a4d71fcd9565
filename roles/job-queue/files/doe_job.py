#!/usr/bin/env python3
"""Job wrapper: task spooler runs this once per job; it runs the job's commands in the job dir.

Usage: python3 -S -I doe_job.py <job_dir>

<job_dir>/job.spec (written by doe_queue.py) holds NUL-terminated fields: "doe-job-1", the timeout in
seconds ("" for none), the host's lines of doe's record, the host's members of the done marker, the
marker's last members (label, attempt), the main command, then the background commands. Background
commands start first, each in its own session/process group; then main runs with `sh -c`; when main
ends (or times out, or this wrapper gets SIGTERM) the background groups are terminated. The wrapper
writes results/stdout.log and results/stderr.log (separate streams), its record
results/.doe_runtime_info.yaml (hidden: a job's own runtime_info.yaml is never touched) and, last and
atomically, the done marker .doe_done (JSON) that the poll trusts; then it appends the job dir to its
experiment's journal (../../.doe_journal), from which the poll learns what finished.

doe_job.c is the same wrapper in C, which doe_queue.py builds where a C compiler exists (a Python
start costs 13-15 ms per job); the two write the same files, and the tests run both.
This one runs once per job too, so it avoids slow imports: `signal` pulls in enum (~14 ms), `json` pulls
in re, `subprocess` pulls in threading, `os` costs ~1.5 ms; _signal and the built-in posix module (what
os wraps, already loaded at start-up) do the same work.
"""

import _signal as signal
import posix
import resource
import sys
import time

SPEC_TAG = "doe-job-1"
SPEC_FIXED_FIELDS = 6
STARTED_MARKER = ".doe_started"
DONE_MARKER = ".doe_done"
# The experiment's journal, two folders up: the job dir is appended after its marker (doe_job.c says why).
JOURNAL = "../../.doe_journal"
KILL_GRACE_SECONDS = 5.0


class Stop(Exception):
    """The controller stops this job (SIGTERM/SIGINT/SIGHUP)."""


class Timeout(Exception):
    """The job's time limit passed."""


def seconds_text(value: float) -> str:
    """At most six decimals, no trailing zeros (1.5, 0.001234, 3.0): always a YAML float."""
    text = f"{value:.6f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


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
    # Python ignores SIGPIPE and SIGXFSZ; a job gets the defaults (`yes | head` must end quietly).
    return posix.posix_spawn("/bin/sh", ["sh", "-c", command], posix.environ, file_actions=actions, setsid=True,
                             setsigdef=(signal.SIGPIPE, signal.SIGXFSZ))


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
    with open("job.spec", "rb") as handle:
        fields = handle.read().decode("utf-8").split("\0")
    fields.pop()  # every field ends with NUL
    if len(fields) < SPEC_FIXED_FIELDS or fields[0] != SPEC_TAG:
        sys.stderr.write(f"doe_job: job.spec in {job_dir} is not a {SPEC_TAG} spec\n")
        return 2
    timeout = float(fields[1]) if fields[1] else 0.0
    host_yaml, host_json, tail_json = fields[2], fields[3], fields[4]
    commands = fields[SPEC_FIXED_FIELDS:] + [fields[5]]  # background first, main last
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

    background: list[int] = []
    main_pid = None
    main_status = None
    stopped = timed_out = False
    start = time.time()
    try:
        for command in commands[:-1]:
            background.append(spawn(command, out_fd, err_fd))
        main_pid = spawn(commands[-1], out_fd, err_fd)
        pgids = ", ".join(map(str, background))
        write_atomic(STARTED_MARKER, f'{{"wrapper_pid": {posix.getpid()}, "main_pgid": {main_pid}, '
                     f'"background_pgids": [{pgids}], "start_time": "{iso(start)}"}}', durable=False)
        if timeout > 0:
            signal.setitimer(signal.ITIMER_REAL, timeout)
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
    rss = int(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    start_text, end_text, wall = iso(start), iso(end), seconds_text(end - start)
    stopped_text = "true" if stopped else "false"
    write_atomic("results/.doe_runtime_info.yaml",
                 f'start_time: "{start_text}"\nend_time: "{end_text}"\nwall_seconds: {wall}\nmax_rss_kb: {rss}\n'
                 f'exit_code: {exit_code}\nstatus: "{status}"\n{host_yaml}stopped_by_controller: {stopped_text}\n')
    write_atomic(DONE_MARKER,
                 f'{{"start_time": "{start_text}", "end_time": "{end_text}", "wall_seconds": {wall}, '
                 f'"max_rss_kb": {rss}, "exit_code": {exit_code}, "status": "{status}", {host_json}, '
                 f'"stopped_by_controller": {stopped_text}, {tail_json}}}')
    append_journal(job_dir)
    return exit_code


def append_journal(job_dir: str) -> None:
    try:
        fd = posix.open(JOURNAL, posix.O_WRONLY | posix.O_CREAT | posix.O_APPEND, 0o644)
    except OSError:
        return
    try:
        posix.write(fd, f"{job_dir}\n".encode("utf-8", "surrogateescape"))
    except OSError:
        pass
    finally:
        posix.close(fd)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.stderr.write("usage: doe_job.py <job_dir>\n")
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
