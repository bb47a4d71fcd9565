"""Shell syntax check of extended commands, without executing any of them.

Commands go to `bash -n` (parse only) and, when installed, `shellcheck --severity=error` on stdin, as
data; nothing passes through a shell. Distinct commands are checked in one batch per tool; only when a
batch fails are they bisected to name the culprit. bash parses every distinct command (about 30 µs
each); shellcheck is slow (about 2.5 ms per command), so it reads a sample: the first distinct commands
of every experiment, host type and command name. Commands of one such origin come from one template
and differ only in the substituted values, whose quoting bash already checks everywhere.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from doe_cli.errors import UserError

CHECK_TIMEOUT_SECONDS = 600
SHELLCHECK_SAMPLE_PER_ORIGIN = 20

Checker = Callable[[str], str]


def _bash_errors(script: str) -> str:
    """bash's complaint about `script`, or "" if it parses."""
    bash = shutil.which("bash") or "/bin/bash"
    result = subprocess.run([bash, "-n"], input=script, capture_output=True, text=True,
                            timeout=CHECK_TIMEOUT_SECONDS, check=False)
    return "" if result.returncode == 0 else (result.stderr.strip() or f"bash -n exit {result.returncode}")


def _shellcheck_errors(script: str) -> str:
    """shellcheck's error-level findings in `script`, or "" (also when shellcheck is not installed)."""
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


def _batch(commands: list[str]) -> str:
    # a subshell per command keeps one command's unbalanced state from hiding another's
    return "".join(f"(\n{command}\n)\n" for command in commands)


def first_invalid(commands: list[str], checker: Checker = command_error) -> tuple[str, str] | None:
    """The first invalid command and its error, found by bisection after a failed batch check."""
    if not commands or not checker(_batch(commands)):
        return None
    while len(commands) > 1:
        half = commands[: len(commands) // 2]
        commands = half if checker(_batch(half)) else commands[len(commands) // 2:]
    return commands[0], checker(commands[0] + "\n") or checker(_batch(commands))


# Text standing for values known only at run time, which the check sees as a plain word (as it sees
# doe's own host placeholders): `{{ name }}` expressions kept as written at design time, and the
# `<name@runtime>` that doe-suite projects' own at_runtime filter prints at design time (bash would
# read its `<` and `>` as redirections).
_RUN_TIME_TEXT = re.compile(r"\{\{.*?\}\}|<[^<>\s]+@runtime>", re.DOTALL)
# Without hosts, doe-suite projects also print their own stand-ins for host values, e.g.
# `exp_host_lst | to_private_dns_name('server') | default('<UNDEFINED-DNS>')`: any angle-bracketed word.
_RUN_TIME_TEXT_WITHOUT_HOSTS = re.compile(r"\{\{.*?\}\}|<[^<>\s]+>", re.DOTALL)


def check_extended_commands(extended: dict[str, list[dict]], design_file: Path, *,
                            hosts_known: bool = True) -> None:
    """Raise a UserError naming experiment, run and host type of the first command that is not valid bash.

    Without known hosts (design time), values that stand for host variables count as plain words."""
    run_time_text = _RUN_TIME_TEXT if hosts_known else _RUN_TIME_TEXT_WITHOUT_HOSTS
    where: dict[str, tuple[str, int, str, str]] = {}
    sample: list[str] = []
    sampled: Counter = Counter()
    for exp_name, runs in extended.items():
        for run_index, run_config in enumerate(runs):
            for host_type, hosts in run_config.get("$CMD$", {}).items():
                for commands in hosts:
                    for name, command in commands.items():
                        checked = run_time_text.sub("@runtime@", command)
                        if checked in where:
                            continue
                        where[checked] = (exp_name, run_index, host_type, command)
                        origin = (exp_name, host_type, name)
                        if sampled[origin] < SHELLCHECK_SAMPLE_PER_ORIGIN:
                            sampled[origin] += 1
                            sample.append(checked)
    invalid = first_invalid(list(where), _bash_errors) or first_invalid(sample, _shellcheck_errors)
    if invalid is None:
        return
    checked, message = invalid
    exp_name, run_index, host_type, command = where[checked]
    detail = " ".join(message.replace("\n", "; ").split())
    raise UserError(f"run {run_index}: $CMD$ is invalid bash syntax: {detail} (command: {command!r})",
                    file=str(design_file), path=f"experiments.{exp_name}.host_types.{host_type}.$CMD$")
