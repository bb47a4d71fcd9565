"""Fixtures for the ETL unit tests: a small two-experiment suite result tree."""

from __future__ import annotations

import pytest

from tests.unit.etl.tree import csv_text, runtime_info, write_suite

SUITE_ID = 1700000000
STEPS = {"CsvExtractor": {}, "ErrorExtractor": {}, "IgnoreExtractor": {}}


def design(pipelines: dict) -> dict:
    return {
        "alpha": {
            "n_repetitions": 2,
            "host_types": {"client": {"n": 1}},
            "base_experiment": {"size": {"$FACTOR$": [1, 2]}, "opt": {"mode": "$FACTOR$", "seed": 7}},
            "factor_levels": [{"opt": {"mode": "fast"}}],
        },
        "beta": {
            "n_repetitions": 2,
            "host_types": {"client": {"n": 1}},
            "base_experiment": {"threads": {"$FACTOR$": [4]}},
        },
        "$ETL$": pipelines,
    }


RUN_CONFIGS = {
    "alpha": [
        {"size": size, "opt": {"mode": "fast", "seed": 7}, "$CMD$": {"client": [{"main": "bench"}]}}
        for size in (1, 2)
    ],
    "beta": [{"threads": 4, "$CMD$": {"client": [{"main": "bench -t 4"}]}}],
}


def job_files(exp: str, run: int, rep: int, host_type: str, idx: int) -> dict[str, str]:
    base = {"alpha": 10, "beta": 100}[exp] + run * 10
    return {
        "results.csv": csv_text(
            ["op", "lat", "ok"], [["read", base + rep, "yes"], ["write", base + 2 * rep + 1, "no"]]
        ),
        "stdout.log": "done\n",
        "stderr.log": "",
        ".doe_runtime_info.yaml": runtime_info(
            f"{exp}-{host_type}-{idx}", host_type, idx, 1.0 + rep, 2048 + rep, 0
        ),
    }


@pytest.fixture
def make_suite(tmp_path):
    """make_suite(pipelines, files=job_files, suite="demo", suite_id=SUITE_ID) -> suite result folder."""

    def make(pipelines: dict, files=job_files, suite: str = "demo", suite_id: int = SUITE_ID, **kwargs):
        return write_suite(
            tmp_path / "results", suite, suite_id, design(pipelines), RUN_CONFIGS, files, **kwargs
        )

    return make
