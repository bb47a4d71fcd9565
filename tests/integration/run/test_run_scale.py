"""Suites of thousands of jobs on the local cloud: nothing grows with the suite on a command line or in
a host's report, a SIGKILLed controller resumes without running a job twice, and a fetch that keeps
losing results stops the run instead of spinning."""

from __future__ import annotations

import json
import os
import shlex
import signal
from collections import Counter

import pytest

from tests.integration.run.conftest import Doe, make_config_dir, tsp_servers_under, wait_for

pytestmark = [pytest.mark.tsp, pytest.mark.slow]

N_JOBS = 5000


def grid(name: str, n_runs: int, command: str) -> str:
    return (f"{name}:\n  host_types:\n    small:\n      $CMD$: {json.dumps(command)}\n"
            f"  base_experiment:\n    i:\n      $FACTOR$: {{{{ range(0, {n_runs}) | list }}}}\n")


def test_five_thousand_jobs_on_one_host_resume_after_sigkill_and_each_runs_once(short_tmp):
    root = short_tmp / "scale"
    ledger = root / "ledger"
    root.mkdir()
    config = make_config_dir(root, {"grid": grid("grid", N_JOBS, f"echo [% my_run.i %] >> {shlex.quote(str(ledger))}")})
    doe = Doe(config, root / "results", root / "hosts")

    def ledger_lines() -> int:
        return len(ledger.read_text().splitlines()) if ledger.exists() else 0

    controller = doe.popen("run", "--suite", "grid", "--id", "new")
    wait_for(lambda: ledger_lines() >= N_JOBS // 3, timeout=300, what="a third of the jobs")
    os.kill(controller.pid, signal.SIGKILL)
    controller.wait()
    done = doe("run", "--suite", "grid", "--id", "last", timeout=600)
    assert "Traceback" not in done.stderr

    runs = Counter(int(line) for line in ledger.read_text().splitlines())
    assert sorted(runs) == list(range(N_JOBS)) and set(runs.values()) == {1}
    suite_dir = doe.suite_dir("grid")
    fetched = list(suite_dir.glob("grid/run_*/rep_0/small/host_0/.doe_runtime_info.yaml"))
    assert len(fetched) == N_JOBS
    status = json.loads(doe("status", "--suite", "grid", "--id", "last", "--json").stdout)
    assert status["experiments"]["grid"]["finished"] == N_JOBS
    assert tsp_servers_under(root / "hosts") == []


def test_results_that_never_arrive_stop_the_run_with_a_one_line_error(short_tmp):
    root = short_tmp / "dropped"
    root.mkdir()
    config = make_config_dir(root, {"grid": grid("grid", 30, "echo some output")})
    # A fetch cap of a few bytes makes the transfer leave every job's files behind.
    with open(config / "group_vars" / "all" / "main.yml", "a", encoding="utf-8") as handle:
        handle.write("\nfetch_max_file_mb: 0.000001\n")
    doe = Doe(config, root / "results", root / "hosts")
    done = doe("run", "--suite", "grid", "--id", "new", check=False, timeout=300)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert "Traceback" not in done.stderr
    assert "host grid-small-0 reports 30 finished job(s) whose results did not arrive in 3 fetches" in last
    assert "resume with: doe run --suite grid --id" in last
