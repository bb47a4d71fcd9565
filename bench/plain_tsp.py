"""The baseline of the run benches: the same `true` jobs queued with plain task spooler, then waiting."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path


def local_loop(root: Path, n_jobs: int) -> float:
    """Seconds to queue n_jobs with `tsp -n true` on a private queue and wait for the last."""
    env = {**os.environ, "TS_SOCKET": str(root / f"plain{n_jobs}.sock")}
    start = time.perf_counter()
    for _ in range(n_jobs):
        subprocess.run(["tsp", "-n", "true"], env=env, check=True, capture_output=True)
    subprocess.run(["tsp", "-w"], env=env, check=False, capture_output=True)
    elapsed = time.perf_counter() - start
    subprocess.run(["tsp", "-K"], env=env, check=False, capture_output=True)
    return elapsed


def ssh_loops(pool, n_jobs: int) -> float:
    """Seconds for one ssh connection per host that queues n_jobs with tsp and waits; hosts in parallel."""
    script = (f"export TS_SOCKET=/tmp/doe-bench-plain.sock; i=0; while [ $i -lt {n_jobs} ]; do "
              f"tsp -n true >/dev/null; i=$((i+1)); done; tsp -w >/dev/null; tsp -K")
    start = time.perf_counter()
    processes = [subprocess.Popen(host.ssh_argv(script), stdout=subprocess.DEVNULL) for host in pool.hosts]
    for process in processes:
        process.wait()
    return time.perf_counter() - start
