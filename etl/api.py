"""Entry points of the ETL: suite ETL (used by `doe etl` and after a run), all suites, clean, super ETL."""

from __future__ import annotations

import fcntl
import shutil
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from etl import manifest
from etl.errors import EtlConfigError
from etl.fileio import write_text_atomic
from etl.layout import last_suite_id, suite_folder
from etl.report import EtlReport, PipelineOutcome
from etl.suite import (
    ETL_KEY,
    SUITE_DESIGN,
    experiment_factors,
    experiment_host_types,
    experiment_names,
    parse_design,
    read_design_text,
    split_suite_dir,
)

# pandas, pydantic and the steps are imported only when a pipeline runs: a re-run that finds nothing changed
# (see etl.manifest) answers without them.
_LAZY = {"run_super_etl": "etl.super_etl", "parse_suite_id_overrides": "etl.super_etl"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


ETL_RESULTS = "etl_results"
ETL_ERROR_LOG = "ETL_ERROR.log"
CACHE_DIR = ".cache"


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """One ETL at a time per output folder (several controllers may finish jobs at once)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_suite_etl(
    suite_dir: Path | str,
    *,
    config_dir: Path | str | None = None,
    pipelines: list[str] | None = None,
    design_loader: Callable[[str], dict] | None = None,
    etl_section: dict | None = None,
    error_log: bool = False,
) -> EtlReport:
    """Run the pipelines of one suite result folder into `<suite_dir>/etl_results/<pipeline>/`.

    The pipelines come from the stored suite_design.yml, or from `etl_section` (a raw or expanded `$ETL$`
    mapping, e.g. re-read from designs/). `pipelines` selects some by name. Never raises for a pipeline's
    problem: each outcome is ok, skipped (no results yet) or error; with `error_log`, failures are also
    written to `<suite_dir>/ETL_ERROR.log` (removed again after a clean run).

    A re-run that finds nothing changed since the last complete one (see etl.manifest) writes nothing and
    answers with the recorded outcomes.
    """
    started, started_ns = time.perf_counter(), time.time_ns()
    suite_dir = Path(suite_dir)
    report = EtlReport()
    out_root = suite_dir / ETL_RESULTS
    try:
        suite_name, suite_id = split_suite_dir(suite_dir.name)
        design_file = suite_dir / SUITE_DESIGN
        design_text = read_design_text(design_file)
        signature = manifest.signature(suite_dir, design_text, etl_section, pipelines, config_dir)
        manifest_file = manifest.manifest_path(out_root / CACHE_DIR, pipelines, etl_section is not None)
        replayed = manifest.replay(manifest_file, suite_dir, signature) if signature else None
        if replayed is not None:
            for outcome in replayed.outcomes:
                outcome.seconds = time.perf_counter() - started
            if error_log:
                _write_error_log(suite_dir, replayed)
            return replayed
        design = parse_design(design_text, design_file)
        section = design.get(ETL_KEY) if etl_section is None else etl_section
        section = section or {}
        if not isinstance(section, dict):
            raise EtlConfigError(
                "expected a mapping pipeline → pipeline", path=ETL_KEY, file=str(design_file)
            )
        unknown = [name for name in pipelines or [] if name not in section]
        if unknown:
            raise EtlConfigError(f"unknown pipelines {unknown}; the suite has {list(section)}")
    except EtlConfigError as error:
        report.config_error = error
        return report
    from etl.design_section import expand_etl_section
    from etl.extract import ExperimentSource
    from etl.pipeline import build_pipeline
    from etl.registry import load_registry
    from etl.runner import run_pipeline
    from etl.steps.extractors import EtlWarning

    experiments = experiment_names(design)
    factors = experiment_factors(design)
    host_types = experiment_host_types(design)
    registry_dir = Path(config_dir) if config_dir is not None else None
    out_root.mkdir(parents=True, exist_ok=True)
    (out_root / ".gitkeep").touch()
    shared: dict = {}
    empty_experiments: list[Path] = []
    with _locked(out_root):
        manifest_file.unlink(missing_ok=True)
        for name, raw in section.items():
            if pipelines and name not in pipelines:
                continue
            try:
                with warnings.catch_warnings(record=True) as notes:
                    warnings.simplefilter("always", EtlWarning)
                    expanded = expand_etl_section(
                        {name: raw}, experiments, config_dir=registry_dir, design_loader=design_loader
                    )[name]
                    pipeline = build_pipeline(name, expanded, load_registry(registry_dir))
            except EtlConfigError as error:
                report.outcomes.append(PipelineOutcome(name, "error", str(error)))
                continue
            sources = [
                ExperimentSource(
                    suite_name, suite_id, suite_dir, exp, factors.get(exp, ()), host_types.get(exp, ())
                )
                for exp in pipeline.experiments
            ]
            outcome = run_pipeline(
                pipeline,
                sources,
                out_root / name,
                {"suite": suite_name, "suite_id": suite_id},
                cache_dir=out_root / CACHE_DIR,
                shared=shared,
            )
            outcome.warnings[:0] = [str(n.message) for n in notes if issubclass(n.category, EtlWarning)]
            report.outcomes.append(outcome)
            empty_experiments.extend(s.suite_dir / s.exp_name for s in sources if not s.has_results())
        if signature:
            manifest.record(manifest_file, suite_dir, signature, report, empty_experiments, started_ns)
    if error_log:
        _write_error_log(suite_dir, report)
    return report


def _write_error_log(suite_dir: Path, report: EtlReport) -> None:
    log = suite_dir / ETL_ERROR_LOG
    if report.ok:
        log.unlink(missing_ok=True)
    else:
        write_text_atomic(log, "\n".join(report.error_lines()) + "\n")


def suite_result_dirs(results_dir: Path | str) -> list[Path]:
    """Every `<suite>_<id>` folder with a stored design, sorted by suite then numeric id."""
    found = []
    root = Path(results_dir)
    if not root.is_dir():
        return []
    for child in root.iterdir():
        if child.is_dir() and (child / SUITE_DESIGN).is_file():
            try:
                suite, suite_id = split_suite_dir(child.name)
            except EtlConfigError:
                continue
            found.append(
                (
                    (
                        suite,
                        isinstance(suite_id, str),
                        suite_id if isinstance(suite_id, int) else 0,
                        str(suite_id),
                    ),
                    child,
                )
            )
    return [path for _, path in sorted(found)]


def run_all_etl(
    results_dir: Path | str,
    *,
    config_dir: Path | str | None = None,
    design_loader: Callable[[str], dict] | None = None,
) -> dict[Path, EtlReport]:
    return {
        suite_dir: run_suite_etl(suite_dir, config_dir=config_dir, design_loader=design_loader)
        for suite_dir in suite_result_dirs(results_dir)
    }


def clean_suite_etl(suite_dir: Path | str) -> list[Path]:
    """Remove the ETL outputs and cache of a suite result folder; returns what was removed."""
    out_root = Path(suite_dir) / ETL_RESULTS
    removed: list[Path] = []
    if not out_root.is_dir():
        return removed
    with _locked(out_root):
        for child in sorted(out_root.iterdir()):
            if child.name in (".gitkeep", ".lock"):
                continue
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()
            removed.append(child)
    return removed


def resolve_suite_dir(results_dir: Path | str, suite: str, suite_id: str | int) -> Path:
    """`<results>/<suite>_<id>`; `last` is the highest numeric id of that suite."""
    root = Path(results_dir)
    if str(suite_id) == "last":
        last = last_suite_id(root, suite)
        if last is None:
            raise EtlConfigError(
                f"no results for suite {suite!r} in {root}; expected a folder {suite}_<id>", path="id"
            )
        return suite_folder(root, suite, last)
    folder = suite_folder(root, suite, suite_id)
    if not folder.is_dir():
        raise EtlConfigError(f"no result folder {folder.name} in {root}", path="id")
    return folder


__all__ = [
    "clean_suite_etl",
    "parse_suite_id_overrides",  # noqa: F822 - provided lazily by __getattr__
    "resolve_suite_dir",
    "run_all_etl",
    "run_suite_etl",
    "run_super_etl",  # noqa: F822 - provided lazily by __getattr__
    "suite_result_dirs",
]
