"""`doe compare` on suites run for real on the local cloud."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.integration.run.conftest import Doe, make_config_dir

pytestmark = pytest.mark.tsp

# Variant b takes 30% longer than a; the noise is +-2%, seeded by the variant and the rep (from the job's
# folder), so two runs of the suite measure the same values and their comparison is always A/A.
TIMED = """
timed:
  n_repetitions: 6
  host_types:
    small:
      $CMD$: >-
        python3 -c "import os, random; random.seed('[% my_run.variant %]' + os.getcwd().rsplit('/rep_', 1)[1]);
        f = 1.3 if '[% my_run.variant %]' == 'b' else 1.0;
        print('time_ms'); print(100 * f * random.uniform(0.98, 1.02))" > results/output.csv
  base_experiment:
    size: 1
    variant: $FACTOR$
  factor_levels:
    - variant: a
    - variant: b
"""


@pytest.fixture(scope="module")
def doe(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    local = Path(tempfile.mkdtemp(prefix="doe-cmp-", dir="/tmp"))  # task spooler sockets need short paths
    doe = Doe(make_config_dir(root, {"timed": TIMED}), root / "results", local)
    doe("run", "--suite", "timed", "--id", "new")
    doe("run", "--suite", "timed", "--id", "new")
    yield doe
    shutil.rmtree(local, ignore_errors=True)


def test_compare_by_a_factor_finds_the_slower_level_and_writes_its_table_and_plot(doe):
    done = doe("compare", "--suite", "timed", "--by", "variant", "--metric", "output.csv:time_ms",
               "--format", "json")
    (record,) = json.loads(done.stdout)
    assert record["variant"] == "b" and record["n"] == [6, 6] and record["verdict"] == "slower", record
    assert 1.2 < record["ci_low"] < record["ratio"] < record["ci_high"] < 1.4
    suite_dir = sorted(doe.results.glob("timed_*"))[-1]
    table = (suite_dir / "etl_results" / "compare" / "by_variant.csv").read_text()
    assert table.splitlines()[0].startswith("exp,variant,ratio,ci_low,ci_high,p,p_holm,verdict") and ",slower," in table
    assert (suite_dir / "etl_results" / "compare" / "by_variant.png").read_bytes()[:4] == b"\x89PNG"
    text = doe("compare", "--suite", "timed", "--by", "variant", "--baseline", "b",
               "--metric", "output.csv:time_ms").stdout
    assert "faster" in text and "geometric mean of the ratios" in text


def test_compare_across_two_runs_of_one_suite_matches_runs_by_factor_values(doe):
    first, second = sorted(doe.results.glob("timed_*"))
    done = doe("compare", "--suite", "timed", "--id", first.name.rsplit("_", 1)[1], "--to-suite", "timed",
               "--to-id", second.name.rsplit("_", 1)[1], "--metric", "output.csv:time_ms", "--format", "json")
    records = json.loads(done.stdout)
    assert sorted(record["variant"] for record in records) == ["a", "b"]
    assert all(record["verdict"] in ("same", "inconclusive") for record in records), records
    assert all(0.95 < record["ratio"] < 1.05 for record in records), records


@pytest.mark.parametrize(("args", "expected"), [
    (["--by", "variant", "--metric", "output.csv"], "--metric: expected FILE:COLUMN"),
    (["--by", "variant", "--metric", "output.csv:nope"], "has no column 'nope'"),
    (["--by", "colour", "--metric", "output.csv:time_ms"], "--by: no experiment of the suite has the factor 'colour'"),
    (["--by", "variant", "--baseline", "z", "--metric", "output.csv:time_ms"], "variant has no level 'z'"),
    (["--metric", "output.csv:time_ms"], "expected exactly one of --to-suite SUITE and --by FACTOR"),
    (["--by", "variant", "--id", "42", "--metric", "output.csv:time_ms"], "no result folder timed_42"),
])
def test_bad_input_is_one_line_and_exit_two(doe, args, expected):
    done = doe("compare", "--suite", "timed", *args, check=False)
    assert done.returncode == 2, done.stderr
    assert expected in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
