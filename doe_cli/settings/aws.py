"""The AWS settings doe reads: group_vars/all's (region, budget, prices, lifetime) and each host type's
(AMI, instance type, root volume, market). The preflight role gets a host type's as a variable
(`doe_aws_host_types`), defaults filled in, so Python and the roles read one checked value."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from doe_cli.config import GroupVars
from doe_cli.settings.check import check, expects
from doe_cli.settings.common import ALL_FILE

DEFAULT_LIFETIME_HOURS = 24.0
DEFAULT_SETUP_ALLOWANCE_MINUTES = 10.0

# A number as YAML writes one (no string, no boolean), finite.
Amount = Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)]


def _empty_when_null(empty: Any) -> BeforeValidator:
    # `key:` with nothing after it is YAML's null: the same as leaving the key out.
    return BeforeValidator(lambda value: empty if value is None else value)


class AwsSettings(BaseModel):
    """group_vars/all's AWS keys as doe reads them (the roles read these and the others as Ansible vars)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    aws_region: str | None = Field(default=None, description="the AWS region of every resource")
    aws_budget_usd: Amount = Field(default=0.0, json_schema_extra=expects("a number, 0 or more"))
    aws_max_lifetime_hours: Amount = Field(default=DEFAULT_LIFETIME_HOURS, json_schema_extra=expects("a number, 0 or more"))
    aws_setup_allowance_minutes: Amount = Field(
        default=DEFAULT_SETUP_ALLOWANCE_MINUTES,
        json_schema_extra=expects("the minutes provisioning and host setup take (a number, 0 or more)"))
    aws_price_usd_per_hour: Annotated[dict[str, Amount | None], _empty_when_null({})] = Field(
        default_factory=dict,
        json_schema_extra=expects("USD per hour (a number, 0 or more) per instance type, e.g. {r6i.8xlarge: 2.016}"))
    # {host type: {index within the type: host vars}}: tests map an emulator's instances onto local sshd hosts.
    aws_inventory_host_overrides: Annotated[dict[str, dict[int, dict[str, Any]]], _empty_when_null({})] = Field(
        default_factory=dict,
        json_schema_extra=expects("{host type: {index: {ansible_host, ansible_port, ...}}}"))


def parse_aws_settings(values: dict[str, Any]) -> AwsSettings:
    """group_vars/all's values checked; errors name group_vars/all/main.yml."""
    return check(AwsSettings, GroupVars(values=values, files={}, default_file=ALL_FILE))


class AwsHostTypeSettings(BaseModel):
    """group_vars/<host type>'s AWS keys. The AMI and instance type are left unset when missing: the plan
    and the preflight reject that with the region and the file named."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    aws_instance_type: str | None = Field(default=None, description="an EC2 instance type such as r6i.8xlarge")
    aws_ami_id: str | None = Field(default=None, description="the id of an AMI in aws_region (ami-...)")
    aws_root_device_name: str = Field(default="/dev/sda1", description="the AMI's root device")
    aws_root_volume_size_gb: int = Field(default=16, ge=1,
                                         json_schema_extra=expects("a whole number of GB, 1 or more"))
    aws_root_volume_type: str = Field(default="gp3", min_length=1, description="an EBS volume type such as gp3")
    aws_root_volume_snapshot: Annotated[str, _empty_when_null("")] = Field(default="", description="a snapshot id the root volume starts from; empty: none")
    aws_iam_instance_profile: Annotated[str, _empty_when_null("")] = Field(default="", description="an IAM instance profile name; empty: none")
    aws_market: Literal["on-demand", "spot"] = Field(default="on-demand", json_schema_extra=expects("on-demand or spot"))

    def role_vars(self) -> dict[str, Any]:
        """The host type's entry of `doe_aws_host_types` (unset keys left out, as the role tests `defined`)."""
        return self.model_dump(exclude_none=True)
