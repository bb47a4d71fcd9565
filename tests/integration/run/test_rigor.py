"""`order: rmit` and adaptive repetitions on the local cloud (real ansible-playbook, real tsp): the jobs
start in the recorded rounds, a resume after SIGKILL keeps the drawn seed and rounds, and reps are added
only until each run converged, reached max, or could not be read."""

from __future__ import annotations

import json
import os
import signal

import pytest
import yaml

from doe_cli.run.order import permutation, rmit_rounds, round_jobs
from tests.integration.run.conftest import Doe, make_config_dir, wait_for

pytestmark = [pytest.mark.tsp, pytest.mark.slow]

KINDS = ["quiet", "noisy", "broken", "flaky"]
ADAPTIVE = """
adaptive:
  n_repetitions: 3
  order: rmit
  repetitions:
    max: 8
    metric: {{file: output.csv, column: ms}}
    target_ci: 0.05
  host_types:
    small:
      $CMD$: >-
        rep=$(basename "$PWD" | tr -dc 0-9); echo "[% run %] $rep" >> {shared}/ran.log; sleep 0.2;
        case [% my_run.kind %] in
          quiet) ms=100;;
          noisy) if [ $((rep % 2)) = 0 ]; then ms=50; else ms=150; fi;;
          broken) exit 0;;
          flaky) if [ "$rep" = 1 ] && [ ! -e {shared}/flaked ]; then touch {shared}/flaked; exit 3; fi; ms=100;;
        esac;
        printf 'ms\\n%s\\n' "$ms" > results/output.csv
  base_experiment:
    kind:
      $FACTOR$: {kinds}
$ETL$:
  table:
    experiments: [adaptive]
    extractors:
      CsvExtractor: {{}}
      IgnoreExtractor: {{file_regex: ["^stdout.log$", "^stderr.log$"]}}
    loaders:
      CsvSummaryLoader: {{}}
"""
PLAIN = """
plain:
  n_repetitions: 3
  order: rmit
  seed: 5
  host_types:
    small:
      $CMD$: echo "[% run %] $(basename "$PWD" | tr -dc 0-9)" >> {shared}/ran.log
  base_experiment:
    x:
      $FACTOR$: [0, 1, 2, 3]
"""

MIXED = """
pairs:
  n_repetitions: 2
  order: rmit
  seed: 3
  host_types:
    small:
      n: 2
      $CMD$: >-
        echo "[% run %] $(basename "$PWD" | tr -dc 0-9)" >> {shared}/pairs_$(echo [% exp_host_lst | length %]).log
  base_experiment:
    x:
      $FACTOR$: [0, 1, 2]
seq:
  n_repetitions: 3
  seed: 9
  repetitions:
    max: 30
    metric: {{file: out.json, key: result.ms}}
    target_ci: 0.03
  host_types:
    small:
      $CMD$: >-
        rep=$(basename "$PWD" | tr -dc 0-9); echo "[% run %] $rep" >> {shared}/seq.log;
        if [ [% my_run.kind %] = quiet ]; then ms=100; else ms=$((100 + (rep * 37) % 11 - 5)); fi;
        echo "{{\\"result\\": {{\\"ms\\": $ms}}}}" > results/out.json
  base_experiment:
    kind:
      $FACTOR$: [quiet, noisy]
"""

# A run that never meets its target: the experiment's time cap ends it.
CAPPED = """
capped:
  n_repetitions: 2
  repetitions:
    max: 1000
    metric: {{file: out.json, key: ms}}
    target_ci: 0.00001
    max_minutes: 0.05
  host_types:
    small:
      $CMD$: >-
        rep=$(basename "$PWD" | tr -dc 0-9); ms=$((100 + (rep * 37) % 11 - 5));
        echo "{{\\"ms\\": $ms}}" > results/out.json; sleep 0.2
  base_experiment: {{k: 1}}
"""


