"""The settings doe itself reads from group_vars/all, typed and checked once per command.

group_vars are Ansible's; most of their keys are for the roles and stay untyped dictionaries there.
The keys below steer doe's own behaviour: they are read once (not at every poll), checked with one
message naming the file, the key and what was expected, and handed to the parts that need them.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from doe_cli.config import Project, group_var_true, load_group_vars
from doe_cli.errors import UserError

ALL_FILE = "group_vars/all/main.yml"


class AllSettings(BaseModel):
    """group_vars/all as doe reads it (the other keys are the roles' and are kept as they are)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    prj_id: str = Field("doe", min_length=1, description="the project's folder on the hosts")
    etl_minimum_delay_sec: float = Field(10, ge=0, description="seconds between two ETL runs while jobs run")
    fetch_max_file_mb: float = Field(1024, gt=0, description="a job's files larger than this are not fetched")
    local_parallel: Annotated[bool, BeforeValidator(group_var_true)] = Field(
        False, description="the local cloud runs the experiments of a suite at the same time")
    notify: list[dict[str, Any]] | None = Field(None, description="notification targets")

    @property
    def fetch_max_file_bytes(self) -> int:
        return int(self.fetch_max_file_mb * 1024 * 1024)


_CACHE: dict[str, AllSettings] = {}


def all_settings(project: Project) -> AllSettings:
    """group_vars/all's settings, read and checked once per command (and per config dir)."""
    key = str(project.group_vars_dir)
    if key not in _CACHE:
        _CACHE[key] = parse_all_settings(load_group_vars(project, "all"))
    return _CACHE[key]


def parse_all_settings(values: dict[str, Any]) -> AllSettings:
    # prj_id may be a number in YAML (`prj_id: 2024`): a folder name all the same.
    if isinstance(values.get("prj_id"), int | float) and not isinstance(values.get("prj_id"), bool):
        values = {**values, "prj_id": str(values["prj_id"])}
    try:
        return AllSettings.model_validate(values)
    except ValidationError as error:
        first = error.errors()[0]
        path = ".".join(str(part) for part in first["loc"]) or None
        raise UserError(f"{_expected(first)}, got {first.get('input')!r}", file=ALL_FILE, path=path) from None


def _expected(error: Any) -> str:
    field = AllSettings.model_fields.get(str(error["loc"][0])) if error["loc"] else None
    what = f" ({field.description})" if field is not None and field.description else ""
    message = str(error.get("msg", "invalid value")).replace("Input should be", "expected")
    return f"{message[0].lower()}{message[1:]}{what}"
