"""`doe compare`: thin; the work is in doe_cli/compare.py and etl/comparison.py."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from doe_cli.commands._common import cli_errors, err, out, project
from doe_cli.errors import UserError

app = typer.Typer()


@app.command("compare")
@cli_errors
def compare(
    suite: Annotated[str, typer.Option("--suite", "-s", help="The baseline suite.")],
    metric: Annotated[str, typer.Option("--metric", help="FILE:COLUMN of a CSV (or FILE:KEY of a YAML/JSON "
                                        "file) in each host folder, e.g. output.csv:prover_time_ms.")],
    id: Annotated[str, typer.Option("--id", help="last | <suite id>.")] = "last",
    to_suite: Annotated[str | None, typer.Option("--to-suite", help="Compare with this suite's runs, matched "
                                                 "by their factor values.")] = None,
    to_id: Annotated[str, typer.Option("--to-id", help="last | <suite id> of --to-suite.")] = "last",
    by: Annotated[str | None, typer.Option("--by", help="Compare the levels of this factor within the suite.")]
    = None,
    baseline: Annotated[str | None, typer.Option("--baseline", help="With --by: the level to compare against "
                                                 "(default: the first).")] = None,
    statistic: Annotated[str, typer.Option("--statistic", help="median | mean.")] = "median",
    alpha: Annotated[float, typer.Option("--alpha", help="Significance level after Holm's correction.")] = 0.05,
    min_effect: Annotated[str, typer.Option("--min-effect", help="Ratios within this of 1 count as the same "
                                            "(e.g. 1%).")] = "1%",
    higher_is_better: Annotated[bool, typer.Option("--higher-is-better", help="The metric is a throughput: "
                                                   "a higher value is faster.")] = False,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap.")] = 0,
    output_format: Annotated[str, typer.Option("--format", help="text | json.")] = "text",
) -> None:
    """Compare runs: ratios with bootstrap confidence intervals, Mann-Whitney U tests (Holm) and verdicts."""
    from doe_cli.compare import CompareRequest, print_outcome, resolve_suite, run_compare

    if (to_suite is None) == (by is None):
        raise UserError("expected exactly one of --to-suite SUITE and --by FACTOR", path="--to-suite/--by")
    if output_format not in ("text", "json"):
        raise UserError(f"expected text or json, got {output_format!r}", path="--format")
    found = project()
    request = CompareRequest(
        suite_dir=resolve_suite(found, suite, id), metric=metric, statistic=statistic, alpha=alpha,
        min_effect=_fraction(min_effect), higher_is_better=higher_is_better, seed=seed, by=by, baseline=baseline,
        to_suite_dir=resolve_suite(found, to_suite, to_id) if to_suite else None)
    outcome = run_compare(request)
    if output_format == "json":
        out.print_json(json.dumps(outcome.records()))
    else:
        print_outcome(outcome, out)
    for path in outcome.outputs:
        err.print(f"wrote {path}", markup=False)


def _fraction(text: str) -> float:
    try:
        return float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise UserError(f"expected a fraction or a percentage such as 1%, got {text!r}", path="--min-effect") from None
