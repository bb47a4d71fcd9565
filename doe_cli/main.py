"""The `doe` command: the root app with global options; commands live in doe_cli/commands/."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from doe_cli import __version__
from doe_cli.commands import _common

app = typer.Typer(
    name="doe",
    help="Run benchmark experiment suites described in one YAML design.",
    no_args_is_help=True,
    add_completion=False,
    # Locals may hold credentials; never print them in a traceback.
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        print(f"doe {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    config_dir: Annotated[Path | None, typer.Option(
        "--config-dir", help="Config dir with designs/, group_vars/, roles/ "
        "(default: $DOE_CONFIG_DIR, $DOES_PROJECT_DIR/doe-suite-config, the doe repository).")] = None,
    results_dir: Annotated[Path | None, typer.Option(
        "--results-dir", help="Results folder (default: $DOES_RESULTS_DIR, doe-suite-results/ by the config).")] = None,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True,
                                         help="More output (doe run: each Ansible run, its hosts and seconds).")] = 0,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version.")] = False,
) -> None:
    _common.options.config_dir = config_dir
    _common.options.results_dir = results_dir
    _common.options.verbosity = verbose
    forget_settings()


def forget_settings() -> None:
    """Settings are read once per command: a command run in the same process (tests) reads them again."""
    from doe_cli.config import forget_group_vars

    forget_group_vars()
    settings = sys.modules.get("doe_cli.settings")  # not imported yet: nothing to forget (and no pydantic)
    if settings is not None:
        settings.forget()


def _register_command_groups() -> None:
    # Commands stay flat (`doe run`, not `doe run run`): each group module's commands join the root.
    from doe_cli.commands import cloud, compare, design, etl, run

    for module in (design, run, etl, compare, cloud):
        app.registered_commands.extend(module.app.registered_commands)


_register_command_groups()


def main() -> None:
    app()
