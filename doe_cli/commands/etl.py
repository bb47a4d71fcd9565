"""ETL commands: thin wrappers around the etl package."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from doe_cli.commands._common import cli_errors, err, out, project
from doe_cli.config import super_etl_out_dir
from doe_cli.errors import DoeError, UserError

app = typer.Typer()

PipelinesOption = Annotated[
    list[str] | None,
    typer.Option("--pipelines", help="Only these pipelines (space- or comma-separated, or repeated)."),
]


def _split(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    names = [name for value in values for name in value.replace(",", " ").split()]
    return names or None


def _user_error(error) -> UserError:
    return UserError(error.detail, file=error.file, path=error.path)


def _report(report, label: str = "", config_error_raises: bool = True) -> bool:
    """Print one line per pipeline to stderr; True if nothing failed."""
    prefix = f"{label}: " if label else ""
    if report.config_error is not None:
        if config_error_raises:
            raise _user_error(report.config_error)
        err.print(f"[red]{prefix}{_escape(str(report.config_error))}[/]", markup=True)
    if not report.outcomes and report.config_error is None:
        err.print(f"{prefix}no ETL pipelines to run")
    for outcome in report.outcomes:
        style = {"ok": "green", "skipped": "yellow", "error": "red"}[outcome.status]
        err.print(f"[{style}]{prefix}{_escape(outcome.line())}[/]", markup=True)
        for note in outcome.warnings:
            err.print(f"  [yellow]note:[/] {_escape(note)}", markup=True)
    return report.ok


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


# `--pipelines p1 p2` (as doe-suite users write it): the words after the option arrive as extra arguments.
EXTRA_WORDS = {"allow_extra_args": True}


def _with_extra(values: list[str] | None, ctx: typer.Context, option: str) -> list[str] | None:
    if ctx.args and not values:
        raise UserError(f"unexpected arguments {ctx.args}; did you mean {option} {' '.join(ctx.args)}?")
    return _split([*(values or []), *ctx.args])


@app.command("etl", context_settings=EXTRA_WORDS)
@cli_errors
def etl(
    ctx: typer.Context,
    suite: Annotated[str, typer.Option("--suite", help="Suite (design name).")],
    suite_id: Annotated[str, typer.Option("--id", help="Suite id or `last`.")] = "last",
    pipelines: PipelinesOption = None,
    from_design: Annotated[
        bool,
        typer.Option(
            "--from-design", help="Use the pipelines of the current designs/<suite>.yml, not the stored ones."
        ),
    ] = False,
) -> None:
    """Run the ETL pipelines of a suite's results into etl_results/<pipeline>/."""
    from etl.api import resolve_suite_dir, run_suite_etl
    from etl.errors import EtlConfigError

    prj = project()
    try:
        suite_dir = resolve_suite_dir(prj.results_dir, suite, suite_id)
    except EtlConfigError as error:
        raise _user_error(error) from None
    loader, section = _design_access(prj, suite, from_design)
    if not from_design:
        from doe_cli.etl_source import edited_etl_note

        note = edited_etl_note(prj, suite, suite_dir)
        if note:
            err.print(note, markup=False)
    report = run_suite_etl(
        suite_dir,
        config_dir=prj.config_dir,
        pipelines=_with_extra(pipelines, ctx, "--pipelines"),
        design_loader=loader,
        etl_section=section,
    )
    if not _report(report):
        raise DoeError(f"ETL failed for {len(report.errors)} pipeline(s) of {suite_dir.name}")


def _design_access(prj, suite: str | None, from_design: bool):
    """The design loader for `{suite: X}` include sources and, with --from-design, the current $ETL$."""
    if from_design:
        from doe_cli.design import load_suite

        assert suite is not None, "--from-design reads one suite's design"
        section = load_suite(prj, suite, strict=False).resolved.get("$ETL$", {})
    else:
        section = None

    def load_design(name: str) -> dict:
        # Imported on first use: only `{suite: X}` include sources need the design engine.
        from doe_cli.design import design_loader

        return design_loader(prj)(name)

    return load_design, section


