"""A host type's Slurm settings (group_vars/<host type> over all's) and the sbatch arguments they make.

`slurm_partition`, `slurm_time_minutes`, `slurm_cpus_per_task`, `slurm_mem_per_cpu_mb`, `slurm_gpus`
(with `slurm_gpu_model` and `slurm_gpu_mem_mb`, the least memory per GPU), `slurm_extra_args` (a list of
sbatch arguments), `slurm_modules` (environment modules loaded before a job) and
`slurm_max_pending_minutes`, with doe-suite's names as aliases: `euler_job_minutes`, `euler_cpu_cores`,
`euler_cpu_mem_per_core_mb`, `euler_gpu_number`, `euler_gpu_model`, `euler_gpu_min_mem_per_gpu_mb`,
`euler_env` (modules, a list or one string). doe's name wins unless it is unset or null.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, model_validator

from doe_cli.settings.check import expects

DEFAULT_MAX_PENDING_MINUTES = 60.0

# doe's name -> doe-suite's alias
ALIASES = {
    "slurm_time_minutes": "euler_job_minutes",
    "slurm_cpus_per_task": "euler_cpu_cores",
    "slurm_mem_per_cpu_mb": "euler_cpu_mem_per_core_mb",
    "slurm_gpus": "euler_gpu_number",
    "slurm_gpu_model": "euler_gpu_model",
    "slurm_gpu_mem_mb": "euler_gpu_min_mem_per_gpu_mb",
    "slurm_modules": "euler_env",
}
# doe's name -> the sbatch option of a whole number
_OPTIONS = {"slurm_time_minutes": "--time", "slurm_cpus_per_task": "--cpus-per-task",
            "slurm_mem_per_cpu_mb": "--mem-per-cpu"}


def _aliased(name: str, expected: str, **constraints: Any) -> Any:
    return Field(default=None, validation_alias=AliasChoices(name, ALIASES[name]), json_schema_extra=expects(expected),
                 **constraints)


def _words(value: Any) -> Any:
    # doe-suite's euler_env is one string of modules.
    return value.split() if isinstance(value, str) else value


NonBlank = Annotated[str, Field(strict=True, pattern=r"\S")]


class SlurmHostTypeSettings(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    slurm_partition: NonBlank | None = Field(default=None, json_schema_extra=expects("a partition name"))
    slurm_time_minutes: StrictInt | None = _aliased("slurm_time_minutes", "a whole number >= 1", ge=1)
    slurm_cpus_per_task: StrictInt | None = _aliased("slurm_cpus_per_task", "a whole number >= 1", ge=1)
    slurm_mem_per_cpu_mb: StrictInt | None = _aliased("slurm_mem_per_cpu_mb", "a whole number >= 1", ge=1)
    slurm_gpus: StrictInt | None = _aliased("slurm_gpus", "a whole number >= 0", ge=0)
    slurm_gpu_model: Annotated[str, Field(strict=True, pattern=r"^[^:]*[^:\s][^:]*$")] | None = _aliased(
        "slurm_gpu_model", "a GPU model name such as a100")
    slurm_gpu_mem_mb: StrictInt | None = _aliased("slurm_gpu_mem_mb", "a whole number of MB >= 0", ge=0)
    slurm_extra_args: list[Annotated[str, Field(strict=True, pattern=r"^-")]] | None = Field(default=None, json_schema_extra=expects('a list of sbatch arguments such as ["--qos=normal"]'))
    slurm_modules: Annotated[list[Annotated[str, Field(strict=True, min_length=1)]] | None,
                             BeforeValidator(_words)] = _aliased("slurm_modules", "a list of environment modules")
    slurm_max_pending_minutes: float = Field(
        default=DEFAULT_MAX_PENDING_MINUTES, strict=True, ge=0, allow_inf_nan=False,
        json_schema_extra=expects("minutes >= 0 (0: wait forever)"))

    @model_validator(mode="before")
    @classmethod
    def _doe_names_win_unless_null(cls, values: Any) -> Any:
        # AliasChoices takes the first key present; a doe name set to null leaves the value to the alias.
        if not isinstance(values, dict):
            return values
        return {key: value for key, value in values.items() if not (key in ALIASES and value is None)}

    def sbatch_args(self) -> list[str]:
        args = [f"--partition={self.slurm_partition}"] if self.slurm_partition is not None else []
        args += [f"{option}={getattr(self, name)}" for name, option in _OPTIONS.items()
                 if getattr(self, name) is not None]
        if self.slurm_gpus:
            model = f"{self.slurm_gpu_model}:" if self.slurm_gpu_model else ""
            args.append(f"--gpus={model}{self.slurm_gpus}")
            if self.slurm_gpu_mem_mb:  # doe-suite's Euler form of the least memory per GPU
                args.append(f"--gres=gpumem:{self.slurm_gpu_mem_mb}M")
        return args + list(self.slurm_extra_args or [])

    def scheduler_config(self) -> dict[str, Any]:
        """What the job wrapper reads: {sbatch_args, modules, max_pending_minutes}."""
        return {"sbatch_args": self.sbatch_args(), "modules": list(self.slurm_modules or []),
                "max_pending_minutes": self.slurm_max_pending_minutes}
