"""The test cluster behaves as the Slurm cloud expects of a real one."""

from __future__ import annotations

import pytest

from tests.integration.run.conftest import wait_for

pytestmark = pytest.mark.slurm


def test_a_two_node_job_runs_one_step_on_each_node(slurm_cluster, tmp_path):
    slurm_cluster.ensure_idle()  # both nodes: earlier tests kill nodes and jobs
    out = tmp_path / "out.txt"
    submitted = slurm_cluster.run(
        "sbatch", "--parsable", "-N2", "-o", str(out), "--wrap",
        "srun -N1 -n1 -w n1 printenv SLURMD_NODENAME; srun -N1 -n1 -w n2 printenv SLURMD_NODENAME")
    job_id = submitted.stdout.strip()
    wait_for(lambda: "COMPLETED" in slurm_cluster.run("squeue", "-h", "--states=all", "-j", job_id,
                                                      "-o", "%T").stdout, what="the job completed", timeout=60)
    assert out.read_text().split() == ["n1", "n2"]


def test_squeue_reports_a_failed_job_with_its_reason(slurm_cluster):
    job_id = slurm_cluster.run("sbatch", "--parsable", "-o", "/dev/null", "--wrap", "exit 3").stdout.strip()

    def state() -> str:
        return slurm_cluster.run("squeue", "-h", "--states=all", "-j", job_id, "-o", "%T|%r").stdout.strip()

    wait_for(lambda: state().startswith("FAILED"), what="the job failed", timeout=60)
    assert state() == "FAILED|NonZeroExitCode"
