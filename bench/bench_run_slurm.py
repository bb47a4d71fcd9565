"""`doe run --cloud <inventory>` on the two-node Slurm test cluster, against a plain sbatch floor.

The suite: one experiment of N `true` jobs, each one sbatch job on the cluster (the controller is
its login node: `ansible_connection: local`). Setup is done first, as in bench_run_ssh.py: a warm-up
run with `--keep` lets every job fail (`[ -e <go file> ]`), the go file appears, and the timed run is
`doe run --id last --retry-failed` (submit, polls, fetch, no setup).
The floor, in the same run: a shell loop of `sbatch --wrap true` for the same N jobs, then waiting
until squeue lists none of them.
Target: doe's overhead per job beyond the floor under 50 ms.
Needs root and slurm-wlm + munge (like tests/integration/slurm).
"""

from __future__ import annotations

import argparse
import os
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


def run_doe(config: Path, results: Path, *args: str) -> tuple[float, subprocess.CompletedProcess]:
    env = {**os.environ, "PATH": f"{DOE.parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "DOE_LOCAL_DIR": str(results.parent / "local")}
    argv = [str(DOE), "--config-dir", str(config), "--results-dir", str(results), "run", "--suite", "bench_slurm",
            "--cloud", "bench", *args]
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    return time.perf_counter() - start, done


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
    args = parser.parse_args()
    if missing_binaries() or os.geteuid() != 0:
        print(f"skipped: needs root and slurm-wlm + munge (missing: {', '.join(missing_binaries())})")
        return 0
    with tempfile.TemporaryDirectory(prefix="doebs", dir="/tmp") as tmp:
        root = Path(tmp)
        with SlurmCluster(root / "cluster") as cluster:
            go = root / "go"
            config = write_config(root, cluster, args.jobs, go)
            results = root / "results"
            warm_s, warm = run_doe(config, results, "--id", "new", "--keep")
            if warm.returncode not in (0, 1):
                print(warm.stderr[-2000:])
                return 1
            go.write_text("")
            floor_s = plain_sbatch(cluster, args.jobs, root)
            doe_s, timed = run_doe(config, results, "--id", "last", "--retry-failed")
            if timed.returncode != 0:
                print(timed.stderr[-2000:])
                return 1
    per_job_ms = (doe_s - floor_s) / args.jobs * 1000
    print(f"{args.jobs} jobs on the two-node Slurm test cluster")
    print(f"  plain sbatch loop + drain: {floor_s:6.2f} s ({floor_s / args.jobs * 1000:.1f} ms/job)")
    print(f"  doe run (no setup):        {doe_s:6.2f} s ({doe_s / args.jobs * 1000:.1f} ms/job), "
          f"ratio {doe_s / floor_s:.2f}x the floor")
    print(f"  doe's overhead beyond the floor: {per_job_ms:.1f} ms/job (target < {PER_JOB_TARGET_MS:.0f})"
          f" {'OK' if per_job_ms < PER_JOB_TARGET_MS else 'OVER'}")
    print(f"  (warm-up run with setup: {warm_s:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