@pytest.fixture
def env(short_tmp, request):
    root = short_tmp / request.node.name[:20]
    shared = root / "shared"
    shared.mkdir(parents=True)
    config = make_config_dir(root, {"adaptive": ADAPTIVE.format(shared=shared, kinds=json.dumps(KINDS)),
                                    "plain": PLAIN.format(shared=shared), "mixed": MIXED.format(shared=shared),
                                    "capped": CAPPED.format()})
    doe = Doe(config, root / "results", root / "hosts")
    doe.shared = shared
    return doe


def started(doe, log: str = "ran.log") -> list[tuple[int, int]]:
    return [tuple(map(int, line.split())) for line in (doe.shared / log).read_text().splitlines()]


def test_rmit_jobs_start_in_the_seeded_rounds_recorded_in_order_json(env):
    env("run", "--suite", "plain", "--id", "new")
    suite_dir = env.suite_dir("plain")
    order = json.loads((suite_dir / "order.json").read_text())["experiments"]["plain"]
    assert order == {"order": "rmit", "seed": 5, "rounds": rmit_rounds(4, 3, 5)}
    assert started(env) == round_jobs(order["rounds"])
    assert started(env) != [(run, rep) for run in range(4) for rep in range(3)]


def test_adaptive_rmit_adds_reps_until_each_run_stops_and_a_resume_keeps_the_order(env):
    controller = env.popen("run", "--suite", "adaptive", "--id", "new")

    def rounds_so_far():
        found = sorted(env.results.glob("adaptive_*/order.json"))
        return found and len(json.loads(found[-1].read_text())["experiments"]["adaptive"]["rounds"]) >= 5

    wait_for(rounds_so_far, timeout=180, what="five rounds")
    os.killpg(controller.pid, signal.SIGKILL)
    before = "".join(controller.communicate())
    suite_dir = env.suite_dir("adaptive")
    seed = json.loads((suite_dir / "order.json").read_text())["experiments"]["adaptive"]["seed"]
    done = env("run", "--suite", "adaptive", "--id", "last")

    order = json.loads((suite_dir / "order.json").read_text())["experiments"]["adaptive"]
    assert order["seed"] == seed
    rounds = order["rounds"]
    # The first rounds hold every run; later ones only the runs still adapting (the noisy one), each
    # drawn from the recorded seed and its number.
    assert rounds[:3] == rmit_rounds(4, 3, seed)
    assert rounds[3:] == [[1]] * 5
    assert all(rounds[i] == permutation(sorted(rounds[i]), seed, i) for i in range(len(rounds)))
    # Jobs started in the rounds' order; the flaky run's failed rep ran again (a new attempt) in its round.
    ran = started(env)
    assert ran.count((3, 1)) == 2
    firsts = list(dict.fromkeys(ran))
    assert sorted(firsts) == sorted(round_jobs(rounds))
    assert [key for key in firsts if key != (3, 1)] == [key for key in round_jobs(rounds) if key != (3, 1)]

    summary = json.loads((suite_dir / "adaptive" / "adaptive.json").read_text())["runs"]
    assert summary["0"]["status"] == "converged" and summary["0"]["n"] == 3 and summary["0"]["estimate"] == 100
    assert summary["1"]["status"] == "max reached" and summary["1"]["n"] == 8
    assert summary["1"]["ci_low"] < summary["1"]["estimate"] < summary["1"]["ci_high"]
    assert summary["2"]["status"] == "metric error" and "run 2" in summary["2"]["error"] \
        and "output.csv" in summary["2"]["error"]
    assert summary["3"]["status"] == "converged" and summary["3"]["n"] == 3
    state = yaml.safe_load((suite_dir / "adaptive" / "state.yml").read_text())["jobs"]
    reps = {run: sorted(int(k.split("/rep_")[1]) for k in state if k.startswith(f"run_{run}/")) for run in range(4)}
    assert reps == {0: [0, 1, 2], 1: list(range(8)), 2: [0, 1, 2], 3: [0, 1, 2]}
    assert state["run_3/rep_1"] == {"status": "finished", "exit_code": 0, "attempt": 2}
    assert (suite_dir / "adaptive/run_3/rep_1/.attempt_1/small/host_0").is_dir()
    # The unreadable metric is said once, naming the run and the file; the resume does not say it again.
    said = [line for line in (before + done.stdout + done.stderr).splitlines() if "cannot read the metric" in line
            or "no output.csv" in line]
    assert len(said) == 1 and "adaptive run 2" in said[0] and "output.csv" in said[0], said

    # doe status and the ETL show each run's n, estimate, CI and why it stopped.
    status = env("status", "--suite", "adaptive", "--id", "last").stdout
    assert "  run 0: n=3 estimate 100 CI [100, 100] converged" in status
    assert "  run 1: n=8 estimate 100 CI [" in status and "] max reached" in status
    assert "  run 2: n=0 estimate - CI [-, -] metric error (adaptive run 2: " in status
    report = json.loads(env("status", "--suite", "adaptive", "--id", "last", "--json").stdout)
    assert report["experiments"]["adaptive"]["adaptive"]["runs"]["3"]["status"] == "converged"
    assert "adaptive:\n  run_0: {\"n\": 3," in (suite_dir / "adaptive" / "state.yml").read_text()
    import csv
    with open(suite_dir / "etl_results" / "table" / "table.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert {(row["run"], row["adaptive_n"], row["adaptive_status"]) for row in rows} == {
        ("0", "3", "converged"), ("1", "8", "max reached"), ("3", "3", "converged")}
    assert len([row for row in rows if row["run"] == "1"]) == 8
    # The status page shows the same per run.
    page = (suite_dir / "status.html").read_text()
    section = page.split('<section class="adaptive" data-exp="adaptive">', 1)[1].split("</section>", 1)[0]
    assert '<tr data-run="1"><td>1</td>' in section and "max reached" in section and "metric error" in section


