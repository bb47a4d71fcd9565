"""One suite provisioned once for the module: resources, tags, inventory, idempotence, a second suite
beside it, and cleanup by tags after the local state is gone."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta

import pytest
import yaml
from typer.testing import CliRunner

from doe_cli.clouds.aws import clean as aws_clean
from doe_cli.clouds.aws import provision as aws_provision
from doe_cli.clouds.aws.host_plan import HostSlot
from doe_cli.errors import DoeError, UserError
from doe_cli.main import app

from .conftest import EMULATOR_AMI, non_default_leftovers, tagged, write_config

pytestmark = [pytest.mark.aws_fake, pytest.mark.slow]

SUITE, SUITE_ID = "three-types", "1700000001"
PLAN = [HostSlot("exp1", "small", 0), HostSlot("exp1", "small", 1), HostSlot("exp1", "medium", 0),
        HostSlot("exp2", "large", 0), HostSlot("exp2", "small", 0)]
TAGS = {"doe:project": "prov_test", "doe:suite": SUITE, "doe:suite_id": SUITE_ID}


def tag_dict(resource: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


@pytest.fixture(scope="module")
def project(tmp_path_factory, ssh_key, moto_endpoint):
    return write_config(tmp_path_factory.mktemp("config"), ssh_key, project_id="prov_test")


@pytest.fixture(scope="module")
def provisioned(project, ec2):
    suite_dir = project.results_dir / f"{SUITE}_{SUITE_ID}"
    result = aws_provision.provision(project, SUITE, SUITE_ID, PLAN, suite_dir)
    print(f"provision: {result.seconds:.1f} s, changed={result.changed}")
    yield result
    if any(tagged(ec2, "doe:suite_id", SUITE_ID).values()):  # a test failed before cleaning up
        aws_clean.clean(project, suite_id=SUITE_ID)


def instances_of_suite(ec2, suite_id: str) -> list[dict]:
    filters = [{"Name": "tag:doe:suite_id", "Values": [suite_id]},
               {"Name": "instance-state-name", "Values": ["pending", "running"]}]
    return [i for r in ec2.describe_instances(Filters=filters)["Reservations"] for i in r["Instances"]]


def test_every_resource_exists_with_the_suite_tags(provisioned, ec2):
    found = tagged(ec2, "doe:suite_id", SUITE_ID)
    assert {kind: len(ids) for kind, ids in found.items()} == {
        "instances": 5, "vpcs": 1, "subnets": 1, "internet_gateways": 1, "route_tables": 1,
        "security_groups": 1, "key_pairs": 1, "launch_templates": 1}
    (vpc,) = ec2.describe_vpcs(VpcIds=found["vpcs"])["Vpcs"]
    (subnet,) = ec2.describe_subnets(SubnetIds=found["subnets"])["Subnets"]
    (gateway,) = ec2.describe_internet_gateways(InternetGatewayIds=found["internet_gateways"])["InternetGateways"]
    (table,) = ec2.describe_route_tables(RouteTableIds=found["route_tables"])["RouteTables"]
    (group,) = ec2.describe_security_groups(GroupIds=found["security_groups"])["SecurityGroups"]
    for resource in (vpc, subnet, gateway, table, group):
        assert TAGS.items() <= tag_dict(resource).items()
    assert subnet["VpcId"] == vpc["VpcId"] and subnet["MapPublicIpOnLaunch"]
    assert gateway["Attachments"][0]["VpcId"] == vpc["VpcId"]
    assert {"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": gateway["InternetGatewayId"]}.items() <= next(
        r for r in table["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0").items()
    assert [a["SubnetId"] for a in table["Associations"]] == [subnet["SubnetId"]]
    ssh_rule = next(p for p in group["IpPermissions"] if p.get("FromPort") == 22)
    assert [r["CidrIp"] for r in ssh_rule["IpRanges"]] == ["203.0.113.7/32"]
    assert not any(r["CidrIp"] == "0.0.0.0/0" for p in group["IpPermissions"] for r in p.get("IpRanges", []))
    internal = next(p for p in group["IpPermissions"] if p["IpProtocol"] == "-1")
    assert [g["GroupId"] for g in internal["UserIdGroupPairs"]] == [group["GroupId"]]


def test_instances_are_tagged_with_their_slot_and_expire(provisioned, ec2):
    instances = instances_of_suite(ec2, SUITE_ID)
    slots = set()
    for instance in instances:
        tags = tag_dict(instance)
        assert TAGS.items() <= tags.items()
        slot = (tags["doe:experiment"], tags["doe:host_type"], int(tags["doe:exp_index"]))
        slots.add(slot)
        assert tags["Name"] == f"doe-prov_test-{SUITE}-{SUITE_ID}-{slot[0]}-{slot[1]}-{slot[2]}"
        launched = instance["LaunchTime"].replace(tzinfo=None)
        expires = datetime.strptime(tags["doe:expires"], "%Y-%m-%dT%H:%M:%SZ")
        assert abs(expires - launched - timedelta(hours=6)) < timedelta(seconds=2)
        assert instance["KeyName"] == f"doe-prov_test-{SUITE}-{SUITE_ID}"
        behaviour = ec2.describe_instance_attribute(InstanceId=instance["InstanceId"],
                                                    Attribute="instanceInitiatedShutdownBehavior")
        assert behaviour["InstanceInitiatedShutdownBehavior"]["Value"] == "terminate"
    assert slots == {(s.exp, s.host_type, s.idx) for s in PLAN}
    types = {tag_dict(i)["doe:host_type"]: i["InstanceType"] for i in instances}
    assert types == {"small": "r6i.8xlarge", "medium": "r6i.16xlarge", "large": "r6i.32xlarge"}
    small_indices = sorted(int(tag_dict(i)["doe:index"]) for i in instances if tag_dict(i)["doe:host_type"] == "small")
    assert small_indices == [0, 1, 2]


def test_spot_host_types_launch_through_a_spot_launch_template(provisioned, ec2):
    (template,) = ec2.describe_launch_templates(Filters=[{"Name": "tag:doe:suite_id", "Values": [SUITE_ID]}])[
        "LaunchTemplates"]
    assert TAGS.items() <= tag_dict(template).items()
    data = ec2.describe_launch_template_versions(LaunchTemplateId=template["LaunchTemplateId"])[
        "LaunchTemplateVersions"][0]["LaunchTemplateData"]
    assert data["InstanceMarketOptions"]["MarketType"] == "spot"
    by_type = {tag_dict(i)["doe:host_type"]: tag_dict(i) for i in instances_of_suite(ec2, SUITE_ID)}
    assert by_type["large"].get("aws:ec2launchtemplate:id") == template["LaunchTemplateId"]
    assert "aws:ec2launchtemplate:id" not in by_type["medium"]


def test_user_data_schedules_the_shutdown_at_the_max_lifetime(provisioned, ec2):
    import base64

    instance = instances_of_suite(ec2, SUITE_ID)[0]
    data = ec2.describe_instance_attribute(InstanceId=instance["InstanceId"], Attribute="userData")
    script = base64.b64decode(data["UserData"]["Value"]).decode()
    assert script.startswith("#!/bin/sh")
    assert "shutdown -h +360 " in script


def test_inventory_groups_hosts_by_suite_id_and_host_type(provisioned, ec2):
    inventory = yaml.safe_load(provisioned.inventory_file.read_text())
    groups = inventory["all"]["children"][f"suite_{SUITE_ID}"]["children"]
    assert {t: sorted(g["hosts"]) for t, g in groups.items()} == {
        "large": ["exp2-large-0"], "medium": ["exp1-medium-0"],
        "small": ["exp1-small-0", "exp1-small-1", "exp2-small-0"]}
    by_id = {i["InstanceId"]: i for i in instances_of_suite(ec2, SUITE_ID)}
    host = groups["small"]["hosts"]["exp2-small-0"]
    instance = by_id[host["instance_id"]]
    assert host["ansible_host"] == instance["PublicIpAddress"]
    assert host["private_dns_name"] == instance["PrivateDnsName"]
    assert host["tags"]["doe:experiment"] == "exp2" and host["exp_host_type_idx"] == 0
    assert inventory["all"]["vars"]["ansible_user"] == "ubuntu"
    copied = provisioned.inventory_file.parent / "group_vars" / "large" / "main.yml"
    assert yaml.safe_load(copied.read_text())["aws_instance_type"] == "r6i.32xlarge"


def test_rerun_changes_nothing(provisioned, project, ec2):
    before = tagged(ec2, "doe:suite_id", SUITE_ID)
    rerun = aws_provision.provision(project, SUITE, SUITE_ID, PLAN, project.results_dir / f"{SUITE}_{SUITE_ID}")
    print(f"rerun: {rerun.seconds:.1f} s, changed={rerun.changed}")
    assert rerun.changed == 0
    assert tagged(ec2, "doe:suite_id", SUITE_ID) == before


def test_inventory_overrides_replace_the_address_of_one_slot(provisioned, project):
    overrides = {"medium": {0: {"ansible_host": "127.0.0.1", "ansible_port": 2202}}}
    written = aws_provision.write_inventory(project, SUITE_ID, project.results_dir / f"{SUITE}_{SUITE_ID}",
                                            host_overrides=overrides)
    groups = yaml.safe_load(written.read_text())["all"]["children"][f"suite_{SUITE_ID}"]["children"]
    host = groups["medium"]["hosts"]["exp1-medium-0"]
    assert (host["ansible_host"], host["ansible_port"]) == ("127.0.0.1", 2202)
    assert "ansible_port" not in groups["large"]["hosts"]["exp2-large-0"]


def test_a_second_suite_failing_after_its_vpc_exists_leaves_nothing_and_spares_the_first(
        provisioned, project, ec2, ssh_key, tmp_path):
    # The other suite's medium type names an instance profile that does not exist: preflight passes,
    # its VPC, subnet, gateway, route table, security group, key pair and small instance are created,
    # then launching its medium instance fails and the playbook deletes everything of that suite only.
    before = tagged(ec2, "doe:suite_id", SUITE_ID)
    types = {"small": {"aws_instance_type": "r6i.8xlarge", "aws_ami_id": EMULATOR_AMI},
             "medium": {"aws_instance_type": "r6i.16xlarge", "aws_ami_id": EMULATOR_AMI,
                        "aws_iam_instance_profile": "no-such-profile"}}
    other_project = write_config(tmp_path / "config", ssh_key, project_id="prov_test", host_types=types)
    other_id = "1700000002"
    with pytest.raises(DoeError) as failed:
        aws_provision.provision(other_project, "other", other_id, [HostSlot("e", "small", 0),
                                                                   HostSlot("e", "medium", 0)],
                                other_project.results_dir / f"other_{other_id}")
    assert "Launch the instances of each host type" in str(failed.value)
    assert not isinstance(failed.value, UserError)
    assert not any(tagged(ec2, "doe:suite_id", other_id).values())
    assert tagged(ec2, "doe:suite_id", SUITE_ID) == before


def test_doe_clean_after_a_crash_finds_everything_by_tags(provisioned, project, ec2, monkeypatch):
    shutil.rmtree(project.results_dir)  # the controller's local state is gone
    expected = tagged(ec2, "doe:suite_id", SUITE_ID)
    runner = CliRunner()
    base = ["--config-dir", str(project.config_dir)]
    listed = runner.invoke(app, [*base, "clean", "--cloud", "aws", "--dry-run"])
    assert listed.exit_code == 0, listed.output
    for ids in expected.values():
        for resource_id in ids:
            assert resource_id in listed.stdout
    assert tagged(ec2, "doe:suite_id", SUITE_ID) == expected  # a dry run deletes nothing
    declined = runner.invoke(app, [*base, "clean", "--cloud", "aws", "--suite", SUITE, "--id", SUITE_ID],
                             input="")  # a script's empty stdin is no
    assert declined.exit_code == 1 and "nothing deleted: not confirmed" in declined.stderr
    assert tagged(ec2, "doe:suite_id", SUITE_ID) == expected
    cleaned = runner.invoke(app, [*base, "clean", "--cloud", "aws", "--suite", SUITE, "--id", SUITE_ID], input="y\n")
    assert cleaned.exit_code == 0, cleaned.output
    assert f"delete these {sum(map(len, expected.values()))} resource(s)? [y/N]" in cleaned.stderr
    assert not any(tagged(ec2, "doe:suite_id", SUITE_ID).values())
    assert not any(non_default_leftovers(ec2).values())
