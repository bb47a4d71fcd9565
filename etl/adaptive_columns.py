"""Adaptive repetitions in the ETL: per run, what `<exp>/adaptive.json` (written by `doe run`) says as
columns of every row of that run: adaptive_n (values the estimate has), adaptive_estimate,
adaptive_ci_low, adaptive_ci_high and adaptive_status (adapting, converged, max reached, time cap,
metric error). Experiments without adaptive repetitions get no such columns."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from etl.errors import EtlDataError

SUMMARY_FILE = "adaptive.json"
FIELDS = ("n", "estimate", "ci_low", "ci_high", "status")


def read_summary(exp_dir: Path) -> tuple[tuple[int, int], dict[int, dict]] | None:
    """(the file's stamp, per run its entry), or None without adaptive repetitions."""
    path = exp_dir / SUMMARY_FILE
    try:
        stat = os.stat(path)
        content = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise EtlDataError(f"{path}: cannot read the adaptive repetitions: {error}") from None
    runs = content.get("runs") if isinstance(content, dict) else None
    if not isinstance(runs, dict):
        raise EtlDataError(f"{path}: runs: expected a mapping of runs to their estimates")
    return (stat.st_size, stat.st_mtime_ns), {int(run): entry for run, entry in runs.items()
                                              if isinstance(entry, dict)}


def with_adaptive_columns(frame: pd.DataFrame, runs: dict[int, dict]) -> pd.DataFrame:
    if "run" not in frame.columns:
        return frame
    keys = pd.to_numeric(frame["run"], errors="coerce")
    return frame.assign(**{f"adaptive_{name}": keys.map({run: entry.get(name) for run, entry in runs.items()})
                           for name in FIELDS})