@app.command("etl-steps")
@cli_errors
def etl_steps(
    name: Annotated[str | None, typer.Argument(help="One step, e.g. FactorPlotLoader (default: all).")] = None,
) -> None:
    """List the ETL steps, built-in and the config dir's custom ones, with their options, types and defaults."""
    from etl.errors import EtlConfigError
    from etl.step_catalog import step_catalog

    try:
        catalog = step_catalog(project().config_dir, name)
    except EtlConfigError as error:
        raise _user_error(error) from None
    for line in catalog.lines():
        out.print(line, markup=False)


@app.command("etl-all")
@cli_errors
def etl_all() -> None:
    """Run the ETL of every suite result folder."""
    from etl.api import run_all_etl

    prj = project()
    loader, _ = _design_access(prj, None, False)
    reports = run_all_etl(prj.results_dir, config_dir=prj.config_dir, design_loader=loader)
    if not reports:
        err.print(f"no suite results in {prj.results_dir}")
    # One suite's bad design must not stop the others: report it and go on.
    failed = [
        suite_dir.name
        for suite_dir, report in reports.items()
        if not _report(report, suite_dir.name, config_error_raises=False)
    ]
    if failed:
        raise DoeError(f"ETL failed for {', '.join(failed)}")


@app.command("etl-clean")
@cli_errors
def etl_clean(
    suite: Annotated[str | None, typer.Option("--suite", help="Suite (design name).")] = None,
    suite_id: Annotated[str, typer.Option("--id", help="Suite id or `last`.")] = "last",
    all_suites: Annotated[bool, typer.Option("--all", help="Every suite result folder instead of one.")] = False,
) -> None:
    """Remove a suite's ETL outputs (etl_results/) including the extraction cache."""
    from etl.api import clean_suite_etl, resolve_suite_dir, suite_result_dirs
    from etl.errors import EtlConfigError

    if all_suites == (suite is not None):
        raise UserError("expected --suite S [--id ID] or --all")
    results_dir = project().results_dir
    try:
        suite_dirs = (suite_result_dirs(results_dir) if all_suites or suite is None
                      else [resolve_suite_dir(results_dir, suite, suite_id)])
    except EtlConfigError as error:
        raise _user_error(error) from None
    for suite_dir in suite_dirs:
        removed = clean_suite_etl(suite_dir)
        err.print(f"removed {len(removed)} entries from {suite_dir.name}/etl_results")


@app.command("etl-super", context_settings=EXTRA_WORDS)
@cli_errors
def etl_super(
    ctx: typer.Context,
    config: Annotated[str, typer.Option("--config", help="super_etl/<config>.yml")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Output folder (default: $DOES_SUPERETL_OUT, else "
                                                "<results folder>-super).")
    ] = None,
    pipelines: PipelinesOption = None,
    suite_ids: Annotated[
        list[str] | None,
        typer.Option(
            "--suite-id",
            help="Override suite ids: s=id (space-separated or repeated); drops unlisted suites.",
        ),
    ] = None,
    config_level: Annotated[
        bool, typer.Option("--config-level/--no-config-level", help="Put outputs under <out>/<config>/.")
    ] = True,
    pipeline_level: Annotated[
        bool, typer.Option("--pipeline-level/--no-pipeline-level", help="One folder per pipeline.")
    ] = True,
) -> None:
    """Run a super-ETL config over several suites' results."""
    from etl.api import parse_suite_id_overrides, run_super_etl
    from etl.errors import EtlConfigError

    prj = project()
    loader, _ = _design_access(prj, None, False)
    # Extra words: `s=id` continue --suite-id, others continue --pipelines.
    extra_ids = [word for word in ctx.args if "=" in word]
    extra_pipelines = [word for word in ctx.args if "=" not in word]
    if (extra_ids and not suite_ids) or (extra_pipelines and not pipelines):
        raise UserError(f"unexpected arguments {ctx.args}; expected after --pipelines or --suite-id")
    pipelines = [*(pipelines or []), *extra_pipelines]
    try:
        overrides = parse_suite_id_overrides(_split([*(suite_ids or []), *extra_ids]))
    except EtlConfigError as error:
        raise _user_error(error) from None
    report = run_super_etl(
        config,
        config_dir=prj.config_dir,
        results_dir=prj.results_dir,
        out_dir=super_etl_out_dir(out),
        pipelines=_split(pipelines),
        config_level=config_level,
        pipeline_level=pipeline_level,
        suite_ids=overrides,
        design_loader=loader,
    )
    if not _report(report):
        raise DoeError(f"super ETL {config} failed for {len(report.errors)} pipeline(s)")
