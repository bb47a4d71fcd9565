"""Shell syntax check of extended commands, without executing any of them.

Commands go to `bash -n` (parse only) and, when installed, `shellcheck --severity=error` on stdin, as
data; nothing passes through a shell. All distinct commands are checked in one batch; only when the
batch fails are they checked one by one to name the culprit.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from doe_cli.errors import UserError

CHECK_TIMEOUT_SECONDS = 60


def _bash_errors(script: str) -> str:
    """bash's complaint about `script`, or "" if it parses."""
    bash = shutil.which("bash") or "/bin/bash"
    result = subprocess.run([bash, "-n"], input=script, capture_output=True, text=True,
                            timeout=CHECK_TIMEOUT_SECONDS, check=False)
    return "" if result.returncode == 0 else (result.stderr.strip() or f"bash -n exit {result.returncode}")


def _shellcheck_errors(script: str) -> str:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        return ""
    result = subprocess.run([shellcheck, "--shell=bash", "--severity=error", "--exclude=SC1091",
                             "--format=gcc", "-"], input=script, capture_output=True, text=True,
                            timeout=CHECK_TIMEOUT_SECONDS, check=False)
    return "" if result.returncode == 0 else (result.stdout.strip() or result.stderr.strip())


def command_error(command: str) -> str:
    """Why `command` is not valid bash, or "" if it is."""
    return _bash_errors(command + "\n") or _shellcheck_errors(command + "\n")


def _batch_error(commands: list[str]) -> str:
    # a subshell per command keeps one command's unbalanced state from hiding another's
    script = "".join(f"(\n{command}\n)\n" for command in commands)
    return _bash_errors(script) or _shellcheck_errors(script)


def first_invalid(commands: list[str]) -> tuple[str, str] | None:
    """The first invalid command and its error, found by bisection after a failed batch check."""
    if not commands or not _batch_error(commands):
        return None
    while len(commands) > 1:
        half = commands[: len(commands) // 2]
        commands = half if _batch_error(half) else commands[len(commands) // 2:]
    return commands[0], command_error(commands[0]) or _batch_error(commands)


# At design time `{{ name }}` expressions naming run-time variables are kept as written; the check sees
# them as a plain word, as it sees host placeholders.
_KEPT_EXPRESSION = re.compile(r"\{\{.*?\}\}", re.DOTALL)


def check_extended_commands(extended: dict[str, list[dict]], design_file: Path) -> None:
    """Raise a UserError naming experiment, run and host type of the first command that is not valid bash."""
    where: dict[str, tuple[str, int, str, str]] = {}
    for exp_name, runs in extended.items():
        for run_index, run_config in enumerate(runs):
            for host_type, hosts in run_config.get("$CMD$", {}).items():
                for commands in hosts:
                    for command in commands.values():
                        checked = _KEPT_EXPRESSION.sub("@runtime@", command)
                        where.setdefault(checked, (exp_name, run_index, host_type, command))
    invalid = first_invalid(list(where))
    if invalid is None:
        return
    checked, message = invalid
    exp_name, run_index, host_type, command = where[checked]
    detail = " ".join(message.replace("\n", "; ").split())
    raise UserError(f"run {run_index}: $CMD$ is invalid bash syntax: {detail} (command: {command!r})",
                    file=str(design_file), path=f"experiments.{exp_name}.host_types.{host_type}.$CMD$")
