"""The settings doe itself reads from group_vars, typed and checked once per command.

group_vars are Ansible's; most of their keys are for the roles and stay untyped there. The keys that
steer doe (common.py: prj_id, fetch limits, notify, job_timeout; aws.py; slurm.py) are read once per
command (config.group_vars), their templates rendered as inventories render group_vars/all
(doe-suite projects write `prj_id: example_{{ does_project_id_suffix }}`), checked with one message naming
the file, the key and what was expected, and handed to the parts (and the AWS roles) that need them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from doe_cli.config import GroupVars, Project, forget_group_vars, group_vars, holds_template
from doe_cli.settings.aws import AwsHostTypeSettings, AwsSettings, parse_aws_settings
from doe_cli.settings.check import check, keys_of
from doe_cli.settings.common import ALL_FILE, AllSettings, HostTypeSettings, parse_all_settings
from doe_cli.settings.slurm import SlurmHostTypeSettings

__all__ = ["ALL_FILE", "AllSettings", "AwsHostTypeSettings", "AwsSettings", "HostTypeSettings", "ProjectSettings",
           "SlurmHostTypeSettings", "all_settings", "forget", "parse_all_settings", "parse_aws_settings",
           "settings_of"]

Model = TypeVar("Model", bound=BaseModel)


class ProjectSettings:
    """A project's settings, each model checked when first asked for (a bad Slurm key stops no AWS run)."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self._checked: dict[tuple[type[BaseModel], str], BaseModel] = {}

    @property
    def all(self) -> AllSettings:
        return self._check(AllSettings, "all", over_all=False)

    @property
    def aws(self) -> AwsSettings:
        return self._check(AwsSettings, "all", over_all=False)

    def host_type(self, name: str) -> HostTypeSettings:
        return self._check(HostTypeSettings, name, over_all=True)

    def slurm_host_type(self, name: str) -> SlurmHostTypeSettings:
        return self._check(SlurmHostTypeSettings, name, over_all=True)

    def aws_host_type(self, name: str) -> AwsHostTypeSettings:
        # As the preflight role always read it: the host type's own file, not all's.
        return self._check(AwsHostTypeSettings, name, over_all=False)

    def aws_host_types(self, names: list[str]) -> dict[str, dict[str, Any]]:
        """`doe_aws_host_types` of the AWS playbooks: each host type's settings, defaults filled in."""
        return {name: self.aws_host_type(name).role_vars() for name in dict.fromkeys(names)}

    def _check(self, model: type[Model], group: str, *, over_all: bool) -> Model:
        key = (model, group)
        if key not in self._checked:
            own = group_vars(self.project, group)
            context = own if group == "all" else own.over(group_vars(self.project, "all"))
            self._checked[key] = check(model, self._rendered(model, context if over_all else own, context))
        return self._checked[key]  # type: ignore[return-value]

    def _rendered(self, model: type[BaseModel], values: GroupVars, context: GroupVars) -> GroupVars:
        """The model's keys whose values hold Jinja, rendered with group_vars and doe-suite's variables."""
        templated = [key for key in keys_of(model) if key in values.values and holds_template(values.values[key])]
        if not templated:
            return values
        # jinja2: only for a setting that holds a template
        from doe_cli.clouds.inventory_template import InventoryVars, environment_defaults

        variables = InventoryVars(suite=None, cloud="", group_vars=context.values, files=context.files,
                                  defaults=environment_defaults(self.project), host_types=None)
        rendered = {key: variables.get(key, values.file_of(key)) for key in templated}
        return GroupVars(values={**values.values, **rendered}, files=values.files, default_file=values.default_file)


_PROJECTS: dict[Path, ProjectSettings] = {}


def settings_of(project: Project) -> ProjectSettings:
    """The project's settings, read once per command (and per config dir)."""
    if project.group_vars_dir not in _PROJECTS:
        _PROJECTS[project.group_vars_dir] = ProjectSettings(project)
    return _PROJECTS[project.group_vars_dir]


def all_settings(project: Project) -> AllSettings:
    """group_vars/all's settings, read and checked once per command (and per config dir)."""
    return settings_of(project).all


def forget() -> None:
    """A new command: group_vars are read again (tests run several commands in one process)."""
    _PROJECTS.clear()
    forget_group_vars()
