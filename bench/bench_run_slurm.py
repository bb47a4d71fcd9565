"""`doe run --cloud <inventory>` on the two-node Slurm test cluster, against a plain sbatch floor.

The suite: one experiment of N `true` jobs, each one sbatch job on the cluster (the controller is
its login node: `ansible_connection: local`). Each timed run is a whole `doe run --id new`: setup on
the login host, submission, polls, fetch and shutdown.
The floor: a shell loop of `sbatch --wrap true` for the same N jobs, then waiting until squeue lists
none of them. The test cluster's throughput (about 0.6 s per job) varies by several seconds between
runs, so floor and doe run alternate in pairs (`--repeat`, the order flipped each pair) and the
figure is the median of the pairs' differences.
`doe -v` traces each Ansible run; the bench sums them per playbook, so the fixed costs are visible.
Target: doe's overhead per job beyond the floor under 50 ms.
Needs root and slurm-wlm + munge (like tests/integration/slurm).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.slurm_cluster import SlurmCluster, missing_binaries

PER_JOB_TARGET_MS = 50.0
DOE = Path(sys.executable).parent / "doe"


def write_config(root: Path, cluster: SlurmCluster, n_jobs: int, go: Path) -> Path:
    import shutil

    import yaml

    config = root / f"config{n_jobs}"
    (config / "designs").mkdir(parents=True)
    (config / "inventory").mkdir()
    shutil.copytree(REPO / "group_vars", config / "group_vars")
    (config / "group_vars" / "all" / "main.yml").write_text("prj_id: doe_bench\n")
    (config / "designs" / "bench_slurm.yml").write_text(
        f"e:\n  host_types:\n    small:\n      $CMD$: \"[ -e {go} ]\"\n"
        f"  base_experiment:\n    k:\n      $FACTOR$: {list(range(n_jobs))}\n")
    host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable, "job_scheduler": "slurm",
            "slurm_conf": str(cluster.conf), "remote_dir": str(root / "remote"),
            "remote_results_dir": str(root / "remote-results")}
    (config / "inventory" / "bench.yml").write_text(yaml.safe_dump({"small": {"hosts": {"login": host}}}))
    return config


def run_doe(config: Path, results: Path, *args: str) -> tuple[float, int, list[tuple[float, str]]]:
    """Seconds, exit code and the stderr lines with their times."""
    env = {**os.environ, "PATH": f"{DOE.parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "DOE_LOCAL_DIR": str(results.parent / "local")}
    argv = [str(DOE), "--config-dir", str(config), "--results-dir", str(results), "-v", "run", "--suite",
            "bench_slurm", "--cloud", "bench", *args]
    start = time.perf_counter()
    lines = []
    with subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as doe:
        assert doe.stderr is not None
        for line in doe.stderr:
            lines.append((time.perf_counter() - start, line.rstrip()))
    return time.perf_counter() - start, doe.returncode, lines


def ansible_seconds(lines: list[tuple[float, str]]) -> dict[str, list[float]]:
    """Per playbook, the seconds of each run (from `doe -v`'s `ansible: <playbook> on ...: <status> in S s`)."""
    found: dict[str, list[float]] = {}
    for _, line in lines:
        match = re.match(r"ansible: (\S+) on .* in ([0-9.]+) s$", line)
        if match:
            found.setdefault(match.group(1), []).append(float(match.group(2)))
    return found


def plain_sbatch(cluster: SlurmCluster, n_jobs: int, out: Path) -> float:
    """N `sbatch --wrap true`, then wait until none of them is in the queue."""
    script = (f'i=0; ids=""; while [ $i -lt {n_jobs} ]; do '
              f'ids="$ids,$(sbatch --parsable -o {out}/plain-%j.out --wrap true)"; i=$((i+1)); done; '
              f'ids=${{ids#,}}; while [ -n "$(squeue -h -j "$ids" -t PD,R,CG,CF -o %i 2>/dev/null)" ]; do '
              f'sleep 0.05; done')
    start = time.perf_counter()
    subprocess.run(["sh", "-c", script], env=cluster.env, check=True, capture_output=True, timeout=1800)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3, help="pairs of floor and doe run")
    args = parser.parse_args()
    if missing_binaries() or os.geteuid() != 0:
        print(f"skipped: needs root and slurm-wlm + munge (missing: {', '.join(missing_binaries())})")
        return 0
    pairs: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory(prefix="doebs", dir="/tmp") as tmp:
        root = Path(tmp)
        with SlurmCluster(root / "cluster") as cluster:
            go = root / "go"
            go.write_text("")
            config = write_config(root, cluster, args.jobs, go)
            results = root / "results"
            for index in range(args.repeat):
                doe_first = index % 2 == 1
                if doe_first:
                    doe_s, rc, lines = run_doe(config, results, "--id", "new")
                floor_s = plain_sbatch(cluster, args.jobs, root)
                if not doe_first:
                    doe_s, rc, lines = run_doe(config, results, "--id", "new")
                if rc != 0:
                    print("\n".join(line for _, line in lines[-20:]))
                    return 1
                pairs.append((floor_s, doe_s))
                print(f"  pair {index + 1}: floor {floor_s:6.2f} s, doe {doe_s:6.2f} s "
                      f"({'doe' if doe_first else 'floor'} first): {(doe_s - floor_s) / args.jobs * 1000:+.1f} ms/job")
    per_job_ms = statistics.median((doe_s - floor_s) / args.jobs * 1000 for floor_s, doe_s in pairs)
    floors, does = [f for f, _ in pairs], [d for _, d in pairs]
    print(f"{args.jobs} jobs on the two-node Slurm test cluster, {args.repeat} pair(s)")
    print(f"  plain sbatch loop + drain: median {statistics.median(floors):6.2f} s "
          f"(min {min(floors):.2f}, max {max(floors):.2f})")
    print(f"  doe run --id new:          median {statistics.median(does):6.2f} s "
          f"(min {min(does):.2f}, max {max(does):.2f}), ratio {statistics.median(does) / statistics.median(floors):.2f}x")
    print(f"  doe's overhead beyond the floor (median of the pairs): {per_job_ms:.1f} ms/job "
          f"(target < {PER_JOB_TARGET_MS:.0f}) {'OK' if per_job_ms < PER_JOB_TARGET_MS else 'OVER'}")
    print("  Ansible runs of the last doe run (playbook: runs, seconds in all):")
    for playbook, seconds in ansible_seconds(lines).items():
        print(f"    {playbook}: {len(seconds)}, {sum(seconds):.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
