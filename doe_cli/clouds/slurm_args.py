"""A host type's Slurm resources, from its group_vars, as sbatch arguments (doe_cli/settings/slurm.py
names the keys and checks them)."""

from __future__ import annotations

from typing import Any

from doe_cli.config import GroupVars
from doe_cli.settings.check import check
from doe_cli.settings.slurm import SlurmHostTypeSettings


def sbatch_settings(host_vars: dict[str, Any], where: str) -> dict[str, list[str]]:
    """{"sbatch_args": [...], "modules": [...]} for one host type; `where` names its group_vars file."""
    settings = check(SlurmHostTypeSettings, GroupVars(values=host_vars, files={}, default_file=where))
    return {"sbatch_args": settings.sbatch_args(), "modules": list(settings.slurm_modules or [])}
