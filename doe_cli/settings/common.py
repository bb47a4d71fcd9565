"""The settings every cloud reads: group_vars/all's that steer doe, and a host type's job_timeout."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from doe_cli.config import GroupVars, group_var_true
from doe_cli.settings.check import check, expects

ALL_FILE = "group_vars/all/main.yml"


def _text_of_number(value: Any) -> Any:
    # prj_id may be a number in YAML (`prj_id: 2024`): a folder name all the same.
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


class AllSettings(BaseModel):
    """group_vars/all as doe reads it (the other keys are the roles' and are kept as they are)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    prj_id: Annotated[str, BeforeValidator(_text_of_number)] = Field(default="doe", min_length=1, pattern=r"^[^/]*[^/\s][^/]*$", description="the project's folder on the hosts",
        json_schema_extra=expects("a folder name (the project's folder on the hosts)"))
    etl_minimum_delay_sec: float = Field(default=10, ge=0, description="seconds between two ETL runs while jobs run")
    fetch_max_file_mb: float = Field(default=1024, gt=0, description="a job's files larger than this are not fetched")
    local_parallel: Annotated[bool, BeforeValidator(group_var_true)] = Field(default=False, description="the local cloud runs the experiments of a suite at the same time")
    notify: list[dict[str, Any]] | None = Field(default=None, description="notification targets",
        json_schema_extra=expects("a list of {webhook: URL} or {command: ...}", secret=True))

    @property
    def fetch_max_file_bytes(self) -> int:
        return int(self.fetch_max_file_mb * 1024 * 1024)


def parse_all_settings(values: dict[str, Any]) -> AllSettings:
    """group_vars/all's values (templates rendered) checked; errors name group_vars/all/main.yml."""
    return check(AllSettings, GroupVars(values=values, files={}, default_file=ALL_FILE))


def _no_limit_when_empty(value: Any) -> Any:
    # `job_timeout: 0`, an empty value or null: no limit, as doe-suite reads it.
    return None if not value else value


class HostTypeSettings(BaseModel):
    """A host type's group_vars (over all's) as every cloud reads them."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    job_timeout: Annotated[float | None, BeforeValidator(_no_limit_when_empty)] = Field(default=None, allow_inf_nan=False, json_schema_extra=expects("a number of seconds"),
        description="seconds a job may run before it is stopped (the design and --job-timeout win)")
