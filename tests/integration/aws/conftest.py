"""A real moto server for the AWS tests, plus a config dir whose host types use the emulator's AMIs.

The emulator's instances get fake public addresses: no test ever connects to them (waiting for SSH is
turned off in the test config).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3
import pytest
import yaml

from doe_cli.config import Project

REGION = "eu-north-1"
EMULATOR_AMI = "ami-1e749f67"  # shipped by moto in every region
VENV_BIN = Path(sys.executable).parent
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
}
TEST_HOST_TYPES = {
    "small": "r6i.8xlarge",
    "medium": "r6i.16xlarge",
    "large": "r6i.32xlarge",
}


def free_port() -> int:
    # The port may be taken between closing this socket and moto binding it; unlikely, and the
    # readiness poll below would then fail loudly instead of hanging.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory) -> str:
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with log.open("wb") as log_file:
        server = subprocess.Popen([str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                                  stdout=log_file, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        if server.poll() is not None:
            raise RuntimeError(f"moto_server exited with {server.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2):
                break
        except OSError:
            if time.monotonic() > deadline:
                server.kill()
                raise RuntimeError("moto_server did not answer within 30 s") from None
            time.sleep(0.1)
    saved = {key: os.environ.get(key) for key in [*AWS_ENV, "AWS_ENDPOINT_URL"]}
    os.environ.update(AWS_ENV, AWS_ENDPOINT_URL=endpoint)
    try:
        yield endpoint
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def moto_reset(moto_endpoint: str) -> None:
    request = urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass


@pytest.fixture(scope="session")
def ec2(moto_endpoint: str):
    return boto3.client("ec2", region_name=REGION, endpoint_url=moto_endpoint,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture(scope="session")
def ssh_key(tmp_path_factory) -> Path:
    key = tmp_path_factory.mktemp("key") / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "doe-test", "-f", str(key)], check=True)
    return key


def write_config(config_dir: Path, ssh_key: Path, *, project_id: str, host_types: dict[str, dict] | None = None,
                 **aws_settings) -> Project:
    """A config dir for the emulator: its AMI, no SSH wait, a fixed SSH source CIDR."""
    (config_dir / "designs").mkdir(parents=True, exist_ok=True)
    settings = {
        "prj_id": project_id,
        "aws_region": REGION,
        "aws_zone": "a",
        "aws_vpc_cidr": "10.77.0.0/16",
        "aws_subnet_cidr": "10.77.0.0/24",
        "aws_key_name": "",
        "aws_ssh_private_key_file": str(ssh_key),
        "aws_ssh_public_key_file": f"{ssh_key}.pub",
        "aws_ssh_user": "ubuntu",
        "aws_ssh_ingress_cidr": "203.0.113.7/32",
        "aws_wait_for_ssh": False,
        "aws_max_lifetime_hours": 6,
        "aws_budget_usd": 100,
        "aws_price_usd_per_hour": {"r6i.8xlarge": 2.016, "r6i.16xlarge": 4.032, "r6i.32xlarge": 8.064},
        **aws_settings,
    }
    _write_yaml(config_dir / "group_vars" / "all" / "main.yml", settings)
    types = host_types if host_types is not None else {
        name: {"aws_instance_type": instance_type, "aws_ami_id": EMULATOR_AMI, "aws_root_volume_size_gb": 20}
        for name, instance_type in TEST_HOST_TYPES.items()}
    if host_types is None:
        types["large"]["aws_market"] = "spot"
    for name, values in types.items():
        _write_yaml(config_dir / "group_vars" / name / "main.yml", values)
    return Project(config_dir=config_dir, results_dir=config_dir / "results")


def _write_yaml(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def tagged(ec2, key: str, value: str) -> dict[str, list[str]]:
    """Ids of every live resource carrying the tag, per kind (moto's defaults carry no doe tag)."""
    tag_filter = [{"Name": f"tag:{key}", "Values": [value]}]
    live = [{"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}]
    reservations = ec2.describe_instances(Filters=tag_filter + live)["Reservations"]
    return {
        "instances": [i["InstanceId"] for r in reservations for i in r["Instances"]],
        "vpcs": [v["VpcId"] for v in ec2.describe_vpcs(Filters=tag_filter)["Vpcs"]],
        "subnets": [s["SubnetId"] for s in ec2.describe_subnets(Filters=tag_filter)["Subnets"]],
        "internet_gateways": [g["InternetGatewayId"]
                              for g in ec2.describe_internet_gateways(Filters=tag_filter)["InternetGateways"]],
        "route_tables": [t["RouteTableId"] for t in ec2.describe_route_tables(Filters=tag_filter)["RouteTables"]],
        "security_groups": [g["GroupId"] for g in ec2.describe_security_groups(Filters=tag_filter)["SecurityGroups"]],
        "key_pairs": [k["KeyName"] for k in ec2.describe_key_pairs(Filters=tag_filter)["KeyPairs"]],
        "launch_templates": [t["LaunchTemplateId"]
                             for t in ec2.describe_launch_templates(Filters=tag_filter)["LaunchTemplates"]],
    }


def non_default_leftovers(ec2) -> dict[str, list[str]]:
    """Everything in the emulator that is not one of its per-region defaults."""
    live = [{"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}]
    reservations = ec2.describe_instances(Filters=live)["Reservations"]
    return {
        "instances": [i["InstanceId"] for r in reservations for i in r["Instances"]],
        "vpcs": [v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"] if not v.get("IsDefault")],
        "subnets": [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"] if not s.get("DefaultForAz")],
        "internet_gateways": [g["InternetGatewayId"] for g in ec2.describe_internet_gateways()["InternetGateways"]
                              if g.get("Tags")],
        "security_groups": [g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]
                            if g["GroupName"] != "default"],
        "route_tables": [t["RouteTableId"] for t in ec2.describe_route_tables()["RouteTables"]
                         if not any(a.get("Main") for a in t.get("Associations", []))],
        "key_pairs": [k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]],
        "launch_templates": [t["LaunchTemplateId"] for t in ec2.describe_launch_templates()["LaunchTemplates"]],
    }
