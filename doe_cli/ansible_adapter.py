"""The one place that calls Ansible: playbooks run through ansible-runner.

Success is read from the runner's status, rc and per-host stats, and task results from its events;
stdout is never parsed. Playbooks off the hot path (AWS preflight, provisioning, cleanup) hand their
results to Python as data: `ansible.builtin.set_stats` (run-wide, `per_host: false`), read here from the
runner's final stats event into PlaybookResult.data. The keys are named where Python reads them and
checked against the YAML by tests/unit/test_ansible_contract.py. Every call gets a fresh private data dir (runner reloads env files from an
old one, so stale values would win), kept under the caller's work dir for post-mortems.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from doe_cli.config import ANSIBLE_CFG, COLLECTIONS_DIR, PLAYBOOKS_DIR, TOOL_ROOT

EventHandler = Callable[[dict[str, Any]], None]

# Host task results, and "error": an error that stopped the whole playbook.
_KEPT_EVENTS = {
    "runner_on_ok", "runner_on_failed", "runner_on_unreachable", "runner_on_skipped",
    "runner_item_on_ok", "runner_item_on_failed", "error",
}
_STAT_KEYS = ("ok", "changed", "failures", "dark", "skipped", "rescued", "ignored", "processed")
MAX_EVENT_RESULT_CHARS = 16 * 1024 * 1024
COMMAND_TAIL_LINES, COMMAND_TAIL_CHARS = 3, 300
CANCEL_CHECK_SECONDS = 0.1
# A failed command's output kept for a report of its own lines: a compiler's error takes about this many.
COMMAND_OUTPUT_LINES = 20
_SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSWORD|PASSWD|ACCESS_KEY|KEY_ID|CREDENTIAL", re.IGNORECASE)


@dataclass(frozen=True)
class HostFailure:
    host: str
    task: str
    message: str
    unreachable: bool = False
    role: str | None = None
    output: tuple[str, ...] = ()  # a failed command's last lines of stderr (else stdout), as printed
    reason: str = ""  # the message without the command's last lines
    # The task's whole result, for callers that read a module's own fields.
    result: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __str__(self) -> str:
        return self.describe()

    def describe(self, *, inline_output: bool = True) -> str:
        kind = "unreachable" if self.unreachable else "failed"
        of_role = f" of role {self.role}" if self.role else ""
        why = self.message if inline_output or not self.reason else self.reason
        return f"{self.host} {kind} in task '{self.task}'{of_role}: {why}"


@dataclass(frozen=True)
class PlaybookError:
    """An error that stopped the whole playbook rather than one host's task: e.g. an unknown module
    in a role, which Ansible resolves only when an include loads the role."""
    task: str
    message: str

    def __str__(self) -> str:
        # The task Ansible was at: the include that loaded the broken role, or (for an error in a play's
        # keywords) the last task before it; the origin in the message is exact.
        where = f" at task '{self.task}'" if self.task else ""
        return f"Ansible stopped{where}: {self.message}"


@dataclass
class PlaybookResult:
    playbook: str
    status: str
    rc: int
    stats: dict[str, dict[str, int]]
    events: list[dict[str, Any]] = field(default_factory=list)
    data_dir: Path | None = None
    # What the playbook reported with ansible.builtin.set_stats (run-wide data, not per host).
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "successful" and self.rc == 0

    def failures(self) -> list[HostFailure]:
        found = []
        for event in self.events:
            kind = event.get("event")
            if kind not in ("runner_on_failed", "runner_on_unreachable"):
                continue
            data = event.get("event_data", {})
            if kind == "runner_on_failed" and data.get("ignore_errors"):
                continue
            res = data.get("res") or {}
            found.append(HostFailure(host=data.get("host", "?"), task=data.get("task", "?"),
                                     message=_one_line(_reason(res)),
                                     unreachable=kind == "runner_on_unreachable", role=data.get("role"),
                                     output=_command_output(res), reason=_one_line(_reason(res, inline_output=False)),
                                     result=res))
        return found

    def command_output(self) -> str:
        """The first failed command's last lines of output, indented under a line naming its host, or "".
        Its one-line summary has the last few; a compiler error is readable only with its own lines."""
        failure = next((f for f in self.failures() if f.output), None)
        if failure is None:
            return ""
        lines = "\n".join(f"  {line}" if line else "" for line in failure.output)
        return f"last {len(failure.output)} line(s) of the command's output on {failure.host}:\n{lines}"

    def errors(self) -> list[PlaybookError]:
        found = []
        for event in self.events:
            if event.get("event") != "error":
                continue
            # An error event has no result: its text is Ansible's display of it, "[ERROR]: <why>",
            # then "Origin: <file>:<line>:<column>" and the source lines.
            lines = [line.strip() for line in str(event.get("stdout") or "").splitlines() if line.strip()]
            why = lines[0].removeprefix("[ERROR]:").strip() if lines else "error"
            origin = next((line.removeprefix("Origin:").strip() for line in lines if line.startswith("Origin:")), "")
            found.append(PlaybookError(task=event.get("event_data", {}).get("task") or "",
                                       message=_one_line(f"{why} ({origin})" if origin else why)))
        return found

    def unreachable_hosts(self) -> set[str]:
        return set(self.stats.get("dark", {}))

    def failed_hosts(self) -> set[str]:
        return set(self.stats.get("failures", {}))

    def changed_count(self) -> int:
        return sum(self.stats.get("changed", {}).values())

    def task_results(self, task_name: str) -> dict[str, dict[str, Any]]:
        """The `res` of a named task per host (the last one if the task ran more than once)."""
        results: dict[str, dict[str, Any]] = {}
        for event in self.events:
            if event.get("event") not in ("runner_on_ok", "runner_on_failed"):
                continue
            data = event.get("event_data", {})
            if data.get("task") == task_name:
                results[data.get("host", "?")] = data.get("res") or {}
        return results

    def summary(self, *, inline_output: bool = True) -> str:
        """One line. Without inline_output, failed commands go without their last lines (command_output()
        shows them on lines of their own)."""
        failures = self.failures()
        if failures:
            return "; ".join(f.describe(inline_output=inline_output) for f in failures[:5])
        errors = self.errors()
        if errors:
            return str(errors[0])
        return f"playbook {self.playbook} ended with status {self.status} (rc={self.rc})"


def _reason(res: dict[str, Any], *, inline_output: bool = True) -> str:
    """Why a task failed: its message; for a loop, the first failed item's; for a raw or command
    failure, also the command's last lines of output (its own words say why)."""
    message = str(res.get("msg") or res.get("stderr") or res.get("reason") or "failed")
    if message == "One or more items failed":
        failed = next((item for item in res.get("results") or [] if item.get("failed")), None)
        if failed is not None:
            message = f"{message}: {_reason(failed, inline_output=inline_output)}"
    # raw over ssh runs in a terminal, which merges stderr into stdout
    output = str(res.get("stderr") or "").strip() or str(res.get("stdout") or "").strip()
    if message == "non-zero return code" and output and inline_output:
        message = f"{message}: {_last_lines(output)}"
    return message


