"""The names of the results tree, in one place: doe_cli writes the tree, etl reads it.

    <results>/<suite>_<id>/<exp>/run_<N>/rep_<R>/<host_type>/host_<H>/

A suite folder is `<suite>_<id>` with a numeric id (doe's ids are the Unix time a suite was started);
`last` is a suite's highest id. Imports nothing of doe_cli, which imports this.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

_SUITE_FOLDER = re.compile(r"^(?P<suite>.+)_(?P<id>[0-9]+)$")
_RESULT_FOLDER = re.compile(r"^(?P<suite>.+)_(?P<id>[^_]+)$")
RUN = re.compile(r"^run_(\d+)$")
REP = re.compile(r"^rep_(\d+)$")
HOST = re.compile(r"^host_(\d+)$")

JobKey = tuple[int, int]  # (run, repetition)


class SuiteRun(NamedTuple):
    suite: str
    suite_id: int
    folder: Path


def suite_folder_name(suite: str, suite_id: int | str) -> str:
    return f"{suite}_{suite_id}"


def suite_folder(results_dir: Path, suite: str, suite_id: int | str) -> Path:
    return Path(results_dir) / suite_folder_name(suite, suite_id)


def parse_suite_folder(name: str) -> tuple[str, int] | None:
    """(suite, id) of a folder name `<suite>_<digits>`, else None."""
    match = _SUITE_FOLDER.match(name)
    return (match["suite"], int(match["id"])) if match else None


def parse_result_folder(name: str) -> tuple[str, int | str] | None:
    """(suite, id) of any `<suite>_<id>` folder the ETL reads, split at the last `_`: an id doe did not
    make (a folder renamed by hand) stays a string."""
    match = _RESULT_FOLDER.match(name)
    if match is None:
        return None
    suite_id = match["id"]
    return match["suite"], int(suite_id) if suite_id.isdigit() else suite_id


def suite_runs(results_dir: Path, suite: str | None = None) -> list[SuiteRun]:
    """Every suite folder (of one suite, if given), oldest id first."""
    root = Path(results_dir)
    if not root.is_dir():
        return []
    found = []
    for folder in root.iterdir():
        parsed = parse_suite_folder(folder.name)
        if parsed is not None and (suite is None or parsed[0] == suite) and folder.is_dir():
            found.append(SuiteRun(parsed[0], parsed[1], folder))
    return sorted(found, key=lambda run: (run.suite_id, run.suite))


def last_suite_id(results_dir: Path, suite: str) -> int | None:
    """The suite's highest id (`--id last`), None without any folder of it."""
    runs = suite_runs(results_dir, suite)
    return runs[-1].suite_id if runs else None


def job_dir(exp: str, key: JobKey) -> str:
    """A job's folder relative to the suite folder, the same on the controller and on hosts."""
    return f"{exp}/{job_key_text(key)}"


def job_key_text(key: JobKey) -> str:
    return f"run_{key[0]}/rep_{key[1]}"


def parse_job_key(text: str) -> JobKey:
    """(run, rep) of `run_<N>/rep_<R>`, also at the end of a longer path such as `<exp>/run_<N>/rep_<R>`."""
    run, rep = text.rsplit("/", 2)[-2:]
    return int(run.removeprefix("run_")), int(rep.removeprefix("rep_"))


def host_dir_name(host_idx: int) -> str:
    return f"host_{host_idx}"
