"""What every command shares: global options, the project lookup and one-line error reporting."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import typer
from rich.console import Console

from doe_cli import config
from doe_cli.errors import DoeError

F = TypeVar("F", bound=Callable)

# stdout carries data (designs, JSON, tables); messages and progress go to stderr.
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


@dataclass
class GlobalOptions:
    config_dir: Path | None = None
    results_dir: Path | None = None
    verbosity: int = 0


options = GlobalOptions()


def project() -> config.Project:
    return config.discover(options.config_dir, options.results_dir)


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", markup=True, highlight=False)
    return typer.Exit(code)


def confirm(question: str) -> None:
    """Ask on stderr; anything but y or yes (also no answer, as from a script's stdin) deletes nothing."""
    err.print(f"{question} [y/N] ", end="", markup=False)
    if sys.stdin.readline().strip().lower() not in ("y", "yes"):
        raise DoeError("nothing deleted: not confirmed (--yes deletes without asking)")


def cli_errors(fn: F) -> F:
    """Turn doe's errors into one line on stderr and an exit code; Ctrl-C into exit 130."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except DoeError as error:
            raise fail(_escape(str(error)), error.exit_code) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            sys.stderr.flush()
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