def _command_output(res: dict[str, Any]) -> tuple[str, ...]:
    """A failed command's last lines (blank ones inside kept: compilers separate their messages so)."""
    if res.get("msg") != "non-zero return code":
        failed = next((item for item in res.get("results") or [] if item.get("failed")), None)
        return _command_output(failed) if failed is not None else ()
    output = str(res.get("stderr") or "").strip("\n") or str(res.get("stdout") or "").strip("\n")
    lines = [line.rstrip()[:COMMAND_TAIL_CHARS] for line in output.splitlines()][-COMMAND_OUTPUT_LINES:]
    while lines and not lines[0].strip():
        lines.pop(0)
    return tuple(lines)


def _last_lines(output: str) -> str:
    """A failed command's last lines on one line, cut at the front: a build's final line ("make: ***
    Error 1") rarely says why, the lines before it do."""
    lines = [line.strip() for line in output.splitlines() if line.strip()][-COMMAND_TAIL_LINES:]
    tail = " / ".join(lines)
    return tail if len(tail) <= COMMAND_TAIL_CHARS else "..." + tail[-(COMMAND_TAIL_CHARS - 3):]


def _one_line(text: str, limit: int = 400) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def ansible_env(control_path_dir: Path | None = None) -> dict[str, str]:
    """Settings every playbook call gets, independent of the caller's cwd."""
    env = {
        "ANSIBLE_CONFIG": str(ANSIBLE_CFG),
        "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS_DIR),
        "ANSIBLE_ROLES_PATH": str(TOOL_ROOT / "roles"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        # ansible-runner drops a task result larger than this (700,000 characters by default) from its
        # event, silently; the host helper's reports are bounded well below it.
        "MAX_EVENT_RES": str(MAX_EVENT_RESULT_CHARS),
    }
    if control_path_dir is not None:
        env["ANSIBLE_SSH_CONTROL_PATH_DIR"] = str(control_path_dir)
    return env


def _redact_artifacts(data_dir: Path) -> None:
    """ansible-runner dumps the full environment into artifacts/*/command; keep secrets out of it."""
    for command_file in data_dir.glob("artifacts/*/command"):
        try:
            content = json.loads(command_file.read_text())
        except (OSError, ValueError):
            continue
        env = content.get("env") or {}
        content["env"] = {k: ("<redacted>" if _SECRET_NAME.search(k) else v) for k, v in env.items()}
        command_file.write_text(json.dumps(content))


@contextlib.contextmanager
def _sigint_sets(flag: threading.Event):
    """While a playbook runs, Ctrl-C asks ansible-runner to stop it instead of leaving it orphaned.

    A caller's own handler is still called, so it can answer the Ctrl-C at once; Python's default one
    is not (it would raise in the middle of ansible-runner)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigint(signum, frame) -> None:
        flag.set()
        if callable(previous) and previous is not signal.default_int_handler:
            previous(signum, frame)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class AnsibleAdapter:
    """Runs the tool's playbooks; one instance per suite run (or per command)."""

    def __init__(self, work_dir: Path, *, env: dict[str, str] | None = None,
                 roles_paths: Iterable[Path] = (), control_path_dir: Path | None = None,
                 config_dir: Path | None = None) -> None:
        self.work_dir = Path(work_dir)
        self.extra_env = dict(env or {})
        # plugins/vars/doe_group_vars.py loads this config dir's group_vars for every play; without it,
        # the one the environment names (as for a plain ansible-playbook).
        if config_dir is not None:
            self.extra_env["DOE_CONFIG_DIR"] = str(config_dir)
        self.roles_paths = [Path(p) for p in roles_paths]
        self.control_path_dir = control_path_dir
        self._counter = 0
        self._lock = threading.Lock()

    def _fresh_data_dir(self, label: str) -> Path:
        with self._lock:
            self._counter += 1
            name = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{self._counter:04d}-{label}"
        path = self.work_dir / name
        path.mkdir(parents=True, exist_ok=False)
        return path

    def _launcher(self) -> Path:
        """An executable that runs ansible-playbook with this Python through doe_cli.ansible_launcher."""
        path = self.work_dir / "ansible-playbook"
        script = f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -P -m doe_cli.ansible_launcher \"$@\"\n"
        if not path.is_file() or path.read_text() != script:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}")
            tmp.write_text(script)
            tmp.chmod(0o755)
            os.replace(tmp, path)
        return path

    def run(self, playbook: str, *, inventory: Path | str | None = None, extravars: dict[str, Any] | None = None,
            limit: str | None = None, on_event: EventHandler | None = None,
            cancel: Callable[[], bool] | None = None, timeout: int | None = None,
            keep_events: bool = True) -> PlaybookResult:
        """Run playbooks/<playbook> and return its result; raises nothing for a failed play."""
        import ansible_runner  # imported lazily: it costs ~0.1 s and most commands never need it

        # ansible-runner looks ansible-playbook up on this process's PATH; `doe` may run from a venv
        # that is not activated, and ansible-playbook is installed next to its Python.
        if shutil.which("ansible-playbook") is None:
            os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        playbook_path = PLAYBOOKS_DIR / playbook
        label = re.sub(r"[^A-Za-z0-9_-]", "_", Path(playbook).stem)
        data_dir = self._fresh_data_dir(label)
        env = ansible_env(self.control_path_dir)
        roles = [*(str(p) for p in self.roles_paths), env["ANSIBLE_ROLES_PATH"]]
        env["ANSIBLE_ROLES_PATH"] = os.pathsep.join(roles)
        env.update(self.extra_env)
        events: list[dict[str, Any]] = []
        stats: dict[str, dict[str, int]] = {}
        reported: dict[str, Any] = {}
        # Extra vars go in a file (`-e @file`): inline they are one argument, which Linux caps at 128 KiB.
        extravars_file = data_dir / "extravars.json"
        # ansible-runner asks the cancel callback each time it stops waiting for output, by default every
        # 5 s; a Ctrl-C should stop the playbook at once. It reads the setting only from this file.
        (data_dir / "env").mkdir()
        (data_dir / "env" / "settings").write_text(json.dumps({"pexpect_timeout": CANCEL_CHECK_SECONDS}))
        fd = os.open(extravars_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(extravars or {}, handle, separators=(",", ":"))

        def on_runner_event(event: dict[str, Any]) -> bool:
            kind = event.get("event")
            if keep_events and kind in _KEPT_EVENTS:
                events.append(event)
            elif kind == "playbook_on_stats":
                data = event.get("event_data", {})
                stats.update({key: data.get(key) or {} for key in _STAT_KEYS})
                # set_stats data of the run (ansible-runner's callback names it artifact_data)
                reported.update(data.get("artifact_data") or {})
            if on_event is not None:
                on_event(event)
            return False  # events stay in memory; writing one JSON file per event costs time

        def on_status(status: dict[str, Any], **_: Any) -> None:
            # Runner reports "running" after writing the `command` artifact, just before it starts the
            # playbook: redact then, so a controller killed mid-playbook leaves no secret behind.
            if status.get("status") == "running":
                _redact_artifacts(data_dir)

        interrupted = threading.Event()

        def should_cancel() -> bool:
            return interrupted.is_set() or (cancel is not None and cancel())

        kwargs: dict[str, Any] = {
            "private_data_dir": str(data_dir),
            # ansible-playbook through doe's launcher (no interpreter teardown at the end, 0.3 s per run).
            "binary": str(self._launcher()),
            "cmdline": shlex.quote(str(playbook_path)),
            "extravars": str(extravars_file),
            "envvars": env,
            "event_handler": on_runner_event,
            "status_handler": on_status,
            # Passing a callback also keeps ansible-runner from taking over SIGINT for the whole process.
            "cancel_callback": should_cancel,
            "quiet": True,
            "suppress_env_files": True,
            "rotate_artifacts": 1,
        }
        if inventory is not None:
            kwargs["inventory"] = str(inventory)
        if limit:
            kwargs["limit"] = limit
        if timeout:
            kwargs["timeout"] = timeout
        try:
            with _sigint_sets(interrupted):
                runner = ansible_runner.run(**kwargs)
        finally:
            _redact_artifacts(data_dir)
        if interrupted.is_set():
            # The playbook was stopped; the caller decides what an interrupted phase means.
            raise KeyboardInterrupt
        return PlaybookResult(playbook=playbook, status=runner.status, rc=runner.rc if runner.rc is not None else -1,
                              stats=stats, events=events, data_dir=data_dir, data=reported)
