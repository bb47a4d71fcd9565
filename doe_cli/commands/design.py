"""Design commands: show, validate and list suites, export the design schema."""

from __future__ import annotations

import json
from enum import Enum
from typing import Annotated

import typer

from doe_cli.commands._common import cli_errors, err, project

app = typer.Typer()

SuiteOption = Annotated[str, typer.Option("--suite", "-s", help="Suite name: designs/<suite>.yml.")]
ExpFilterOption = Annotated[str | None, typer.Option(
    "--expfilter", help="Only experiments whose name matches this regex (re.match).")]


class Format(str, Enum):
    text = "text"
    json = "json"


# The design engine (jinja2, yaml) is imported inside the commands: every `doe` start-up would pay for it.
def _load(suite: str, expfilter: str | None):
    from doe_cli.design import load_suite

    loaded = load_suite(project(), suite)
    return loaded.filter(expfilter) if expfilter else loaded


@app.command("design")
@cli_errors
def design(suite: SuiteOption, expfilter: ExpFilterOption = None,
           output: Annotated[Format, typer.Option(
               "--format", help="text: one line per job command; "
               "json: the extended design (suite_design_ext.yml).")] = Format.text,
           ) -> None:
    """Show the runs of a suite and each host's command."""
    from doe_cli.design import report

    loaded = _load(suite, expfilter)
    extended = loaded.extend(check_commands=True)
    if output is Format.json:
        typer.echo(report.extended_json(extended))
    else:
        typer.echo(report.design_listing(loaded, extended))


@app.command("design-validate")
@cli_errors
def design_validate(suite: SuiteOption, expfilter: ExpFilterOption = None) -> None:
    """Validate a suite and print the resolved design (suite_design.yml)."""
    from doe_cli.design.yamlio import dump_yaml

    loaded = _load(suite, expfilter)
    loaded.extend(check_commands=True)
    typer.echo(dump_yaml(loaded.resolved), nl=False)


@app.command("info")
@cli_errors
def info() -> None:
    """List the suites of the config dir with their experiments and run counts."""
    from doe_cli.design import report

    infos = report.suites_info(project())
    typer.echo(report.info_listing(infos))
    for failed in (i for i in infos if i.error):
        err.print(f"{failed.suite}: {failed.error}", markup=False)
    if any(i.error for i in infos):
        raise typer.Exit(2)


@app.command("schema")
@cli_errors
def schema() -> None:
    """Print the JSON Schema of design files (for editors)."""
    from doe_cli.design.schema import design_schema

    typer.echo(json.dumps(design_schema(), indent=2))
