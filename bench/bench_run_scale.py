"""`doe run` at scale: 1,000 and 10,000 `true` jobs on the local cloud, 3 x 1,000 and 3 x 10,000 on
three loopback sshd hosts, each against a plain loop that queues the same jobs with tsp and waits,
measured in the same run; and the controller's peak memory, also at 100,000 jobs.

Targets: overhead per job (doe's whole run minus the plain loop, over the number of jobs) under 10 ms
on the local cloud and under 20 ms over SSH at every size, and at most 20% growth of that overhead
from 1,000 to 10,000 jobs per host; the controller under 300 MB at 100,000 jobs.
The whole run includes design, setup, every poll and fetch, the final status and cleanup.
Peak memory is the `doe` process's VmHWM (Ansible's processes are separate), sampled while it runs.
The 100,000-job figure comes from a run stopped with --timeout once jobs flow (prepare, state, the
enqueue window and the first polls are in it), then cleaned up.
The SSH part needs root (sshd test hosts in their own namespaces), like the SSH tests.

    python bench/bench_run_scale.py [--local] [--ssh] [--memory]   (all three without options)
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from plain_tsp import local_loop, ssh_loops  # bench/ is this script's folder, first on sys.path

DOE = Path(sys.executable).parent / "doe"
LOCAL_SIZES = (1000, 10000)
SSH_SIZES = (1000, 10000)  # per host
N_SSH_HOSTS = 3
MEMORY_JOBS = 100_000
LOCAL_TARGET_MS, SSH_TARGET_MS, GROWTH_TARGET, MEMORY_TARGET_MB = 10.0, 20.0, 0.20, 300.0


def design(n_jobs: int, experiments: int = 1) -> str:
    return "".join(f"e{i}:\n  host_types:\n    small:\n      $CMD$: \"true\"\n"
                   f"  base_experiment:\n    k:\n      $FACTOR$: {{{{ range(0, {n_jobs}) | list }}}}\n"
                   for i in range(experiments))


def write_config(root: Path, name: str, text: str) -> Path:
    config = root / f"config-{name}"
    (config / "designs").mkdir(parents=True)
    shutil.copytree(REPO / "group_vars", config / "group_vars")
    (config / "designs" / f"{name}.yml").write_text(text)
    return config


class PeakMemory:
    """Samples a process's VmHWM (its peak resident set) until it ends."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak_kb = pid, 0
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        while True:
            try:
                with open(f"/proc/{self.pid}/status", encoding="utf-8") as handle:
                    for line in handle:
                        if line.startswith("VmHWM:"):
                            self.peak_kb = max(self.peak_kb, int(line.split()[1]))
            except (OSError, ValueError):
                return
            time.sleep(0.2)


def run_doe(config: Path, root: Path, suite: str, *args: str, expect_rc: int = 0) -> tuple[float, float]:
    """(seconds, peak MB of the controller) of one `doe run`."""
    env = {**os.environ, "DOE_LOCAL_DIR": str(root / "hosts"),
           "PATH": f"{DOE.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    argv = [str(DOE), "--config-dir", str(config), "--results-dir", str(root / "results"), "run", "--suite", suite,
            "--id", "new", *args]
    start = time.perf_counter()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    memory = PeakMemory(process.pid)
    _, stderr = process.communicate()
    elapsed = time.perf_counter() - start
    if process.returncode != expect_rc:
        sys.exit(f"doe run {suite} exited {process.returncode}:\n{stderr[-3000:]}")
    return elapsed, memory.peak_kb / 1024


def count_fetched(root: Path, suite: str) -> int:
    return sum(1 for _ in (root / "results").glob(f"{suite}_*/e*/run_*/rep_0/small/host_0/.doe_runtime_info.yaml"))


def report(kind: str, n_jobs: int, doe_s: float, plain_s: float, peak_mb: float, target_ms: float) -> float:
    overhead_ms = (doe_s - plain_s) / n_jobs * 1000
    verdict = "ok" if overhead_ms < target_ms else "MISSED"
    print(f"{kind} {n_jobs:>6} jobs: doe {doe_s:7.2f} s, plain tsp loop {plain_s:6.2f} s, ratio {doe_s / plain_s:4.2f}x, "
          f"overhead {overhead_ms:5.2f} ms/job (target < {target_ms:.0f}: {verdict}), controller peak {peak_mb:.0f} MB")
    return overhead_ms


