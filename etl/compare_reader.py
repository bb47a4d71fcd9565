"""One metric per repetition of every run of a suite, for `doe compare` (the I/O half; etl.comparison
does the statistics).

A metric is `FILE:FIELD`: a CSV file and a column, or a YAML/JSON file and a (dotted) key, looked for in
each host folder of a rep (`<exp>/run_<N>/rep_<R>/<host_type>/host_<H>/FILE`). A rep's value is the
statistic over the rows and hosts that have the file; reps that did not finish (doe's record says so)
do not count. A run's factor values come from its reps' config.json, by the design's factor paths.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from etl.errors import EtlConfigError
from etl.fileio import DOE_RECORD
from etl.layout import HOST, REP, RUN
from etl.suite import SUITE_DESIGN, experiment_factors, factor_values, read_design

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_TABLE_SUFFIXES = (".csv", ".tsv")
RUNTIME_INFO = "runtime_info.yaml"
_MAPPING_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class Metric:
    file: str
    field: str

    @classmethod
    def parse(cls, text: str) -> Metric:
        file, sep, name = text.rpartition(":")
        if not sep or not file or not name:
            raise EtlConfigError(f"expected FILE:COLUMN (e.g. output.csv:time_ms) or FILE:KEY, got {text!r}",
                                 path="--metric")
        if Path(file).is_absolute() or ".." in Path(file).parts:
            raise EtlConfigError(f"the metric's file must be a path inside a host folder, got {file!r}",
                                 path="--metric")
        if not file.endswith(_TABLE_SUFFIXES + _MAPPING_SUFFIXES):
            raise EtlConfigError(f"the metric's file must be .csv, .tsv, .yaml, .yml or .json, got {file!r}",
                                 path="--metric")
        return cls(file, name)

    def __str__(self) -> str:
        return f"{self.file}:{self.field}"


@dataclass
class RunSample:
    exp: str
    run: int
    factors: dict[str, Any]
    values: list[float] = field(default_factory=list)  # one per finished rep that has the metric

    def match_key(self, leave_out: str | None = None) -> tuple:
        """(exp, factor values) as a hashable key; without `leave_out` (the factor compared)."""
        return (self.exp, *(json.dumps(value, sort_keys=True) for name, value in self.factors.items()
                            if name != leave_out))


def read_runs(suite_dir: Path, metric: Metric, reduce: Callable[[list[float]], float]) -> list[RunSample]:
    """Every run of the suite (experiments in design order, runs by number) with its rep values."""
    design = read_design(suite_dir / SUITE_DESIGN)
    samples, found_any = [], False
    for exp, factors in experiment_factors(design).items():
        for run, run_dir in _numbered(suite_dir / exp, RUN):
            sample = None
            for _, rep_dir in _numbered(run_dir, REP):
                if sample is None:
                    sample = RunSample(exp, run, _factor_values(rep_dir, factors))
                values = rep_values(rep_dir, metric, exp, run)
                if values:
                    found_any = True
                    sample.values.append(reduce(values))
            if sample is not None:
                samples.append(sample)
    if not found_any:
        raise EtlConfigError(f"no finished rep of {suite_dir.name} has {metric.file} with {metric.field!r}",
                             path="--metric")
    return samples


def _numbered(folder: Path, pattern) -> Iterator[tuple[int, Path]]:
    try:
        entries = [(int(match.group(1)), entry) for entry in folder.iterdir()
                   if (match := pattern.match(entry.name)) and entry.is_dir()]
    except OSError:
        return iter(())
    return iter(sorted(entries))


def _factor_values(rep_dir: Path, factors: tuple[str, ...]) -> dict[str, Any]:
    try:
        config = json.loads((rep_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = {}
    return factor_values(config, factors)


def rep_values(rep_dir: Path, metric: Metric, exp: str, run: int) -> list[float]:
    """The metric's values over the rows and hosts of one rep; none if the rep failed on any host.
    `runtime_info.yaml` is doe's record of the job (.doe_runtime_info.yaml) where the job wrote none."""
    values: list[float] = []
    for host_type_dir in sorted(path for path in rep_dir.iterdir() if path.is_dir()):
        for _, host_dir in _numbered(host_type_dir, HOST):
            if not _finished(host_dir):
                return []  # a rep that failed on any host does not count
            path = host_dir / metric.file
            if metric.file == RUNTIME_INFO and not path.is_file():
                path = host_dir / DOE_RECORD
            if path.is_file():
                values.extend(_read_values(path, metric, f"{exp} run {run} {rep_dir.name}"))
    return values


def _finished(host_dir: Path) -> bool:
    try:
        record = yaml.load((host_dir / DOE_RECORD).read_text(encoding="utf-8"), Loader=_YAML_LOADER)
    except (OSError, yaml.YAMLError):
        return True  # no record of doe's (results from elsewhere): the file decides
    return not isinstance(record, dict) or record.get("status", "finished") == "finished"


def _read_values(path: Path, metric: Metric, where: str) -> list[float]:
    if path.suffix in _TABLE_SUFFIXES:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle, delimiter="\t" if path.suffix == ".tsv" else ",")
            if metric.field not in (reader.fieldnames or []):
                raise EtlConfigError(f"{where}: {path.name} has no column {metric.field!r} "
                                     f"(columns: {', '.join(reader.fieldnames or [])})", path="--metric")
            raw = [row[metric.field] for row in reader]
    else:
        try:
            text = path.read_text(encoding="utf-8")
            content = json.loads(text) if path.suffix == ".json" else yaml.load(text, Loader=_YAML_LOADER)
        except (ValueError, yaml.YAMLError) as error:
            raise EtlConfigError(f"{where}: {path.name} cannot be read: {' '.join(str(error).split())}",
                                 path="--metric") from None
        value: Any = content
        for part in metric.field.split("."):
            if not isinstance(value, dict) or part not in value:
                raise EtlConfigError(f"{where}: {path.name} has no key {metric.field!r}", path="--metric")
            value = value[part]
        raw = [value]
    values = []
    for item in raw:
        try:
            number = float(item)
        except (TypeError, ValueError):
            raise EtlConfigError(f"{where}: {path.name} {metric.field!r} is not a number: {item!r}",
                                 path="--metric") from None
        if math.isfinite(number):
            values.append(number)
    return values
