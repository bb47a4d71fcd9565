"""`job_timeout` in the design: a hanging job is killed after the experiment's limit and recorded as
`timeout`, even though group_vars allow it far longer; the suite goes on (local cloud, real tsp)."""

from __future__ import annotations

import pytest
import yaml

from tests.integration.run.conftest import Doe, make_config_dir, process_gone

pytestmark = [pytest.mark.tsp, pytest.mark.slow]

HANGING = """
hanging:
  job_timeout: 1.5
  host_types:
    small:
      $CMD$: >-
        if [ [% my_run.k %] = 0 ]; then echo $$ > results/hang.pid; exec sleep 600; fi; echo ok
  base_experiment:
    k:
      $FACTOR$: [0, 1]
"""


def read_yaml(path):
    return yaml.safe_load(path.read_text())


def test_the_designs_job_timeout_kills_a_hanging_job_and_the_suite_goes_on(short_tmp):
    root = short_tmp / "job_timeout"
    config = make_config_dir(root, {"hanging": HANGING})
    # group_vars would allow ten minutes: the design's limit wins.
    (config / "group_vars" / "all" / "main.yml").write_text("prj_id: doe_test\njob_timeout: 600\n")
    doe = Doe(config, root / "results", root / "hosts")
    done = doe("run", "--suite", "hanging", "--id", "new", check=False)
    assert done.returncode == 1, done.stderr  # the timed-out job counts as failed
    suite_dir = doe.suite_dir("hanging")
    hung = suite_dir / "hanging/run_0/rep_0/small/host_0"
    info = read_yaml(hung / ".doe_runtime_info.yaml")
    assert info["status"] == "timeout" and 1.5 <= info["wall_seconds"] < 60
    assert process_gone(int((hung / "hang.pid").read_text()))
    state = read_yaml(suite_dir / "hanging/state.yml")["jobs"]
    assert state["run_0/rep_0"]["status"] == "failed" and state["run_1/rep_0"]["status"] == "finished"
    assert (suite_dir / "hanging/run_1/rep_0/small/host_0/stdout.log").read_text() == "ok\n"
    assert read_yaml(suite_dir / "suite_design.yml")["hanging"]["job_timeout"] == 1.5
