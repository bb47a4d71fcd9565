"""`doe run`, `doe status` and `doe clean-result`: thin wrappers around doe_cli.run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from doe_cli.commands import _common
from doe_cli.commands._common import cli_errors, confirm, err, out, project
from doe_cli.errors import UserError

app = typer.Typer()


@app.command("run")
@cli_errors
def run(
    suite: Annotated[str, typer.Option("--suite", "-s", help="Design name (designs/<suite>.yml).")],
    id: Annotated[str, typer.Option("--id", help="new | last | <suite id> to resume.")] = "new",
    cloud: Annotated[str | None, typer.Option("--cloud", help="Where the hosts come from: local, aws (EC2 "
                                                           "instances for the suite), or the name of an "
                                                           "inventory in inventory/<name>.yml (existing SSH "
                                                           "hosts). Default: a resume's own cloud, else "
                                                           "$DOES_CLOUD, else local.")
                     ] = None,
    force: Annotated[bool, typer.Option("--force", help="Use SSH hosts even if another suite holds their "
                                                       "lock.")] = False,
    keep: Annotated[bool, typer.Option("--keep", help="Keep hosts (queues, host folders) after completion.")] = False,
    parallel: Annotated[bool, typer.Option("--parallel", help="Local cloud: run the experiments at the same time "
                                                            "(default: one after another, so their timings do "
                                                            "not disturb each other; local_parallel: true in "
                                                            "group_vars/all sets it too).")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="AWS: run even if the cost estimate exceeds the budget.")
                   ] = False,
    expfilter: Annotated[str | None, typer.Option("--expfilter", help="Only experiments matching "
                                                     "this regex (new runs).")] = None,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="Run failed jobs again.")] = False,
    timeout: Annotated[float | None, typer.Option("--timeout", help="Stop waiting after this many "
                                                     "seconds (jobs keep running).")] = None,
    job_timeout: Annotated[float | None, typer.Option("--job-timeout", help="Per-job limit in "
                                                         "seconds (default: the experiment's job_timeout in the "
                                                         "design, else the job_timeout host var).")] = None,
    local_dir: Annotated[Path | None, typer.Option("--local-dir", help="Base folder of local-cloud hosts "
                                                      "(default: $DOE_LOCAL_DIR or ~/.doe/local).")] = None,
    strict_etl: Annotated[bool, typer.Option("--strict-etl", help="Exit 1 when an ETL pipeline fails "
                                                                 "(default: report it, exit 0).")] = False,
    notify: Annotated[list[str] | None, typer.Option("--notify", help="Tell this webhook URL or run this command "
                                                     "when the suite ends or breaks (repeatable; none: no one; "
                                                     "default: notify in group_vars/all).")] = None,
) -> None:
    """Run a suite, or resume it with --id last / <id>."""
    from doe_cli.run.controller import run_suite
    from doe_cli.run.progress import Progress
    from doe_cli.run.runtime import RunOptions
    from doe_cli.run.status import print_summary

    options = RunOptions(suite=suite, id=id, cloud=cloud, keep=keep, expfilter=expfilter,
                         retry_failed=retry_failed, timeout=timeout, job_timeout=job_timeout, local_dir=local_dir,
                         force=force, yes=yes, parallel=parallel, notify=notify, verbose=_common.options.verbosity > 0)
    with Progress(err) as progress:
        summary = run_suite(project(), options, log=lambda m: err.print(m, markup=False, highlight=False),
                            progress=progress)
    if summary.interrupted:
        raise typer.Exit(130)
    print_summary(summary, err)
    if summary.failed_jobs or (strict_etl and summary.etl_error):
        raise typer.Exit(1)


@app.command("status")
@cli_errors
def status(
    suite: Annotated[str | None, typer.Option("--suite", "-s", help="Design name; omit to list runs.")] = None,
    id: Annotated[str, typer.Option("--id", help="last | <suite id>.")] = "last",
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    as_html: Annotated[bool, typer.Option("--html", help="Write the suite's status.html and print its path.")]
    = False,
    open_page: Annotated[bool, typer.Option("--open", help="Write status.html and open it in a browser.")] = False,
) -> None:
    """Per experiment: finished, running, failed and pending jobs, and the ETL state."""
    from doe_cli.run.status import list_runs, suite_status

    if as_html or open_page:
        from doe_cli.run.status_page import open_in_browser, write_suite_page

        if suite is None:
            raise UserError("expected --suite with --html or --open", path="--suite")
        page = write_suite_page(project(), suite, id)
        out.print(str(page), markup=False)
        if open_page:
            open_in_browser(page)
        return

    if suite is None:
        runs = list_runs(project())
        if as_json:
            out.print_json(json.dumps(runs))
        else:
            for run in runs:
                out.print(f"{run['suite']}_{run['suite_id']}: {run['finished']}/{run['total']} jobs"
                          f"{', ' + str(run['failed']) + ' failed' if run['failed'] else ''}", markup=False)
        return
    report = suite_status(project(), suite, id)
    if as_json:
        out.print_json(json.dumps(report))
        return
    from doe_cli.run.status import print_status

    print_status(report, out)


@app.command("clean-result")
@cli_errors
def clean_result(
    suite: Annotated[str | None, typer.Option("--suite", "-s", help="Only this suite's result folders.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be deleted, delete nothing.")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Delete without asking first (scripts).")] = False,
) -> None:
    """Delete incomplete result folders (runs that stopped before every job finished), after asking. Skips
    those a running doe run uses and those whose hosts are still set up (their jobs can still be fetched)."""
    from doe_cli.run.clean_result import clean_results

    clean_results(project(), suite, dry_run=dry_run, yes=yes, show=lambda line: out.print(line, markup=False),
                  note=lambda line: err.print(line, markup=False), confirm=confirm)
