"""doe run --cloud aws before any AWS call: the budget guard, reading the discovery inventory, and what a
resume does with the instances its discovery finds (the discovery playbook itself is replaced here)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from doe_cli.clouds.aws import provision as aws_provision
from doe_cli.clouds.aws.cloud import AwsCloud, _hosts_of
from doe_cli.errors import UserError
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


def _discovery_finding(monkeypatch, slot_names: list[str]) -> None:
    """The resume's discovery (a playbook listing the suite's running instances) answering these slots."""
    def write_inventory(project, suite_id, folder, *, host_overrides=None):
        hosts = {name: {"ansible_host": f"10.0.0.{i}"} for i, name in enumerate(slot_names)}
        inventory = {"all": {"children": {f"suite_{suite_id}": {"children": {"large": {"hosts": hosts}}}}}}
        path = Path(folder) / "aws.yml"
        path.write_text(yaml.safe_dump(inventory))
        return path

    monkeypatch.setattr(aws_provision, "write_inventory", write_inventory)


def _set_up_suite(project, suite_id: int) -> Path:
    marker = project.results_dir / f"s_{suite_id}" / ".doe" / "setup.done"
    marker.parent.mkdir(parents=True)
    marker.write_text("setup finished\n")
    return marker


def test_a_resume_of_a_set_up_suite_takes_its_running_instances_without_plan_or_provisioning(tmp_path, monkeypatch):
    project = write_config(tmp_path / "config", Path("/nonexistent/key"), project_id="resume_test",
                           aws_budget_usd=1)  # over budget: a plan would refuse
    marker = _set_up_suite(project, 1700000098)
    _discovery_finding(monkeypatch, ["e-large-0", "e-large-1"])
    messages: list[str] = []
    cloud = AwsCloud.create(project, "s", 1700000098, accept_cost=False, log=messages.append)
    cloud.assign([HostSlot("e", "large", 0, 2), HostSlot("e", "large", 1, 2)])
    assert cloud.assignment["e-large-1"].vars["ansible_host"] == "10.0.0.1"
    assert cloud.provisioned and marker.exists()
    assert messages == ["resuming on the 2 running instance(s) of suite id 1700000098"]


def test_a_resume_missing_an_instance_plans_anew_and_sets_every_host_up_again(tmp_path, monkeypatch):
    project = write_config(tmp_path / "config", Path("/nonexistent/key"), project_id="resume_test",
                           aws_budget_usd=1)
    marker = _set_up_suite(project, 1700000097)
    _discovery_finding(monkeypatch, ["e-large-0"])
    messages: list[str] = []
    cloud = AwsCloud.create(project, "s", 1700000097, accept_cost=False, log=messages.append)
    with pytest.raises(UserError, match="exceeds the budget"):  # the replacement is planned like a new launch
        cloud.assign([HostSlot("e", "large", 0, 2), HostSlot("e", "large", 1, 2)])
    assert messages[0].startswith("no running instance for e-large-1 (expired or terminated)")
    assert not marker.exists()  # the controller sets the hosts up again
    assert not cloud.assignment
