"""`doe status` and the end-of-run summary, read from the durable state files.

Hosts are asked only when jobs are queued and no controller holds the suite (a running controller
polls them itself); that poll reads states and fetches nothing.
"""

from __future__ import annotations

import fcntl
import json
from pathlib import Path
from typing import Any

import yaml

from doe_cli.config import Project
from doe_cli.fileio import load_yaml
from doe_cli.run.state import FAILED, FINISHED, PENDING, QUEUED, ExperimentState, scheduler_states_file
from doe_cli.run.suite_id import resolve_suite_id
from etl.fileio import DOE_RECORD
from etl.layout import JobKey, job_dir, suite_folder, suite_runs

# The first failures of a suite are shown with their folder and the end of their stderr: usually they
# fail alike, and a screen of them would bury the summary.
DETAILED_FAILURES = 3
# Queued jobs listed one by one with a cluster's state and reason; the rest are counted.
MAX_LISTED = 20
STDERR_TAIL_LINES = 5
STDERR_LINE_CHARS = 200


def suite_experiments(suite_dir: Path) -> list[str]:
    design = suite_dir / "suite_design.yml"
    try:
        content = load_yaml(design.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        content = {}
    names = [name for name in content if isinstance(name, str) and not name.startswith("$")]
    return names or sorted(p.parent.name for p in suite_dir.glob("*/state.yml"))


def load_states(suite: str, suite_id: int, suite_dir: Path) -> dict[str, ExperimentState]:
    states = {}
    for name in suite_experiments(suite_dir):
        path = suite_dir / name / "state.yml"
        if path.exists():
            states[name] = ExperimentState.load(path, suite, suite_id, name)
    return states


def failed_jobs(suite_dir: Path, states: dict[str, ExperimentState]) -> dict[str, list[dict]]:
    """Per experiment with failures: each failed job's run, rep and exit code; the suite's first few
    also with the fetched folder of the host it failed on and the last lines of its stderr.log."""
    found: dict[str, list[dict]] = {}
    detailed = 0
    for name, state in states.items():
        for key in state.with_status(FAILED):
            job: dict[str, Any] = {"run": key[0], "rep": key[1], "exit_code": state.jobs[key].exit_code}
            if detailed < DETAILED_FAILURES:
                detailed += 1
                folder = _failed_host_folder(suite_dir, name, key)
                job["folder"] = str(folder)
                job["stderr_tail"] = _tail(folder / "stderr.log")
            found.setdefault(name, []).append(job)
    return found


def _failed_host_folder(suite_dir: Path, exp: str, key: JobKey) -> Path:
    """The fetched folder of the (first) host whose record says the job failed there; the job's folder
    if no host's results arrived."""
    rep_dir = suite_dir / job_dir(exp, key)
    hosts = sorted(record.parent for record in rep_dir.glob(f"*/host_*/{DOE_RECORD}"))
    for host in hosts:
        try:
            record = load_yaml((host / DOE_RECORD).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(record, dict) and record.get("status") != "finished":
            return host
    return hosts[0] if hosts else rep_dir


def _tail(path: Path) -> list[str] | None:
    """The last non-blank lines of a log, each cut to a readable length; None if it was not fetched."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    lines = [line.rstrip() for line in text.splitlines() if line.strip()][-STDERR_TAIL_LINES:]
    return [line if len(line) <= STDERR_LINE_CHARS else line[:STDERR_LINE_CHARS - 3] + "..." for line in lines]


def print_failed_job(job: dict[str, Any], console, indent: str, note: str = "") -> None:
    console.print(f"{indent}failed: run {job['run']} rep {job['rep']} exit code {job['exit_code']}{note}",
                  markup=False)
    if "folder" not in job:
        return
    console.print(f"{indent}  folder: {job['folder']}", markup=False)
    tail = job["stderr_tail"]
    if tail is None:
        console.print(f"{indent}  stderr.log: not fetched", markup=False)
    elif not tail:
        console.print(f"{indent}  stderr.log: empty", markup=False)
    else:
        console.print(f"{indent}  stderr.log ends:", markup=False)
        for line in tail:
            console.print(f"{indent}    {line}", markup=False)


def controller_running(suite_dir: Path) -> bool:
    lock = suite_dir / ".doe" / "lock"
    if not lock.exists():
        return False
    with open(lock) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


def host_job_counts(suite_dir: Path, states: dict[str, ExperimentState], project: Project) -> dict[str, dict]:
    """Per experiment: how many queued jobs the hosts report as done / running / queued."""
    from doe_cli.clouds.inventory import read_suite_inventory_hosts, stored_cloud, suite_inventory_file
    from doe_cli.run.ansible_env import STATUS_TASK, suite_adapter
    from doe_cli.run.poll_reply import encode_request, helper_report

    cloud = stored_cloud(suite_dir)
    if cloud is None:
        return {}
    inventory = suite_inventory_file(suite_dir, cloud)
    hosts = read_suite_inventory_hosts(suite_dir, cloud)
    requests: dict[str, dict] = {}
    queued_on: dict[str, int] = {}
    for host, host_vars in hosts.items():
        state = states.get(str(host_vars.get("doe_exp")))
        if state is None:
            continue
        queued_keys = state.with_status(QUEUED)
        if queued_keys:
            # The queue's counts only (no journal read), changing nothing on the host: a running controller
            # owns its jobs, records and fetch list. A cluster's queue is also asked for the state of each
            # queued job (its scheduler knows why a job waits), up to a screenful of them.
            request: dict[str, Any] = {"exp": state.exp, "read_only": True}
            if host_vars.get("job_queue_scheduler") == "slurm":
                request["jobs"] = [[key[0], key[1], state.jobs[key].attempt] for key in queued_keys[:MAX_LISTED]]
            requests[host] = {"request": encode_request(request)}
            queued_on[host] = len(queued_keys)
    if not requests:
        return {}
    result = suite_adapter(project, suite_dir).run("poll.yml", inventory=inventory, limit=",".join(requests),
                         extravars={"job_queue_requests": requests, "job_queue_staging_dir": ""})
    report: dict[str, dict] = {}
    for host, res in result.task_results(STATUS_TASK).items():
        exp = str(hosts[host].get("doe_exp"))
        counts = report.setdefault(exp, {"done": 0, "running": 0, "queued": 0})
        reply = helper_report(res) or {}
        for rel, info in (reply.get("jobs") or {}).items():
            if isinstance(info, dict) and isinstance(info.get("scheduler"), list):
                counts.setdefault("scheduler", {})[rel.split("/", 1)[-1]] = info["scheduler"][:2]
        queue = reply.get("queue")
        if queue is None or host not in queued_on:
            continue
        running, waiting = int(queue.get("running") or 0), int(queue.get("queued") or 0)
        # A job the controller queued that the host's queue no longer holds has ended (or was lost).
        counts["done"] += max(0, queued_on[host] - running - waiting)
        counts["running"] += running
        counts["queued"] += waiting
    return report


def open_suite_run(project: Project, suite: str, id_option: str) -> tuple[int, Path, dict[str, ExperimentState]]:
    """An existing run of a suite (`last` or an id): its id, folder and job states."""
    suite_id, _ = resolve_suite_id(project.results_dir, suite, id_option, allow_new=False)
    suite_dir = suite_folder(project.results_dir, suite, suite_id)
    return suite_id, suite_dir, load_states(suite, suite_id, suite_dir)


def suite_status(project: Project, suite: str, id_option: str, *, ask_hosts: bool = True) -> dict[str, Any]:
    suite_id, suite_dir, states = open_suite_run(project, suite, id_option)
    controller = controller_running(suite_dir)
    queued = any(state.with_status(QUEUED) for state in states.values())
    on_hosts = host_job_counts(suite_dir, states, project) if ask_hosts and queued and not controller else {}
    polled = _polled_scheduler_states(suite_dir) if controller else {}
    failed = failed_jobs(suite_dir, states)
    experiments = {}
    for name, state in states.items():
        counts = state.counts()
        experiments[name] = {
            "total": len(state.jobs), "finished": counts[FINISHED], "failed": counts[FAILED],
            "queued": counts[QUEUED], "pending": counts[PENDING], "failed_jobs": failed.get(name, []),
        }
        if name in on_hosts:
            experiments[name]["on_hosts"] = on_hosts[name]
        scheduler = on_hosts.get(name, {}).pop("scheduler", None) if on_hosts else polled.get(name)
        if scheduler:
            experiments[name]["scheduler"] = scheduler
        adaptive = adaptive_summary(suite_dir / name)
        if adaptive is not None:
            experiments[name]["adaptive"] = adaptive
    error_log = suite_dir / "ETL_ERROR.log"
    etl_results = suite_dir / "etl_results"
    return {
        "suite": suite, "suite_id": suite_id, "folder": str(suite_dir), "controller_running": controller,
        "complete": all(s.done() for s in states.values()) and bool(states),
        "experiments": experiments,
        "etl": {"error": error_log.read_text(errors="replace").strip() if error_log.exists() else None,
                "pipelines": sorted(p.name for p in etl_results.iterdir()
                                    if p.is_dir() and not p.name.startswith("."))  # .cache is no pipeline
                if etl_results.is_dir() else []},
    }


def print_status(report: dict[str, Any], console) -> None:
    state = "complete" if report["complete"] else "running" if report["controller_running"] else "incomplete"
    console.print(f"suite={report['suite']} suite_id={report['suite_id']} ({state})", markup=False)
    for name, exp in report["experiments"].items():
        done = exp["finished"] + exp["failed"]
        line = (f"{name}: {done}/{exp['total']} jobs, {exp['failed']} failed, {exp['queued']} queued, "
                f"{exp['pending']} pending")
        if "on_hosts" in exp:
            hosts = exp["on_hosts"]
            line += (f" (on hosts: {hosts['done']} done awaiting fetch, {hosts['running']} running, "
                     f"{hosts['queued']} waiting)")
        console.print(line, markup=False)
        _print_scheduler_states(exp.get("scheduler") or {}, console)
        if "adaptive" in exp:
            print_adaptive(exp["adaptive"], console, "  ")
        for job in exp["failed_jobs"]:
            print_failed_job(job, console, "  ")
    if report["etl"]["error"]:
        console.print(f"warning: ETL failed, see {report['folder']}/ETL_ERROR.log", markup=False)
        _print_etl_errors(report["etl"]["error"], console, "  ")
    elif report["etl"]["pipelines"]:
        console.print(f"etl: {', '.join(report['etl']['pipelines'])}", markup=False)


def _polled_scheduler_states(suite_dir: Path) -> dict[str, dict[str, list]]:
    try:
        found = json.loads(scheduler_states_file(suite_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _print_scheduler_states(jobs: dict[str, list], console) -> None:
    """A cluster's word on each queued job: `run_0/rep_1: PENDING (Resources)`."""
    if not jobs:
        return
    counts: dict[str, int] = {}
    for state, _ in jobs.values():
        counts[state] = counts.get(state, 0) + 1
    console.print("  Slurm: " + ", ".join(f"{n} {state}" for state, n in sorted(counts.items())), markup=False)
    for index, (job, (state, reason)) in enumerate(sorted(jobs.items())):
        if index == MAX_LISTED:
            console.print(f"    ... and {len(jobs) - MAX_LISTED} more", markup=False)
            break
        why = f" ({reason})" if reason and reason != "None" else ""
        console.print(f"    {job}: {state}{why}", markup=False)


def adaptive_summary(exp_dir: Path) -> dict[str, Any] | None:
    """An adaptive experiment's adaptive.json: its metric and, per run, n, estimate, CI and status."""
    try:
        content = json.loads((exp_dir / "adaptive.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return content if isinstance(content, dict) and isinstance(content.get("runs"), dict) else None


def format_number(value: Any) -> str:
    return "-" if not isinstance(value, int | float) else f"{value:.6g}"


def adaptive_heading(adaptive: dict[str, Any]) -> str:
    """What an adaptive experiment measures and aims at, as status and the page say it."""
    return (f"{adaptive.get('statistic')} of {adaptive.get('metric')}, target CI "
            f"+-{float(adaptive.get('target_ci') or 0) * 100:g}% at {adaptive.get('confidence')}, "
            f"max {adaptive.get('max')}")


def print_adaptive(adaptive: dict[str, Any], console, indent: str) -> None:
    console.print(f"{indent}adaptive repetitions: {adaptive_heading(adaptive)}", markup=False)
    for run, entry in sorted(adaptive["runs"].items(), key=lambda item: int(item[0])):
        interval = f"[{format_number(entry.get('ci_low'))}, {format_number(entry.get('ci_high'))}]"
        line = (f"{indent}  run {run}: n={entry.get('n')} estimate {format_number(entry.get('estimate'))} "
                f"CI {interval} {entry.get('status')}")
        console.print(line + (f" ({entry['error']})" if entry.get("error") else ""), markup=False)


def print_summary(summary, console) -> None:
    state = "finished" if summary.complete else "unfinished"
    console.print(f"suite={summary.suite} suite_id={summary.suite_id} {state}: {summary.suite_dir}", markup=False)
    for name, counts in summary.counts.items():
        total = sum(counts.values())
        console.print(f"  {name}: {counts[FINISHED] + counts[FAILED]}/{total} jobs, {counts[FAILED]} failed",
                      markup=False)
        for job in summary.failed_jobs.get(name, []):
            print_failed_job(job, console, "    ", f" (retry with --id {summary.suite_id} --retry-failed)")
    if summary.etl_error:
        console.print(f"  warning: ETL failed, see {summary.suite_dir}/ETL_ERROR.log", markup=False)
        log = summary.suite_dir / "ETL_ERROR.log"
        _print_etl_errors(log.read_text(errors="replace") if log.exists() else "", console, "    ")


def _print_etl_errors(log_text: str, console, indent: str) -> None:
    """ETL_ERROR.log holds one line per failing pipeline: each is shown, not just the log's name."""
    for line in log_text.splitlines():
        if line.strip():
            console.print(f"{indent}{line}", markup=False)


def list_runs(project: Project, limit: int = 20) -> list[dict[str, Any]]:
    runs = []
    for suite, suite_id, folder in suite_runs(project.results_dir)[-limit:]:
        totals = {"total": 0, "finished": 0, "failed": 0}
        for state in load_states(suite, suite_id, folder).values():
            counts = state.counts()
            totals["total"] += len(state.jobs)
            totals["finished"] += counts[FINISHED] + counts[FAILED]
            totals["failed"] += counts[FAILED]
        runs.append({"suite": suite, "suite_id": suite_id, **totals})
    return runs
