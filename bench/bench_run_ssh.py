"""`doe run --cloud <inventory>` on three loopback sshd hosts, against a plain ssh + tsp floor.

The suite: three single-host experiments (one per host) of 50 `true`-like jobs each. Setup is done
first: a warm-up run with `--keep` lets every job fail (`[ -e /tmp/doe-bench-go ]`), the hosts then
get the file, and the timed run is `doe run --id last --retry-failed`: one Ansible run with the host
check and lock, enqueue, polls, fetch, and the queue's shutdown with the lock release in the last
status, no setup (resume-style timing).
The floor: per host, one ssh connection that enqueues the same 50 jobs with `tsp -n` on a private
queue and waits for the last (`tsp -w`); the three hosts in parallel.
Targets: the timed run under 15 s, and under 30 ms per job beyond the floor.
Needs root (the hosts are sshd processes in their own mount namespaces), like the SSH tests.
The job wrapper is the hosts' default (the C build where a compiler exists); `--wrapper python` measures
the Python one (`job_queue_wrapper: python`). The wrapper that ran is read from provenance.json.

Mitogen (0.3.54, strategy mitogen_linear) was measured with this bench and not adopted: the timed run
took 27 s instead of 13 s, because every round of doe is a new ansible-playbook process that pays
mitogen's bootstrap on each host, and doe's host tasks are `raw` commands that mitogen does not speed up.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from plain_tsp import ssh_loops  # bench/ is this script's folder, first on sys.path

from tests.support.sshd_hosts import SshHostPool, close_control_masters

N_HOSTS = 3
JOBS_PER_HOST = 50
SMALL_JOBS_PER_HOST = 10  # a second, smaller run gives the marginal cost per job
SUITE_TARGET_S = 15.0
PER_JOB_TARGET_MS = 30.0
DOE = Path(sys.executable).parent / "doe"
GO_FILE = "doe-bench-go"


def write_config(root: Path, pool: SshHostPool, jobs_per_host: int, wrapper: str) -> Path:
    import yaml

    config = root / f"config{jobs_per_host}"
    (config / "designs").mkdir(parents=True)
    (config / "inventory").mkdir()
    shutil.copytree(REPO / "group_vars", config / "group_vars")
    (config / "group_vars" / "all" / "main.yml").write_text(f"prj_id: doe_bench\njob_queue_wrapper: {wrapper}\n")
    design = "".join(
        f"e{i}:\n  host_types:\n    small:\n      $CMD$: \"[ -e /tmp/{GO_FILE} ]\"\n"
        f"  base_experiment:\n    k:\n      $FACTOR$: {list(range(jobs_per_host))}\n" for i in range(N_HOSTS))
    (config / "designs" / "bench_ssh.yml").write_text(design)
    inventory = {"small": {"hosts": {host.name: host.inventory_vars() for host in pool.hosts}}}
    (config / "inventory" / "bench.yml").write_text(yaml.safe_dump(inventory, sort_keys=False))
    return config


def run_doe(config: Path, results: Path, *args: str) -> tuple[float, subprocess.CompletedProcess]:
    env = {**os.environ, "PATH": f"{DOE.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    # DOE_BENCH_DOE: a command to run instead of doe, e.g. a Python profiler wrapper.
    command = os.environ["DOE_BENCH_DOE"].split() if os.environ.get("DOE_BENCH_DOE") else [str(DOE)]
    argv = [*command, "--config-dir", str(config), "--results-dir", str(results), "run", "--suite", "bench_ssh",
            "--cloud", "bench", *args]
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    return time.perf_counter() - start, done


def measure(root: Path, pool: SshHostPool, jobs_per_host: int, wrapper: str) -> tuple[float, float, float, set]:
    """(warm-up seconds, floor seconds, timed doe seconds, job wrappers used) for jobs_per_host jobs per host."""
    config = write_config(root, pool, jobs_per_host, wrapper)
    results = root / f"results{jobs_per_host}"
    for host in pool.hosts:
        (host.dir / "tmp" / GO_FILE).unlink(missing_ok=True)
    warm_s, warm = run_doe(config, results, "--id", "new", "--keep")
    if warm.returncode != 1:
        sys.exit(f"warm-up run: expected every job to fail, got exit {warm.returncode}:\n{warm.stderr}")
    for host in pool.hosts:
        (host.dir / "tmp" / GO_FILE).touch()
    floor_s = min(ssh_loops(pool, jobs_per_host) for _ in range(2))
    doe_s, done = run_doe(config, results, "--id", "last", "--retry-failed")
    if done.returncode != 0:
        sys.exit(f"timed run failed ({done.returncode}):\n{done.stderr}")
    if os.environ.get("DOE_BENCH_DOE"):
        print(done.stderr)
    fetched = list(results.glob("bench_ssh_*/e*/run_*/rep_0/small/host_0/.doe_runtime_info.yaml"))
    if len(fetched) != N_HOSTS * jobs_per_host:
        sys.exit(f"expected {N_HOSTS * jobs_per_host} fetched jobs, found {len(fetched)}")
    from doe_cli.run.ansible_env import control_path_dir

    wrappers = set()
    for suite_dir in results.glob("bench_ssh_*"):
        close_control_masters(control_path_dir(suite_dir))
        provenance = json.loads((suite_dir / "provenance.json").read_text())
        wrappers |= {host.get("job_wrapper", "?") for host in provenance["hosts"].values()}
    return warm_s, floor_s, doe_s, wrappers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wrapper", choices=["auto", "python"], default="auto", help="job_queue_wrapper")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="doe-bench-ssh-", dir="/var/tmp"))
    try:
        with SshHostPool(N_HOSTS) as pool:
            warm_s, floor_s, doe_s, wrappers = measure(root, pool, JOBS_PER_HOST, args.wrapper)
            _, small_floor_s, small_doe_s, _ = measure(root, pool, SMALL_JOBS_PER_HOST, args.wrapper)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    n_jobs = N_HOSTS * JOBS_PER_HOST
    per_job_ms = (doe_s - floor_s) / n_jobs * 1000
    extra_jobs = N_HOSTS * (JOBS_PER_HOST - SMALL_JOBS_PER_HOST)
    marginal_ms = ((doe_s - small_doe_s) - (floor_s - small_floor_s)) / extra_jobs * 1000
    print(f"hosts: {N_HOSTS} loopback sshd, jobs: {N_HOSTS} experiments x {JOBS_PER_HOST}, "
          f"job wrapper: {', '.join(sorted(wrappers))}")
    print(f"warm-up run with setup (not timed): {warm_s:.2f} s")
    print(f"floor (ssh + tsp per host, in parallel): {floor_s:.2f} s")
    print(f"doe run --id last --retry-failed (setup done): {doe_s:.2f} s "
          f"(target < {SUITE_TARGET_S:.0f} s: {'ok' if doe_s < SUITE_TARGET_S else 'MISSED'})")
    print(f"ratio doe / floor: {doe_s / floor_s:.1f}x")
    print(f"per job beyond the floor, whole run / {n_jobs} jobs (fixed costs included): {per_job_ms:.1f} ms "
          f"(target < {PER_JOB_TARGET_MS:.0f} ms: {'ok' if per_job_ms < PER_JOB_TARGET_MS else 'MISSED'})")
    print(f"marginal per job beyond the floor ({N_HOSTS} x {SMALL_JOBS_PER_HOST} jobs: doe {small_doe_s:.2f} s, "
          f"floor {small_floor_s:.2f} s): {marginal_ms:.1f} ms "
          f"(target < {PER_JOB_TARGET_MS:.0f} ms: {'ok' if marginal_ms < PER_JOB_TARGET_MS else 'MISSED'})")


if __name__ == "__main__":
    main()
