"""`doe plan --cloud <slurm inventory>`: a line per experiment, read from files only (no cluster)."""

from __future__ import annotations

import textwrap

from doe_cli.clouds.slurm import plan_lines
from tests.unit.design.conftest import make_config_dir

DESIGN = """
single:
  n_repetitions: 3
  host_types: {small: {$CMD$: "true"}}
  base_experiment: {x: {$FACTOR$: [1, 2]}}
pair:
  n_repetitions: 2
  host_types:
    client: {n: 2, $CMD$: "true"}
    server: {$CMD$: "true"}
  base_experiment: {}
adaptive:
  n_repetitions: 3
  repetitions: {max: 10, metric: {file: out.csv, column: ms}, target_ci: 0.05}
  host_types: {small: {$CMD$: "true"}}
  base_experiment: {}
"""

INVENTORY = """
all:
  children:
    small: {hosts: {login: {ansible_host: login.example.org, ansible_user: jdoe, job_scheduler: slurm}}}
    client: {hosts: {login: {}}}
    server: {hosts: {login: {}}}
"""


def test_a_multi_host_experiment_is_planned_as_allocations_and_adaptive_reps_at_their_maximum(tmp_path):
    project = make_config_dir(tmp_path / "config")
    (project.designs_dir / "s.yml").write_text(textwrap.dedent(DESIGN))
    (project.config_dir / "inventory").mkdir()
    (project.config_dir / "inventory" / "cluster.yml").write_text(INVENTORY)
    (project.group_vars_dir / "small" / "main.yml").write_text("slurm_partition: debug\nslurm_time_minutes: 30\n")
    (project.group_vars_dir / "client" / "main.yml").write_text("slurm_cpus_per_task: 4\n")
    lines = plan_lines(project, "s", "cluster")
    assert lines[1:] == [
        "  single: 6 job(s) via jdoe@login.example.org:22: sbatch --partition=debug --time=30",
        "  pair: 2 allocation(s) of 3 nodes (client x2, server x1) via jdoe@login.example.org:22: "
        "sbatch --nodes=3 --ntasks-per-node=1 --exclusive --cpus-per-task=4",
        "  adaptive: at most 10 job(s) via jdoe@login.example.org:22: sbatch --partition=debug --time=30",
    ]
