"""Super ETL: pipelines over experiments of several suites (`super_etl/<config>.yml`).

```yaml
$SUITE_ID$: {suiteA: 1700000000, suiteB: {$DEFAULT$: 1700000001, exp2: 1700000002}}
$ETL$:
  combined:
    experiments: {suiteA: "*", suiteB: [exp1, exp2]}
    extractors: {CsvExtractor: {}}
    loaders: {CsvSummaryLoader: {}}
```
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from etl.design_section import expand_pipeline
from etl.errors import EtlConfigError
from etl.extract import ExperimentSource
from etl.layout import suite_folder
from etl.pipeline import build_pipeline
from etl.registry import load_registry
from etl.report import EtlReport, PipelineOutcome
from etl.runner import run_pipeline
from etl.suite import (
    SUITE_DESIGN,
    experiment_factors,
    experiment_host_types,
    experiment_names,
    read_design,
)

SUITE_ID = "$SUITE_ID$"
DEFAULT = "$DEFAULT$"
CACHE_DIR = ".cache"


def config_file(config_dir: Path, config: str) -> Path:
    base = Path(config_dir) / "super_etl"
    for candidate in (base / config, base / f"{config}.yml", base / f"{config}.yaml"):
        if candidate.is_file():
            return candidate
    known = sorted(p.stem for p in base.glob("*.yml")) if base.is_dir() else []
    raise EtlConfigError(
        f"no super ETL config {config!r}; expected super_etl/{config}.yml "
        f"(configs: {', '.join(known) or 'none'})",
        path="config",
    )


def parse_suite_id_overrides(items: list[str] | None) -> dict[str, Any] | None:
    """`["s=1700000000", ...]` → {"s": 1700000000}."""
    if not items:
        return None
    overrides: dict[str, Any] = {}
    for item in items:
        suite, sep, suite_id = item.partition("=")
        if not sep or not suite or not suite_id:
            raise EtlConfigError(f"expected suite=id, got {item!r}", path="suite-id")
        overrides[suite] = int(suite_id) if suite_id.isdigit() else suite_id
    return overrides


def _suite_ids(raw: Any, file: str) -> dict[str, dict[str, Any]]:
    """$SUITE_ID$ → {suite: {"$DEFAULT$": id, exp: id, ...}}."""
    if not isinstance(raw, dict) or not raw:
        raise EtlConfigError(
            "expected a mapping suite → id or {$DEFAULT$: id, <exp>: id}", path=SUITE_ID, file=file
        )
    ids: dict[str, dict[str, Any]] = {}
    for suite, value in raw.items():
        if isinstance(value, (int, str)) and not isinstance(value, bool):
            ids[suite] = {DEFAULT: value}
        elif (
            isinstance(value, dict)
            and value
            and all(isinstance(v, (int, str)) and not isinstance(v, bool) for v in value.values())
        ):
            ids[suite] = dict(value)
        else:
            raise EtlConfigError(
                f"expected an id or a mapping {{$DEFAULT$: id, <exp>: id}}, got {value!r}",
                path=f"{SUITE_ID}.{suite}",
                file=file,
            )
    return ids


def _suite_id_for(ids: dict[str, Any], exp: str) -> Any:
    return ids.get(exp, ids.get(DEFAULT))


class _Results:
    """Stored designs of the result folders, read once."""

    def __init__(self, results_dir: Path) -> None:
        self.results_dir = results_dir
        self.designs: dict[Path, dict] = {}

    def design(self, suite: str, suite_id: Any, path: str) -> tuple[Path, dict]:
        folder = suite_folder(self.results_dir, suite, suite_id)
        if folder not in self.designs:
            if not (folder / SUITE_DESIGN).is_file():
                raise EtlConfigError(
                    f"suite {suite} has no results with id {suite_id} "
                    f"(expected {folder.name}/{SUITE_DESIGN} in the results folder)",
                    path=path,
                )
            self.designs[folder] = read_design(folder / SUITE_DESIGN)
        return folder, self.designs[folder]


def _sources(
    name: str,
    experiments: Any,
    ids: dict[str, dict[str, Any]],
    results: _Results,
    overrides: dict[str, Any] | None,
) -> list[ExperimentSource]:
    path = f"$ETL$.{name}.experiments"
    if not isinstance(experiments, dict) or not experiments:
        raise EtlConfigError('expected a mapping suite → "*" or a list of experiments', path=path)
    sources = []
    for suite, selection in experiments.items():
        if overrides is not None and suite not in overrides:
            continue
        if suite not in ids:
            raise EtlConfigError(f"suite {suite} has no id in $SUITE_ID$", path=f"{path}.{suite}")
        suite_ids = {DEFAULT: overrides[suite]} if overrides is not None else ids[suite]
        if selection == "*":
            if DEFAULT not in suite_ids:
                exps = [e for e in suite_ids if e != DEFAULT]
            else:
                _, design = results.design(suite, suite_ids[DEFAULT], f"{path}.{suite}")
                exps = experiment_names(design)
        elif isinstance(selection, list) and all(isinstance(e, str) for e in selection):
            exps = list(dict.fromkeys(selection))
        else:
            raise EtlConfigError(
                f'expected "*" or a list of experiments, got {selection!r}', path=f"{path}.{suite}"
            )
        for exp in exps:
            suite_id = _suite_id_for(suite_ids, exp)
            if suite_id is None:
                raise EtlConfigError(
                    f"no id for experiment {exp} (no $DEFAULT$ either)", path=f"{SUITE_ID}.{suite}"
                )
            folder, design = results.design(suite, suite_id, f"{path}.{suite}")
            if exp not in experiment_names(design):
                raise EtlConfigError(
                    f"suite {suite} id {suite_id} has no experiment {exp}; it has {experiment_names(design)}",
                    path=f"{path}.{suite}",
                )
            sources.append(
                ExperimentSource(
                    suite,
                    suite_id,
                    folder,
                    exp,
                    experiment_factors(design).get(exp, ()),
                    experiment_host_types(design).get(exp, ()),
                )
            )
    return sources


def run_super_etl(
    config: str,
    *,
    config_dir: Path | str,
    results_dir: Path | str,
    out_dir: Path | str | None = None,
    pipelines: list[str] | None = None,
    suite_ids: dict[str, Any] | None = None,
    design_loader: Callable[[str], dict] | None = None,
    config_level: bool = True,
    pipeline_level: bool = True,
) -> EtlReport:
    """Run `super_etl/<config>.yml` into `<out>/<config>/<pipeline>/` (out defaults to `<results>-super`);
    `config_level` / `pipeline_level` False drop that folder level."""
    config_dir = Path(config_dir)
    results_dir = Path(results_dir)
    report = EtlReport()
    try:
        file = config_file(config_dir, config)
        try:
            document = yaml.safe_load(file.read_text(encoding="utf-8"))
        except yaml.YAMLError as error:
            raise EtlConfigError(
                f"is not valid YAML: {' '.join(str(error).split())}", file=str(file)
            ) from None
        if not isinstance(document, dict):
            raise EtlConfigError("expected a mapping with $SUITE_ID$ and $ETL$", file=str(file))
        unknown_keys = [key for key in document if key not in (SUITE_ID, "$ETL$")]
        if unknown_keys:
            raise EtlConfigError(
                f"unknown keys {unknown_keys}; expected $SUITE_ID$ and $ETL$", file=str(file)
            )
        ids = _suite_ids(document.get(SUITE_ID), str(file))
        section = document.get("$ETL$") or {}
        if not isinstance(section, dict):
            raise EtlConfigError("expected a mapping pipeline → pipeline", path="$ETL$", file=str(file))
        unknown = [name for name in pipelines or [] if name not in section]
        if unknown:
            raise EtlConfigError(
                f"unknown pipelines {unknown}; {file.name} has {list(section)}", path="pipelines"
            )
    except EtlConfigError as error:
        report.config_error = error
        return report
    out_root = Path(out_dir) if out_dir is not None else results_dir.with_name(results_dir.name + "-super")
    if config_level:
        out_root = out_root / file.stem
    results = _Results(results_dir)
    shared: dict = {}
    for name, raw in section.items():
        if pipelines and name not in pipelines:
            continue
        try:
            steps = expand_pipeline(
                name, raw, prefix="$ETL$", config_dir=config_dir, design_loader=design_loader
            )
            pipeline = build_pipeline(
                name, {"experiments": raw.get("experiments"), **steps}, load_registry(config_dir)
            )
            sources = _sources(name, raw.get("experiments"), ids, results, suite_ids)
        except EtlConfigError as error:
            error.file = error.file or str(file)
            report.outcomes.append(PipelineOutcome(name, "error", error.format()))
            continue
        suites = list(dict.fromkeys(s.suite_name for s in sources))
        suite_id_text = list(dict.fromkeys(str(s.suite_id) for s in sources))
        info = {"suite": "_".join(suites), "suite_id": "_".join(suite_id_text), "config": file.stem}
        report.outcomes.append(
            run_pipeline(
                pipeline,
                sources,
                out_root / name if pipeline_level else out_root,
                info,
                cache_dir=out_root / CACHE_DIR,
                shared=shared,
            )
        )
    return report
