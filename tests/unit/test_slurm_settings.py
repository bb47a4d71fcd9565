"""A host type's Slurm resources from group_vars, with doe-suite's euler names as aliases."""

from __future__ import annotations

import pytest

from doe_cli.config import GroupVars
from doe_cli.errors import UserError
from doe_cli.settings.check import check
from doe_cli.settings.slurm import SlurmHostTypeSettings


def sbatch_settings(host_vars: dict, where: str) -> dict[str, list[str]]:
    """A host type's settings as the queue helper gets them: sbatch arguments and modules."""
    settings = check(SlurmHostTypeSettings, GroupVars(values=host_vars, files={}, default_file=where))
    return {"sbatch_args": settings.sbatch_args(), "modules": list(settings.slurm_modules or [])}


def test_doe_names_become_sbatch_arguments_in_a_fixed_order():
    settings = sbatch_settings({"slurm_partition": "gpu", "slurm_time_minutes": 90, "slurm_cpus_per_task": 4,
                                "slurm_mem_per_cpu_mb": 2048, "slurm_gpus": 1, "slurm_extra_args": ["--qos=high"],
                                "slurm_modules": ["gcc/12", "rust"]}, "group_vars/server/main.yml")
    assert settings == {"sbatch_args": ["--partition=gpu", "--time=90", "--cpus-per-task=4", "--mem-per-cpu=2048",
                                        "--gpus=1", "--qos=high"], "modules": ["gcc/12", "rust"]}


def test_euler_names_are_aliases_and_doe_names_win():
    settings = sbatch_settings({"euler_job_minutes": 30, "euler_cpu_cores": 2, "euler_cpu_mem_per_core_mb": 512,
                                "euler_gpu_number": 0, "euler_env": "gcc/8.2.0 python/3.11",
                                "slurm_cpus_per_task": 8}, "g")
    assert settings == {"sbatch_args": ["--time=30", "--cpus-per-task=8", "--mem-per-cpu=512"],
                        "modules": ["gcc/8.2.0", "python/3.11"]}
    assert sbatch_settings({}, "g") == {"sbatch_args": [], "modules": []}


def test_gpus_take_doe_suites_model_and_memory_per_gpu():
    demo = {"euler_gpu_number": 2, "euler_gpu_model": None, "euler_gpu_min_mem_per_gpu_mb": 10240}
    assert sbatch_settings(demo, "g")["sbatch_args"] == ["--gpus=2", "--gres=gpumem:10240M"]
    assert sbatch_settings({**demo, "euler_gpu_model": "a100"}, "g")["sbatch_args"] == ["--gpus=a100:2",
                                                                                         "--gres=gpumem:10240M"]
    assert sbatch_settings({"slurm_gpus": 1, "slurm_gpu_model": "v100", "euler_gpu_model": "a100"},
                           "g")["sbatch_args"] == ["--gpus=v100:1"]
    # No GPU asked for: the model and memory of doe-suite's template (0 GPUs) add nothing.
    assert sbatch_settings({"euler_gpu_number": 0, "euler_gpu_min_mem_per_gpu_mb": 0}, "g")["sbatch_args"] == []


@pytest.mark.parametrize(("host_vars", "key"), [
    ({"slurm_gpus": 1, "slurm_gpu_model": "a100:2"}, "slurm_gpu_model"),
    ({"euler_gpu_number": 1, "euler_gpu_min_mem_per_gpu_mb": "10g"}, "euler_gpu_min_mem_per_gpu_mb"),
    ({"slurm_time_minutes": "90"}, "slurm_time_minutes"),
    ({"euler_cpu_cores": 0}, "euler_cpu_cores"),
    ({"slurm_gpus": -1}, "slurm_gpus"),
    ({"slurm_partition": ""}, "slurm_partition"),
    ({"slurm_extra_args": "--qos=high"}, "slurm_extra_args"),
    ({"slurm_modules": [""]}, "slurm_modules"),
])
def test_bad_values_name_the_file_and_key(host_vars, key):
    with pytest.raises(UserError) as caught:
        sbatch_settings(host_vars, "group_vars/server/main.yml")
    assert str(caught.value).startswith(f"group_vars/server/main.yml: {key}: expected")
