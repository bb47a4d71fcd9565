"""List the live EC2 resources carrying given tags, every kind in one call.

Listing each kind with its own *_info module costs one module start per kind (about 2 s each); this
module does the same describe calls in one process, so a cleanup or a dry run starts quickly.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: doe_aws_tagged_resources
short_description: List the live EC2 resources that carry given tags.
description:
  - Instances (not terminated), security groups, route tables, internet gateways, subnets, VPCs, key pairs
    and launch templates whose tags match all of I(tags).
options:
  tags:
    description: Tag key to value; a resource must carry all of them.
    type: dict
    required: true
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

RETURN = r"""
resources:
  description: Per kind, the resources found with the fields needed to delete them.
  returned: always
  type: dict
"""

from ansible.module_utils.doe_aws_access import access_problem
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

try:
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError:
    pass  # AnsibleAWSModule reports the missing botocore itself

LIVE_STATES = ["pending", "running", "shutting-down", "stopping", "stopped"]


def _pages(client, operation: str, key: str, **kwargs) -> list[dict]:
    if client.can_paginate(operation):
        return [item for page in client.get_paginator(operation).paginate(**kwargs) for item in page[key]]
    return getattr(client, operation)(**kwargs)[key]


def list_tagged(client, tags: dict[str, str]) -> dict[str, list[dict]]:
    filters = [{"Name": f"tag:{key}", "Values": [str(value)]} for key, value in sorted(tags.items())]
    reservations = _pages(client, "describe_instances", "Reservations",
                          Filters=filters + [{"Name": "instance-state-name", "Values": LIVE_STATES}])
    return {
        "instances": [{"id": i["InstanceId"]} for r in reservations for i in r["Instances"]],
        "security_groups": [{"id": g["GroupId"], "vpc_id": g.get("VpcId")}
                            for g in _pages(client, "describe_security_groups", "SecurityGroups", Filters=filters)],
        "route_tables": [{"id": t["RouteTableId"], "vpc_id": t["VpcId"]}
                         for t in _pages(client, "describe_route_tables", "RouteTables", Filters=filters)],
        "internet_gateways": [{"id": g["InternetGatewayId"]}
                              for g in _pages(client, "describe_internet_gateways", "InternetGateways",
                                              Filters=filters)],
        "subnets": [{"id": s["SubnetId"], "vpc_id": s["VpcId"], "cidr": s["CidrBlock"]}
                    for s in _pages(client, "describe_subnets", "Subnets", Filters=filters)],
        "vpcs": [{"id": v["VpcId"]} for v in _pages(client, "describe_vpcs", "Vpcs", Filters=filters)],
        "key_pairs": [{"id": k["KeyName"]} for k in client.describe_key_pairs(Filters=filters)["KeyPairs"]],
        "launch_templates": [{"id": t["LaunchTemplateId"]}
                             for t in _pages(client, "describe_launch_templates", "LaunchTemplates",
                                             Filters=filters)],
    }


def main() -> None:
    module = AnsibleAWSModule(argument_spec={"tags": {"type": "dict", "required": True}},
                              supports_check_mode=True)
    if not module.params["tags"]:
        module.fail_json(msg="tags must not be empty: an empty filter would match every resource")
    client = module.client("ec2")
    try:
        resources = list_tagged(client, module.params["tags"])
    except (BotoCoreError, ClientError) as error:
        problem = access_problem(error, module.region)
        if problem:
            module.fail_json(**problem)
        module.fail_json_aws(error, msg="Could not list the tagged resources")
    module.exit_json(changed=False, resources=resources)


if __name__ == "__main__":
    main()
