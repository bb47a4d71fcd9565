"""Notifications when a suite ends or breaks: `notify:` in group_vars/all (or `--notify`), a list of
targets, each `{webhook: URL}` (a JSON POST; the body's `text` suits Slack) or `{command: "..."}` (run
by the shell with DOE_EVENT, DOE_SUITE, DOE_SUITE_ID and DOE_SUMMARY in its environment).

Every event is handed to a detached sender process (`python -m doe_cli.notify`, the event on its
stdin): it retries a failing target with back-off and writes what happened to `.doe/notify.log` of
the suite, while the suite goes on or doe exits: a dead or slow target never stops or slows a run.
Webhook URLs carry secrets (a Slack hook's path is its password): they never appear in a log, in an
error or on the status page; a log names a target by its host only. A failing target is tried
ATTEMPTS times, the first retry after $DOE_NOTIFY_FIRST_DELAY seconds (default 1), each later one after
twice the wait before.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from doe_cli.errors import UserError

EVENTS = ("finished", "failed", "etl_error", "host_lost", "budget_80")
ONCE = {"failed", "budget_80"}  # a suite's first failed job, not one message per job
LOG = "notify.log"
ATTEMPTS = 4
FIRST_DELAY_SECONDS = 1.0
TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Target:
    webhook: str | None = None
    command: str | None = None

    def label(self) -> str:
        """How logs name the target: a webhook by scheme and host only, never its path or query."""
        if self.webhook is not None:
            parts = urlsplit(self.webhook)
            return f"webhook {parts.scheme}://{parts.hostname or '?'}{':' + str(parts.port) if parts.port else ''}/..."
        return "command"


def parse_targets(value: Any, where: str) -> list[Target]:
    """group_vars' `notify:` (None: none). `where` names the file for errors."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise UserError("expected a list of {webhook: URL} or {command: ...}", file=where, path="notify")
    targets = []
    for index, item in enumerate(value):
        path = f"notify[{index}]"
        if not isinstance(item, dict) or len(item) != 1 or next(iter(item)) not in ("webhook", "command"):
            raise UserError("expected {webhook: URL} or {command: \"...\"}", file=where, path=path)
        kind, text = next(iter(item.items()))
        if not isinstance(text, str) or not text.strip():
            raise UserError(f"expected a non-empty {kind}", file=where, path=f"{path}.{kind}")
        if kind == "webhook" and urlsplit(text).scheme not in ("http", "https"):
            raise UserError("expected an http:// or https:// URL", file=where, path=f"{path}.webhook")
        targets.append(Target(webhook=text) if kind == "webhook" else Target(command=text))
    return targets


def parse_option(values: list[str]) -> list[Target]:
    """`--notify URL|COMMAND` (repeatable; `none`: no notifications)."""
    if values == ["none"]:
        return []
    return [Target(webhook=v) if urlsplit(v).scheme in ("http", "https") else Target(command=v) for v in values]


@dataclass
class Notifier:
    targets: list[Target]
    suite: str
    suite_id: int | str
    suite_dir: Path
    sent: set[str] = field(default_factory=set)

    def send(self, event: str, counts: dict[str, int], message: str) -> None:
        """Hand the event to a detached sender; returns at once. Events in ONCE go out once per run."""
        if not self.targets or (event in ONCE and event in self.sent):
            return
        self.sent.add(event)
        payload = {
            "event": event, "suite": self.suite, "id": str(self.suite_id), "counts": counts, "message": message,
            "link": (self.suite_dir / "status.html").resolve().as_uri(),
            "text": f"doe {self.suite}_{self.suite_id}: {message}",
        }
        request = {"payload": payload, "targets": [vars(target) for target in self.targets],
                   "log": str(self.suite_dir / ".doe" / LOG)}
        (self.suite_dir / ".doe").mkdir(parents=True, exist_ok=True)
        sender = subprocess.Popen([sys.executable, "-m", "doe_cli.notify"], stdin=subprocess.PIPE,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                                  close_fds=True)
        assert sender.stdin is not None
        sender.stdin.write(json.dumps(request).encode())
        sender.stdin.close()


# --- the sender process ----------------------------------------------------------------------------------
def deliver(request: dict[str, Any]) -> None:
    payload = request["payload"]
    log_path = Path(request["log"])
    for fields in request["targets"]:
        target = Target(**fields)
        delay, outcome = float(os.environ.get("DOE_NOTIFY_FIRST_DELAY") or FIRST_DELAY_SECONDS), ""
        for attempt in range(1, ATTEMPTS + 1):
            outcome = _post(target.webhook, payload) if target.webhook else _run(target.command or "", payload)
            if not outcome:
                _log(log_path, f"{payload['event']}: sent to {target.label()}")
                break
            if attempt < ATTEMPTS:
                time.sleep(delay)
                delay *= 2
        else:
            _log(log_path, f"{payload['event']}: not sent to {target.label()} after {ATTEMPTS} attempts: {outcome}")


def _post(url: str, payload: dict[str, Any]) -> str:
    """'' when the target took it, else why not (never with the URL)."""
    import urllib.error
    import urllib.request

    body = json.dumps(payload).encode()
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "doe"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 - http(s) only
            return "" if 200 <= response.status < 300 else f"HTTP {response.status}"
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code}"
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        return type(reason).__name__ if not isinstance(reason, str) else "connection failed"


def _run(command: str, payload: dict[str, Any]) -> str:
    env = {**os.environ, "DOE_EVENT": payload["event"], "DOE_SUITE": payload["suite"],
           "DOE_SUITE_ID": payload["id"], "DOE_SUMMARY": payload["message"]}
    try:
        done = subprocess.run(command, shell=True, env=env, capture_output=True, timeout=60, check=False)  # noqa: S602 - the user's own command from group_vars
    except subprocess.TimeoutExpired:
        return "the command did not end within 60 s"
    return "" if done.returncode == 0 else f"the command exited {done.returncode}"


def _log(path: Path, line: str) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(f"{stamp} {line}\n")


if __name__ == "__main__":
    deliver(json.loads(sys.stdin.read()))
