"""An experiment's adaptive repetitions (`repetitions:` in the design), checked one key at a time.

```yaml
n_repetitions: 5            # the minimum
repetitions:
  max: 40
  metric: {file: output.csv, column: prover_time_ms}   # or {file: runtime_info.yaml, key: wall_seconds}
  statistic: median         # or mean
  target_ci: 0.02           # a run stops when its CI half-width / estimate <= 2 %
  confidence: 0.95
  max_minutes: 120          # optional cap for the experiment
```
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from doe_cli.design.source import Source, describe

REPETITIONS_KEYS = ("max", "metric", "statistic", "target_ci", "confidence", "max_minutes")
METRIC_KEYS = ("file", "column", "key")
STATISTICS = ("median", "mean")
TABLE_SUFFIXES = (".csv", ".tsv")
MAPPING_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class Repetitions:
    max: int
    file: str
    field: str                  # a CSV column or a (dotted) YAML/JSON key
    statistic: str = "median"
    target_ci: float = 0.05
    confidence: float = 0.95
    max_minutes: float | None = None

    @property
    def metric(self) -> str:
        return f"{self.file}:{self.field}"

    def resolved(self) -> dict[str, Any]:
        kind = "column" if self.file.endswith(TABLE_SUFFIXES) else "key"
        out: dict[str, Any] = {"max": self.max, "metric": {"file": self.file, kind: self.field},
                               "statistic": self.statistic, "target_ci": self.target_ci,
                               "confidence": self.confidence}
        if self.max_minutes is not None:
            out["max_minutes"] = self.max_minutes
        return out


def _fraction(source: Source, value: Any, path: tuple, what: str) -> float:
    if type(value) not in (int, float) or not 0 < value < 1:
        raise source.error(path, f"expected {what} between 0 and 1 (exclusive), got {describe(value)}")
    return float(value)


def check_repetitions(source: Source, raw: Any, minimum: int, path: tuple) -> Repetitions:
    if type(raw) is not dict:
        raise source.error(path, f"expected a mapping with keys {', '.join(REPETITIONS_KEYS)}, got {describe(raw)}")
    for key in raw:
        if key not in REPETITIONS_KEYS:
            raise source.error(path + (key,), f"unknown repetitions key {key!r}; expected one of "
                                              f"{', '.join(REPETITIONS_KEYS)}")
    for required in ("max", "metric", "target_ci"):
        if required not in raw:
            raise source.error(path, f"missing required key {required!r}")
    maximum = raw["max"]
    if type(maximum) is not int or maximum < minimum:
        raise source.error(path + ("max",), f"expected an integer >= n_repetitions ({minimum}), "
                                            f"got {describe(maximum)}")
    file, field = _metric(source, raw["metric"], path + ("metric",))
    statistic = raw.get("statistic", "median")
    if statistic not in STATISTICS:
        raise source.error(path + ("statistic",), f"expected one of {', '.join(STATISTICS)}, "
                                                  f"got {describe(statistic)}")
    max_minutes = raw.get("max_minutes")
    if max_minutes is not None and (type(max_minutes) not in (int, float) or not 0 < max_minutes < float("inf")):
        raise source.error(path + ("max_minutes",), f"expected a positive number of minutes, "
                                                    f"got {describe(max_minutes)}")
    return Repetitions(max=maximum, file=file, field=field, statistic=statistic,
                       target_ci=_fraction(source, raw["target_ci"], path + ("target_ci",), "a fraction"),
                       confidence=_fraction(source, raw.get("confidence", 0.95), path + ("confidence",),
                                            "a confidence level"),
                       max_minutes=None if max_minutes is None else float(max_minutes))


def _metric(source: Source, raw: Any, path: tuple) -> tuple[str, str]:
    if type(raw) is not dict:
        raise source.error(path, "expected {file: F.csv, column: C} or {file: F.yaml, key: K}, "
                                 f"got {describe(raw)}")
    for key in raw:
        if key not in METRIC_KEYS:
            raise source.error(path + (key,), f"unknown metric key {key!r}; expected file and column (a CSV "
                                              "file) or key (a YAML/JSON file)")
    file = raw.get("file")
    if not isinstance(file, str) or not file or PurePosixPath(file).is_absolute() \
            or ".." in PurePosixPath(file).parts:
        raise source.error(path + ("file",), f"expected a file name inside the job's host folder, "
                                             f"got {describe(file)}")
    table = file.endswith(TABLE_SUFFIXES)
    if not table and not file.endswith(MAPPING_SUFFIXES):
        raise source.error(path + ("file",), f"expected a .csv, .tsv, .yaml, .yml or .json file, got {file!r}")
    wanted, other = ("column", "key") if table else ("key", "column")
    if other in raw:
        raise source.error(path + (other,), f"a {PurePosixPath(file).suffix} file takes {wanted!r}, not {other!r}")
    field = raw.get(wanted)
    if not isinstance(field, str) or not field:
        raise source.error(path + (wanted,) if wanted in raw else path,
                           f"expected a non-empty {wanted} name for {file}, got {describe(field)}")
    return file, field