def test_the_time_cap_ends_a_run_that_never_meets_its_target(env):
    done = env("run", "--suite", "capped", "--id", "new")
    summary = json.loads((env.suite_dir("capped") / "capped" / "adaptive.json").read_text())["runs"]["0"]
    assert summary["status"] == "time cap" and 2 <= summary["n"] < 1000, summary
    assert "capped: " in done.stderr and ", 0 failed" in done.stderr
    # A controller that stopped after the last rep arrived but before deciding on it: the resume decides
    # (here: the time cap again) instead of calling the suite complete.
    path = env.suite_dir("capped") / "capped" / "adaptive.json"
    content = json.loads(path.read_text())
    content["runs"]["0"]["status"] = "adapting"
    path.write_text(json.dumps(content))
    again = env("run", "--suite", "capped", "--id", "last")
    assert "no job left to run" not in again.stderr, again.stderr
    assert json.loads(path.read_text())["runs"]["0"]["status"] == "time cap"


def test_rmit_with_a_multi_host_experiment_and_sequential_adaptive_repetitions(env):
    done = env("run", "--suite", "mixed", "--id", "new")
    suite_dir = env.suite_dir("mixed")
    orders = json.loads((suite_dir / "order.json").read_text())["experiments"]
    # Both hosts of a multi-host experiment run each job together, the jobs in the seeded rounds.
    assert orders["pairs"]["rounds"] == rmit_rounds(3, 2, 3)
    ran = started(env, "pairs_2.log")
    assert ran[::2] == ran[1::2] == round_jobs(orders["pairs"]["rounds"])
    # Sequential adaptive: no rounds recorded, reps of a run follow each other; the noisy run needs more
    # reps than the quiet one, both meet the target.
    assert orders["seq"] == {"order": "sequential", "seed": 9}
    summary = json.loads((suite_dir / "seq" / "adaptive.json").read_text())["runs"]
    assert summary["0"]["status"] == summary["1"]["status"] == "converged"
    assert summary["0"]["n"] == 3 < summary["1"]["n"] == 11
    for entry in summary.values():
        assert (entry["ci_high"] - entry["ci_low"]) / 2 <= 0.03 * entry["estimate"]
    assert sorted(started(env, "seq.log")) == [(0, r) for r in range(3)] + [(1, r) for r in range(11)]
    assert "Warning" not in done.stderr
