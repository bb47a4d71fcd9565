"""doe run --cloud aws before any AWS call: the budget guard, and reading the discovery inventory."""

from __future__ import annotations

from pathlib import Path

import pytest

from doe_cli.errors import UserError
from doe_cli.run.aws_cloud import AwsCloud, _hosts_of
from doe_cli.run.hosts import HostSlot
from tests.integration.aws.conftest import write_config


def test_a_plan_over_budget_is_refused_before_anything_is_provisioned(tmp_path):
    project = write_config(tmp_path / "config", Path("/nonexistent/key"), project_id="budget_test",
                           aws_budget_usd=1)
    messages: list[str] = []
    cloud = AwsCloud.create(project, "s", 1700000099, accept_cost=False, log=messages.append)
    slots = [HostSlot("e", "large", 0, 1)]
    with pytest.raises(UserError, match="exceeds the budget") as raised:
        cloud.assign(slots)
    assert "aws_budget_usd" in str(raised.value)
    assert not cloud.provisioned and not cloud.assignment
    assert any(line.startswith("estimated cost") for line in messages)


def test_discovered_instances_are_found_by_slot_name_with_the_common_vars():
    inventory = {"all": {"vars": {"ansible_user": "ubuntu", "doe_cloud_setup_roles": ["host_packages"]},
                         "children": {"suite_7": {"children": {
                             "small": {"hosts": {"e-small-0": {"ansible_host": "10.0.0.5", "ansible_user": "root"}}},
                             "large": {"hosts": {"e-large-0": {"ansible_host": "10.0.0.6"}}}}}}}}
    hosts = _hosts_of(inventory, "7")
    assert sorted(hosts) == ["e-large-0", "e-small-0"]
    assert hosts["e-small-0"].host_type == "small" and hosts["e-small-0"].vars["ansible_user"] == "root"
    assert hosts["e-large-0"].vars["ansible_user"] == "ubuntu"
    assert hosts["e-large-0"].vars["doe_cloud_setup_roles"] == ["host_packages"]
    assert _hosts_of(inventory, "8") == {}
