"""A host type's Slurm resources, from its group_vars, as sbatch arguments.

`slurm_partition`, `slurm_time_minutes`, `slurm_cpus_per_task`, `slurm_mem_per_cpu_mb`, `slurm_gpus`
(with `slurm_gpu_model` and `slurm_gpu_mem_mb`, the least memory per GPU), `slurm_extra_args` (a list of
sbatch arguments) and `slurm_modules` (environment modules loaded before a job), with doe-suite's names
as aliases: `euler_job_minutes`, `euler_cpu_cores`, `euler_cpu_mem_per_core_mb`, `euler_gpu_number`,
`euler_gpu_model`, `euler_gpu_min_mem_per_gpu_mb`, `euler_env` (modules, a list or one string).
"""

from __future__ import annotations

from typing import Any

from doe_cli.errors import UserError

# doe's name -> (doe-suite's alias, sbatch option; None: handled apart)
_NUMBERS = {
    "slurm_time_minutes": ("euler_job_minutes", "--time"),
    "slurm_cpus_per_task": ("euler_cpu_cores", "--cpus-per-task"),
    "slurm_mem_per_cpu_mb": ("euler_cpu_mem_per_core_mb", "--mem-per-cpu"),
    "slurm_gpus": ("euler_gpu_number", "--gpus"),
}


def sbatch_settings(host_vars: dict[str, Any], where: str) -> dict[str, list[str]]:
    """{"sbatch_args": [...], "modules": [...]} for one host type; `where` names its group_vars file."""
    args: list[str] = []
    partition = host_vars.get("slurm_partition")
    if partition is not None:
        if not isinstance(partition, str) or not partition.strip():
            raise UserError("expected a partition name", file=where, path="slurm_partition")
        args.append(f"--partition={partition}")
    for name, (alias, option) in _NUMBERS.items():
        key = name if host_vars.get(name) is not None else alias
        value = host_vars.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "slurm_gpus" else 1):
            raise UserError("expected a whole number" + (" >= 0" if name == "slurm_gpus" else " >= 1"),
                            file=where, path=key)
        if name == "slurm_gpus":
            args.extend(_gpu_args(host_vars, value, where))
            continue
        args.append(f"{option}={value}")
    extra = host_vars.get("slurm_extra_args")
    if extra is not None:
        if not isinstance(extra, list) or not all(isinstance(item, str) and item.startswith("-") for item in extra):
            raise UserError("expected a list of sbatch arguments such as [\"--qos=normal\"]", file=where,
                            path="slurm_extra_args")
        args.extend(extra)
    modules_key = "slurm_modules" if host_vars.get("slurm_modules") is not None else "euler_env"
    modules = host_vars.get(modules_key)
    if isinstance(modules, str):
        modules = modules.split()
    if modules is not None and (not isinstance(modules, list) or not all(isinstance(m, str) and m for m in modules)):
        raise UserError("expected a list of environment modules", file=where, path=modules_key)
    return {"sbatch_args": args, "modules": list(modules or [])}


def _gpu_args(host_vars: dict[str, Any], count: int, where: str) -> list[str]:
    """`--gpus=N` or `--gpus=MODEL:N`, and the least memory per GPU as a gres (doe-suite's Euler form)."""
    if count == 0:
        return []
    model_key = "slurm_gpu_model" if host_vars.get("slurm_gpu_model") is not None else "euler_gpu_model"
    model = host_vars.get(model_key)
    if model is not None and (not isinstance(model, str) or not model.strip() or ":" in model):
        raise UserError("expected a GPU model name such as a100", file=where, path=model_key)
    mem_key = "slurm_gpu_mem_mb" if host_vars.get("slurm_gpu_mem_mb") is not None else "euler_gpu_min_mem_per_gpu_mb"
    memory = host_vars.get(mem_key)
    if memory is not None and (isinstance(memory, bool) or not isinstance(memory, int) or memory < 0):
        raise UserError("expected a whole number of MB >= 0", file=where, path=mem_key)
    found = [f"--gpus={model}:{count}" if model else f"--gpus={count}"]
    if memory:
        found.append(f"--gres=gpumem:{memory}M")
    return found
