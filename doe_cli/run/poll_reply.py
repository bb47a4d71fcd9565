"""The host helper's side of the wire: requests encoded for a command line, and its replies read.

Pure functions over plain data, so what a poll's answer means is tested without hosts or Ansible.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from doe_cli.run.state import QUEUED, JobRecord
from etl.layout import JobKey, parse_job_key


def encode_request(request: dict) -> str:
    """Requests reach the host helper as base64 of JSON: shell-safe on any command line."""
    return base64.b64encode(json.dumps(request, separators=(",", ":")).encode()).decode()


def helper_report(res: dict) -> dict | None:
    """The helper's `DOE-JSON:` line from a task result (raw over ssh may add other lines)."""
    for line in str(res.get("stdout") or "").splitlines():
        if line.startswith("DOE-JSON:"):
            return _json_or_none(line[len("DOE-JSON:"):])
    return None


def _json_or_none(text: Any) -> Any:
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


class EndedJob(NamedTuple):
    rel: str         # the job's folder as the host names it
    key: JobKey
    info: dict       # the host's record: state, status, exit_code, attempt
    done: bool       # finished on the host (its results to fetch); else lost


@dataclass(frozen=True)
class HostReply:
    """One host's poll report, as far as it concerns the jobs still outstanding there."""

    ended: list[EndedJob] = field(default_factory=list)
    unknown: list[JobKey] = field(default_factory=list)   # neither queued nor finished on the host
    waiting: list[JobKey] = field(default_factory=list)   # queued or running there
    running: list[JobKey] = field(default_factory=list)
    scheduler: dict[JobKey, list] = field(default_factory=dict)  # a cluster's [state, reason] of waiting jobs
    queue_running: int = 0                                 # the queue's own count of running jobs
    skipped: list[dict] = field(default_factory=list)     # files the fetch left out, with why
    shut_down: bool = False                                # the host's last jobs are done: its queue is down
    idle: bool = False
    more: bool = False                                     # the journal holds more than this report
    cursor: int = 0


def parse_host_reply(report: dict, jobs: Mapping[JobKey, JobRecord], outstanding: set[JobKey]) -> HostReply:
    """The jobs of a report that are queued here and outstanding on this host, sorted by what became of
    them; a finished job of an earlier attempt (its marker left over) is no news."""
    reply = HostReply(queue_running=int((report.get("queue") or {}).get("running") or 0),
                      skipped=list(report.get("skipped") or []), shut_down="shut_down" in report,
                      idle=bool(report.get("idle")), more=bool(report.get("more")),
                      cursor=int(report.get("cursor") or 0))
    for rel, info in (report.get("jobs") or {}).items():
        key = parse_job_key(rel)
        record = jobs.get(key)
        if record is None or record.status != QUEUED or key not in outstanding:
            continue
        state = info.get("state")
        if state in ("done", "lost"):
            if state == "done" and int(info.get("attempt") or 1) < record.attempt:
                continue
            reply.ended.append(EndedJob(rel, key, info, done=state == "done"))
        elif state == "unknown":
            reply.unknown.append(key)
        else:
            reply.waiting.append(key)
            if state == "running":
                reply.running.append(key)
            if isinstance(info.get("scheduler"), list):
                reply.scheduler[key] = list(info["scheduler"][:2])
    return reply
