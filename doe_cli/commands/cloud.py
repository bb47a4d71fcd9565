"""Cloud commands: `doe plan` (preflight, hosts, cost) and `doe clean` (delete resources by tags)."""

from __future__ import annotations

from typing import Annotated

import typer

from doe_cli.commands._common import cli_errors, confirm, err, out, project
from doe_cli.errors import UserError

app = typer.Typer()

CloudOption = Annotated[str, typer.Option("--cloud", help="Cloud to act on (aws).")]


def _require_aws(cloud: str) -> None:
    if cloud != "aws":
        raise UserError(f"only 'aws' has cloud resources to plan or clean, got '{cloud}'", path="--cloud")


@app.command("plan")
@cli_errors
def plan_command(
    suite: Annotated[str, typer.Option("--suite", help="Suite (design name) to plan.")],
    cloud: CloudOption = "aws",
    yes: Annotated[bool, typer.Option("--yes", help="Accept an estimate above the budget.")] = False,
) -> None:
    """Check a suite can run on the cloud and print hosts, jobs, wall time and cost (aws), or each host
    type's sbatch resources (a Slurm inventory)."""
    from doe_cli.clouds.aws import plan as aws_plan

    current = project()
    if cloud not in ("aws", "local"):
        from doe_cli.clouds.slurm import plan_lines

        out.print("\n".join(plan_lines(current, suite, cloud)), markup=False)
        return
    _require_aws(cloud)
    plan, host_plan = aws_plan.plan_suite(current, suite)
    out.print("\n".join(plan.lines()), markup=False)
    aws_plan.check_budget(plan, accept=yes)
    aws_plan.preflight(current, host_plan)
    err.print("preflight passed: credentials, region, AMIs, instance types, key pair, SSH source", markup=False)


@app.command("clean")
@cli_errors
def clean_command(
    cloud: Annotated[str | None, typer.Option("--cloud", help="Cloud to clean: aws (resources by tags), local or "
                                                              "an SSH inventory's name (hosts kept by --keep or "
                                                              "left by a stopped run). Default: $DOES_CLOUD; "
                                                              "one of them is required, as this deletes.")
                     ] = None,
    suite: Annotated[str | None, typer.Option("--suite", help="Only this suite's resources.")] = None,
    suite_id: Annotated[str | None, typer.Option("--id", help="Only this suite id (a number or 'last').")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be deleted, delete nothing.")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Delete without listing and asking first (scripts).")] = False,
) -> None:
    """Delete the project's AWS resources (or one suite's), found by their tags; on the local cloud and on
    SSH hosts, stop the queues that runs left behind and free the hosts (fetched results stay). Lists what
    it would delete and asks first, unless --yes."""
    from doe_cli.clouds.aws import clean as aws_clean
    from doe_cli.config import clean_cloud

    cloud, source = clean_cloud(cloud)
    current = project()
    if cloud != "aws":
        _clean_kept_hosts(current, cloud, source, suite, suite_id, dry_run, yes)
        return
    resolved_id = aws_clean.resolve_suite_id(current, suite, suite_id)
    if not yes and not dry_run:
        listed = aws_clean.clean(current, suite=suite, suite_id=resolved_id, dry_run=True)
        if listed.total == 0:
            err.print("nothing to delete", markup=False)
            return
        for line in listed.lines():
            out.print(line, markup=False)
        confirm(f"delete these {listed.total} resource(s)?")
    report = aws_clean.clean(current, suite=suite, suite_id=resolved_id, dry_run=dry_run)
    for line in report.lines():
        out.print(line, markup=False)
    verb = "would delete" if dry_run else "deleted"
    err.print(f"{verb} {report.total} resource(s)", markup=False)


def _clean_kept_hosts(current, cloud: str, source: str, suite: str | None, suite_id: str | None, dry_run: bool,
                      yes: bool) -> None:
    from doe_cli.run import kept_hosts

    if cloud != kept_hosts.LOCAL and not any((current.inventory_dir / f"{cloud}{suffix}").is_file()
                                             for suffix in (".yml", ".yaml")):
        raise UserError(f"expected 'aws', 'local' or the name of an inventory in {current.inventory_dir}, "
                        f"got '{cloud}'", path=source)
    kept = kept_hosts.find_kept(current.results_dir, cloud, suite, suite_id)
    hosts = f"{sum(len(k.hosts) for k in kept)} host(s) of {len(kept)} suite run(s)"
    if dry_run or (kept and not yes):
        for entry in kept:
            out.print(entry.describe(), markup=False)
            if entry.policy.fetches_first:
                finished, dropped = kept_hosts.unfetched_counts(current, entry)
                out.print(f"  would fetch {finished} finished job(s) and drop {dropped} queued or running job(s)",
                          markup=False)
        if dry_run:
            err.print(f"would stop the queues of {hosts}", markup=False)
            return
        confirm(f"stop the queues of these {hosts}?")
    for entry in kept:
        out.print(entry.describe(), markup=False)
        if entry.policy.fetches_first:
            fetched = kept_hosts.fetch_finished(current, entry, log=lambda line: err.print(line, markup=False))
            out.print(f"  fetched {fetched} finished job(s)", markup=False)
        kept_hosts.release(current, entry)
    err.print(f"stopped the queues of {hosts}", markup=False)
