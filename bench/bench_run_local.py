"""`doe run` on the local cloud: a 200-job single-host suite of `true`, against a plain tsp loop.

Targets: the whole suite (design, setup, all jobs, fetch, final status, cleanup) within 30 s, and the
tool's time per job under 50 ms beyond a plain task spooler loop that runs the same 200 jobs
(`tsp -n true` 200 times on a private queue, then wait for the last one), measured in the same run.
Two per-job figures are printed: the whole difference divided by 200 (fixed costs such as Ansible
start-ups included), and the marginal cost per job, from a second, 20-job run of both (the slope).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from plain_tsp import local_loop  # bench/ is this script's folder, first on sys.path

N_JOBS = 200
SMALL = 20
REPO = Path(__file__).resolve().parent.parent
DOE = Path(sys.executable).parent / "doe"
SUITE_TARGET_S = 30.0
PER_JOB_TARGET_MS = 50.0


def doe_suite(root: Path, n_jobs: int) -> float:
    config = root / f"config{n_jobs}"
    (config / "designs").mkdir(parents=True)
    shutil.copytree(REPO / "group_vars", config / "group_vars")
    (config / "designs" / "bench_true.yml").write_text(
        f"jobs:\n  host_types:\n    small:\n      $CMD$: \"true\"\n"
        f"  base_experiment:\n    i:\n      $FACTOR$: {list(range(n_jobs))}\n")
    env = {**os.environ, "DOE_LOCAL_DIR": str(root / "hosts"),
           "PATH": f"{DOE.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    results = root / f"results{n_jobs}"
    argv = [str(DOE), "--config-dir", str(config), "--results-dir", str(results),
            "run", "--suite", "bench_true", "--id", "new"]
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"doe run failed ({done.returncode}):\n{done.stderr}")
    fetched = list(results.glob("bench_true_*/jobs/run_*/rep_0/small/host_0/.doe_runtime_info.yaml"))
    if len(fetched) != n_jobs:
        sys.exit(f"expected {n_jobs} fetched jobs, found {len(fetched)}")
    return elapsed


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="doe-bench-", dir="/tmp"))  # short: tsp socket paths
    try:
        plain = local_loop(root, N_JOBS)
        suite = doe_suite(root, N_JOBS)
        plain_small = local_loop(root, SMALL)
        suite_small = doe_suite(root, SMALL)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    per_job_ms = (suite - plain) / N_JOBS * 1000
    marginal_ms = ((suite - suite_small) - (plain - plain_small)) / (N_JOBS - SMALL) * 1000
    print(f"plain tsp loop, {N_JOBS} jobs of true: {plain:6.2f} s  ({plain / N_JOBS * 1000:.1f} ms/job)")
    print(f"doe run,        {N_JOBS} jobs of true: {suite:6.2f} s  ({suite / N_JOBS * 1000:.1f} ms/job)"
          f"  target <= {SUITE_TARGET_S:.0f} s: {'ok' if suite <= SUITE_TARGET_S else 'MISSED'}")
    print(f"doe run,        {SMALL} jobs of true: {suite_small:6.2f} s;  plain loop: {plain_small:.2f} s")
    print(f"doe beyond the plain loop, whole run / {N_JOBS}: {per_job_ms:.1f} ms/job  target < "
          f"{PER_JOB_TARGET_MS:.0f} ms: {'ok' if per_job_ms < PER_JOB_TARGET_MS else 'MISSED'}; "
          f"ratio doe/plain = {suite / plain:.1f}x")
    print(f"doe beyond the plain loop, marginal (slope {SMALL}->{N_JOBS} jobs): {marginal_ms:.1f} ms/job  "
          f"target < {PER_JOB_TARGET_MS:.0f} ms: {'ok' if marginal_ms < PER_JOB_TARGET_MS else 'MISSED'}")


if __name__ == "__main__":
    main()
