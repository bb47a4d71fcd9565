"""`doe run --keep`, `doe clean --cloud local` and `doe run --timeout` on the local cloud (real tsp and Ansible)."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from doe_cli.run.ansible_env import control_path_dir
from tests.integration.run.conftest import Doe, make_config_dir, tsp_servers_under, wait_for

pytestmark = [pytest.mark.tsp, pytest.mark.slow]

KEPT = """
kept:
  host_types:
    small:
      $CMD$: echo "[% my_run.i %]" >> "{shared}/kept.log"
  base_experiment:
    i:
      $FACTOR$: [1, 2]
"""

GATED = """
gated:
  host_types:
    small:
      $CMD$: while [ ! -e "{shared}/go" ]; do sleep 0.05; done; echo "[% my_run.i %]" >> "{shared}/gated.log"
  base_experiment:
    i:
      $FACTOR$: [1, 2]
"""

# Each job waits for its own gate file: one can finish while the controller is away and the other waits.
GATED_EACH = """
gated_each:
  host_types:
    small:
      $CMD$: >-
        while [ ! -e "{shared}/go_[% my_run.i %]" ]; do sleep 0.05; done;
        echo "[% my_run.i %]" >> "{shared}/gated_each.log"; echo "ran [% my_run.i %]"
  base_experiment:
    i:
      $FACTOR$: [1, 2]
"""

# Two experiments whose jobs log when they start and end.
TWO = """
first:
  host_types:
    small:
      $CMD$: echo "first start $(date +%s.%N)" >> "{shared}/{name}.log"; sleep 1.5; echo "first end $(date +%s.%N)" >> "{shared}/{name}.log"
  base_experiment:
    i: 1
second:
  host_types:
    small:
      $CMD$: echo "second start $(date +%s.%N)" >> "{shared}/{name}.log"; sleep 1.5; echo "second end $(date +%s.%N)" >> "{shared}/{name}.log"
  base_experiment:
    i: 1
