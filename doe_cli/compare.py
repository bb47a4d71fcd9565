"""`doe compare`: runs of two suites matched by their factor values, or the levels of one factor of a
suite against a baseline level, with ratios, confidence intervals, tests and verdicts (etl.comparison).
The table goes to stdout (or JSON); compare.csv and a plot of the ratios are written into the first
suite's etl_results/compare/.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from doe_cli.errors import UserError
from doe_cli.fileio import write_atomic
from etl.fileio import write_atomic as write_file_atomic


@dataclass(frozen=True)
class CompareRequest:
    suite_dir: Path
    metric: str
    statistic: str = "median"
    alpha: float = 0.05
    min_effect: float = 0.01
    higher_is_better: bool = False
    seed: int = 0
    to_suite_dir: Path | None = None     # across suites: its runs are the "other" side
    by: str | None = None                # within the suite: this factor's levels against the baseline
    baseline: str | None = None


@dataclass
class CompareOutcome:
    comparisons: list                    # etl.comparison.Comparison, in table order
    geometric_mean: float | None
    only_baseline: list[dict[str, Any]] = field(default_factory=list)
    only_other: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[Path] = field(default_factory=list)

    def records(self) -> list[dict[str, Any]]:
        return [comparison.record() for comparison in self.comparisons]


def run_compare(request: CompareRequest) -> CompareOutcome:
    import numpy as np

    from etl.compare_reader import Metric, read_runs
    from etl.comparison import STATISTICS, compare, geometric_mean
    from etl.errors import EtlConfigError

    if request.statistic not in STATISTICS:
        raise UserError(f"expected one of {', '.join(STATISTICS)}, got {request.statistic!r}", path="--statistic")
    if not 0 < request.alpha < 1 or not 0 <= request.min_effect < 1:
        raise UserError("expected 0 < alpha < 1 and 0 <= min-effect < 1", path="--alpha/--min-effect")
    reduce = np.median if request.statistic == "median" else np.mean
    try:
        metric = Metric.parse(request.metric)
        runs = read_runs(request.suite_dir, metric, lambda values: float(reduce(values)))
        if request.to_suite_dir is not None:
            others = read_runs(request.to_suite_dir, metric, lambda values: float(reduce(values)))
            pairs, only_baseline, only_other = _pairs_across(runs, others)
        else:
            pairs, only_baseline, only_other = _pairs_by_factor(runs, request.by or "", request.baseline)
    except EtlConfigError as error:
        raise UserError(error.detail, file=error.file, path=error.path) from None
    comparisons = compare(pairs, statistic=request.statistic, alpha=request.alpha, min_effect=request.min_effect,
                          higher_is_better=request.higher_is_better, seed=request.seed)
    outcome = CompareOutcome(comparisons, geometric_mean([c.ratio for c in comparisons]), only_baseline, only_other)
    if comparisons:
        outcome.outputs = _write_outputs(request, outcome)
    return outcome


def _pairs_across(runs: list, others: list) -> tuple[list, list, list]:
    from etl.comparison import Pair

    by_key = {run.match_key(): run for run in others}
    pairs, only_baseline = [], []
    for run in runs:
        other = by_key.pop(run.match_key(), None)
        if other is None:
            only_baseline.append({"exp": run.exp, **run.factors})
        else:
            pairs.append(Pair({"exp": run.exp, **run.factors}, run.values, other.values))
    return pairs, only_baseline, [{"exp": run.exp, **run.factors} for run in by_key.values()]


def _pairs_by_factor(runs: list, factor: str, baseline: str | None) -> tuple[list, list, list]:
    from etl.comparison import Pair

    with_factor = [run for run in runs if factor in run.factors]
    if not with_factor:
        known = sorted({name for run in runs for name in run.factors})
        raise UserError(f"no experiment of the suite has the factor {factor!r}"
                        f" (factors: {', '.join(known) or 'none'})", path="--by")
    levels = list(dict.fromkeys(_level_text(run.factors[factor]) for run in with_factor))
    if baseline is not None and baseline not in levels:
        raise UserError(f"{factor} has no level {baseline!r} (levels: {', '.join(levels)})", path="--baseline")
    base_level = baseline if baseline is not None else levels[0]
    groups: dict[tuple, dict[str, Any]] = {}
    for run in with_factor:
        groups.setdefault(run.match_key(leave_out=factor), {})[_level_text(run.factors[factor])] = run
    pairs, only_other = [], []
    for members in groups.values():
        base = members.get(base_level)
        for level, run in members.items():
            if level == base_level:
                continue
            key = {"exp": run.exp, **run.factors}
            if base is None:
                only_other.append(key)
            else:
                pairs.append(Pair(key, base.values, run.values))
    return pairs, [], only_other


def _level_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _write_outputs(request: CompareRequest, outcome: CompareOutcome) -> list[Path]:
    """compare.csv and a plot of the ratios, named after what was compared."""
    import csv
    import io

    name = (f"to_{request.to_suite_dir.name}" if request.to_suite_dir is not None
            else f"by_{request.by}").replace("/", "_")
    folder = request.suite_dir / "etl_results" / "compare"
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for comparison in outcome.comparisons:
        record = comparison.record()
        n_base, n_other = record.pop("n")
        est_base, est_other = record.pop("estimate")
        rows.append({**record, "n_baseline": n_base, "n_other": n_other, "estimate_baseline": est_base,
                     "estimate_other": est_other})
    csv_path = folder / f"{name}.csv"
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(csv_path, buffer.getvalue())
    plot_path = folder / f"{name}.png"
    plot = _ratio_plot(outcome.comparisons, request.metric)

    def write_plot(handle: IO[bytes]) -> None:
        handle.write(plot)

    write_file_atomic(plot_path, write_plot, binary=True)
    return [csv_path, plot_path]


def _ratio_plot(comparisons: list, metric: str) -> bytes:
    import io

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    labels = [", ".join(f"{k}={v}" for k, v in c.key.items()) for c in comparisons]
    figure, axes = plt.subplots(figsize=(7, 0.5 + 0.4 * len(comparisons)))
    for row, comparison in enumerate(comparisons):
        if comparison.ratio is None:
            continue
        low = comparison.ci_low if comparison.ci_low is not None else comparison.ratio
        high = comparison.ci_high if comparison.ci_high is not None else comparison.ratio
        axes.errorbar(comparison.ratio, row, xerr=[[comparison.ratio - low], [high - comparison.ratio]], fmt="o",
                      color={"faster": "tab:green", "slower": "tab:red", "same": "tab:blue"}.get(
                          comparison.verdict, "tab:gray"))
    axes.axvline(1.0, color="black", linewidth=0.8)
    axes.set_yticks(range(len(comparisons)), labels, fontsize=7)
    axes.set_xlabel(f"ratio of {metric} (other / baseline), with its confidence interval")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()


def resolve_suite(project, suite: str, suite_id: str) -> Path:
    from etl.api import resolve_suite_dir
    from etl.errors import EtlConfigError

    try:
        return resolve_suite_dir(project.results_dir, suite, suite_id)
    except EtlConfigError as error:
        raise UserError(error.detail, path="--id" if error.path == "id" else error.path) from None


def print_outcome(outcome: CompareOutcome, console) -> None:
    """A plain aligned table (never wrapped, also into a file or a narrow terminal), then the notes."""
    if not outcome.comparisons:
        console.print("no runs to compare", markup=False)
    else:
        header = [*outcome.comparisons[0].key, "reps (base/other)", "estimate (base -> other)", "ratio", "CI",
                  "p", "p (Holm)", "verdict"]
        rows = [[*(str(value) for value in c.key.values()), f"{c.n_baseline}/{c.n_other}",
                 f"{_number(c.estimate_baseline)} -> {_number(c.estimate_other)}", _number(c.ratio, 3),
                 f"[{_number(c.ci_low, 3)}, {_number(c.ci_high, 3)}]", _number(c.p, 3), _number(c.p_holm, 3),
                 c.verdict] for c in outcome.comparisons]
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            console.print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip(), markup=False,
                          soft_wrap=True)
        console.print(f"geometric mean of the ratios: {_number(outcome.geometric_mean, 3)}", markup=False)
        for c in outcome.comparisons:
            for note in c.notes:
                console.print(f"note: {', '.join(f'{k}={v}' for k, v in c.key.items())}: {note}", markup=False)
    for label, runs in (("only in the baseline", outcome.only_baseline), ("only in the other", outcome.only_other)):
        for key in runs:
            console.print(f"{label}: " + ", ".join(f"{k}={v}" for k, v in key.items()), markup=False)


def _number(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}"
