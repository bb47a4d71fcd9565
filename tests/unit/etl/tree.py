"""Writes small result trees (the layout `doe run` produces) for the ETL tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import yaml

Files = Callable[[str, int, int, str, int], dict[str, str]]


def csv_text(header: list[str], rows: list[list]) -> str:
    return "\n".join([",".join(header), *(",".join(str(v) for v in row) for row in rows)]) + "\n"


def runtime_info(host: str, host_type: str, idx: int, wall: float, rss: int, code: int = 0) -> str:
    return (
        f"start_time: '2026-01-01T00:00:00Z'\nend_time: '2026-01-01T00:00:{int(wall):02d}Z'\n"
        f"wall_seconds: {wall}\nmax_rss_kb: {rss}\nexit_code: {code}\n"
        f"status: {'finished' if code == 0 else 'failed'}\nhost: {host}\nhost_type: {host_type}\n"
        f"host_idx: {idx}\n"
    )


def write_suite(
    results: Path,
    suite: str,
    suite_id: int,
    design: dict,
    run_configs: dict[str, list[dict]],
    files: Files,
    reps: int = 2,
    hosts: dict[str, int] | None = None,
) -> Path:
    """A suite result folder: suite_design.yml, per rep config.json, per job the files from `files`."""
    suite_dir = results / f"{suite}_{suite_id}"
    suite_dir.mkdir(parents=True)
    (suite_dir / "suite_design.yml").write_text(yaml.safe_dump(design, sort_keys=False))
    for exp, configs in run_configs.items():
        for run, config in enumerate(configs):
            for rep in range(reps):
                rep_dir = suite_dir / exp / f"run_{run}" / f"rep_{rep}"
                rep_dir.mkdir(parents=True)
                (rep_dir / "config.json").write_text(json.dumps(config, indent=4, sort_keys=True))
                for host_type, count in (hosts or {"client": 1}).items():
                    for idx in range(count):
                        host_dir = rep_dir / host_type / f"host_{idx}"
                        host_dir.mkdir(parents=True)
                        for name, text in files(exp, run, rep, host_type, idx).items():
                            (host_dir / name).parent.mkdir(parents=True, exist_ok=True)
                            (host_dir / name).write_text(text)
    return suite_dir


def age_tree(root: Path, seconds: float = 3600) -> None:
    """Move every mtime under `root` into the past: the cache does not trust entries changed a moment ago."""
    import os
    import time

    past = time.time() - seconds
    for path in [root, *root.rglob("*")]:
        os.utime(path, (past, past))