"""


@pytest.fixture(scope="module")
def doe(short_tmp) -> Doe:
    root = short_tmp / "options"
    shared = root / "shared"
    shared.mkdir(parents=True)
    config = make_config_dir(root, {"kept": KEPT.format(shared=shared), "gated": GATED.format(shared=shared),
                                     "gated_each": GATED_EACH.format(shared=shared),
                                     "two": TWO.format(shared=shared, name="two"),
                                     "two_parallel": TWO.format(shared=shared, name="two_parallel")})
    env = Doe(config, root / "results", root / "hosts")
    env.shared = shared
    return env


def test_keep_leaves_the_hosts_and_clean_removes_them_but_not_the_results(doe):
    traced = doe("-v", "run", "--suite", "kept", "--id", "new", "--keep")
    # -v: a line per Ansible run, with its status and seconds.
    assert re.search(r"^ansible: setup-and-enqueue\.yml on all hosts: successful in [0-9.]+ s$", traced.stderr, re.M)
    suite_dir = doe.suite_dir("kept")
    host_folder = doe.local / suite_dir.name / "kept-small-0"
    assert (host_folder / "bin" / "doe_queue.py").is_file()
    assert tsp_servers_under(doe.local), "the kept host's queue should still run"

    listed = doe("clean", "--cloud", "local", "--suite", "kept", "--id", "last", "--dry-run")
    assert f"{suite_dir.name}: 1 local host(s) (kept-small-0)" in listed.stdout
    assert host_folder.is_dir() and tsp_servers_under(doe.local)  # a dry run changes nothing

    declined = doe("clean", "--cloud", "local", "--suite", "kept", "--id", "last", answer="n\n", check=False)
    assert declined.returncode == 1 and f"{suite_dir.name}: 1 local host(s) (kept-small-0)" in declined.stdout
    assert declined.stderr.strip().endswith("error: nothing deleted: not confirmed (--yes deletes without asking)")
    assert host_folder.is_dir() and tsp_servers_under(doe.local)  # declined: nothing changed

    doe("clean", "--cloud", "local", "--suite", "kept", "--id", "last", answer="y\n")
    assert not host_folder.exists()
    wait_for(lambda: tsp_servers_under(doe.local) == [], timeout=30, what="the queue to stop")
    outputs = sorted(p.read_text() for p in suite_dir.glob("kept/run_*/rep_0/small/host_0/stdout.log"))
    assert outputs == ["", ""] and sorted((doe.shared / "kept.log").read_text().split()) == ["1", "2"]
    again = doe("clean", "--cloud", "local")
    assert again.stdout == "" and "stopped the queues of 0 host(s) of 0 suite run(s)" in again.stderr


def test_timeout_stops_waiting_while_jobs_keep_running_and_a_resume_finishes(doe):
    stopped = doe("run", "--suite", "gated", "--id", "new", "--timeout", "1", check=False)
    assert stopped.returncode == 1, stopped.stderr
    suite_dir = doe.suite_dir("gated")
    assert f"stopped after --timeout 1 s; the queued jobs keep running; resume with: doe run --suite gated --id " \
           f"{suite_dir.name.rsplit('_', 1)[1]}" in stopped.stderr
    assert "Traceback" not in stopped.stderr
    state = yaml.safe_load((suite_dir / "gated" / "state.yml").read_text())
    assert len(state["exp_job_ids_queued"]) == 2 and not state["exp_job_ids_finished"]
    assert next(doe.local.glob(f"{suite_dir.name}/*/results/gated/run_*/rep_0/.doe_started"), None) is not None

    (doe.shared / "go").touch()
    doe("run", "--suite", "gated", "--id", "last")
    assert sorted((doe.shared / "gated.log").read_text().split()) == ["1", "2"]  # each job ran once
    state = yaml.safe_load((suite_dir / "gated" / "state.yml").read_text())
    assert len(state["exp_job_ids_finished"]) == 2
    assert not (doe.local / suite_dir.name).exists()  # a finished run removes its hosts
    assert not control_path_dir(suite_dir, create=False).exists()  # and its (unused) SSH socket folder



def test_clean_fetches_what_finished_before_it_removes_the_hosts(doe):
    stopped = doe("run", "--suite", "gated_each", "--id", "new", "--timeout", "1", check=False)
    assert stopped.returncode == 1, stopped.stderr
    suite_dir = doe.suite_dir("gated_each")
    (doe.shared / "go_1").touch()  # job 1 finishes on its host while no controller runs
    wait_for(lambda: next(doe.local.glob(f"{suite_dir.name}/*/results/gated_each/run_0/rep_0/.doe_done"), None),
             timeout=30, what="job 1 done on its host")

    listed = doe("clean", "--cloud", "local", "--suite", "gated_each", "--id", "last", "--dry-run")
    assert "would fetch 1 finished job(s) and drop 1 queued or running job(s)" in listed.stdout
    assert not (suite_dir / "gated_each/run_0/rep_0/small/host_0").exists()  # a dry run fetches nothing

    cleaned = doe("clean", "--cloud", "local", "--suite", "gated_each", "--id", "last", "--yes")
    assert "fetched 1 finished job(s)" in cleaned.stdout
    assert (suite_dir / "gated_each/run_0/rep_0/small/host_0/stdout.log").read_text() == "ran 1\n"
    assert not (doe.local / suite_dir.name).exists()
    status = json.loads(doe("status", "--suite", "gated_each", "--id", "last", "--json").stdout)
    assert (status["experiments"]["gated_each"]["finished"], status["experiments"]["gated_each"]["queued"]) == (1, 1)

    (doe.shared / "go_2").touch()
    doe("run", "--suite", "gated_each", "--id", "last")
    assert sorted((doe.shared / "gated_each.log").read_text().split()) == ["1", "2"]  # job 1 did not run again


def times(doe, suite: str) -> dict[str, float]:
    return {f"{exp} {event}": float(at) for exp, event, at in
            (line.split() for line in (doe.shared / f"{suite}.log").read_text().splitlines())}


def test_the_local_cloud_runs_one_experiment_at_a_time_unless_asked_for_parallel(doe):
    doe("run", "--suite", "two", "--id", "new")
    one_by_one = times(doe, "two")
    assert one_by_one["second start"] >= one_by_one["first end"]  # no timing disturbed by the other experiment
    doe("run", "--suite", "two_parallel", "--id", "new", "--parallel")
    together = times(doe, "two_parallel")
    assert together["second start"] < together["first end"] and together["first start"] < together["second end"]