def growth(kind: str, small: float, large: float) -> None:
    change = (large - small) / small if small > 0 else 0.0
    verdict = "ok" if change <= GROWTH_TARGET else "MISSED"
    print(f"{kind}: overhead per job from {SSH_SIZES[0]:,} to {SSH_SIZES[1]:,} jobs per host: {change:+.0%} "
          f"(target <= +{GROWTH_TARGET:.0%}: {verdict})")


def bench_local(root: Path) -> None:
    overheads = []
    for n_jobs in LOCAL_SIZES:
        config = write_config(root, f"local{n_jobs}", design(n_jobs))
        doe_s, peak_mb = run_doe(config, root, f"local{n_jobs}")
        if count_fetched(root, f"local{n_jobs}") != n_jobs:
            sys.exit(f"local{n_jobs}: not every job was fetched")
        plain_s = local_loop(root, n_jobs)
        overheads.append(report("local", n_jobs, doe_s, plain_s, peak_mb, LOCAL_TARGET_MS))
    growth("local", *overheads)


def bench_ssh(root: Path) -> None:
    import yaml

    from doe_cli.run.ansible_env import control_path_dir
    from tests.support.sshd_hosts import SshHostPool, close_control_masters

    overheads = []
    with SshHostPool(N_SSH_HOSTS) as pool:
        for n_jobs in SSH_SIZES:
            name = f"ssh{n_jobs}"
            config = write_config(root, name, design(n_jobs, experiments=N_SSH_HOSTS))
            (config / "inventory").mkdir()
            inventory = {"small": {"hosts": {host.name: host.inventory_vars() for host in pool.hosts}}}
            (config / "inventory" / "bench.yml").write_text(yaml.safe_dump(inventory, sort_keys=False))
            doe_s, peak_mb = run_doe(config, root, name, "--cloud", "bench")
            for suite_dir in (root / "results").glob(f"{name}_*"):
                close_control_masters(control_path_dir(suite_dir))
            if count_fetched(root, name) != N_SSH_HOSTS * n_jobs:
                sys.exit(f"{name}: not every job was fetched")
            plain_s = ssh_loops(pool, n_jobs)
            overheads.append(report(f"ssh {N_SSH_HOSTS} hosts", N_SSH_HOSTS * n_jobs, doe_s, plain_s, peak_mb,
                                    SSH_TARGET_MS))
    growth("ssh", *overheads)


def bench_memory(root: Path) -> None:
    config = write_config(root, "memory", design(MEMORY_JOBS))
    seconds, peak_mb = run_doe(config, root, "memory", "--timeout", "20", expect_rc=1)
    env = {**os.environ, "DOE_LOCAL_DIR": str(root / "hosts")}
    subprocess.run([str(DOE), "--config-dir", str(config), "--results-dir", str(root / "results"), "clean",
                    "--cloud", "local", "--suite", "memory", "--id", "last"], env=env, capture_output=True, check=False)
    verdict = "ok" if peak_mb < MEMORY_TARGET_MB else "MISSED"
    print(f"controller at {MEMORY_JOBS:,} jobs (stopped after {seconds:.0f} s): peak {peak_mb:.0f} MB "
          f"(target < {MEMORY_TARGET_MB:.0f} MB: {verdict})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--local", action="store_true")
    parser.add_argument("--ssh", action="store_true")
    parser.add_argument("--memory", action="store_true")
    args = parser.parse_args()
    everything = not (args.local or args.ssh or args.memory)
    root = Path(tempfile.mkdtemp(prefix="doe-bench-scale-", dir="/var/tmp"))
    try:
        if args.local or everything:
            bench_local(root)
        if args.ssh or everything:
            bench_ssh(root)
        if args.memory or everything:
            bench_memory(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
