"""Tag each running instance of a suite with its slot (experiment, index, Name, expiry), in one call.

A loop over amazon.aws.ec2_tag would start one module per instance (about 2 s each); this module
decides the slots (module_utils/doe_aws_slots.py) and tags every instance that needs it in one process.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: doe_aws_slot_tags
short_description: Tag a suite's instances with their slot of the host plan.
options:
  project:
    description: Project id (tag doe:project).
    type: str
    required: true
  suite_id:
    description: Suite id (tag doe:suite_id).
    type: str
    required: true
  host_plan:
    description: One entry {exp, host_type, idx} per host.
    type: list
    elements: dict
    required: true
  name_prefix:
    description: Prefix of the Name tags.
    type: str
    required: true
  lifetime_hours:
    description: Hours after launch written to tag doe:expires.
    type: float
    required: true
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

RETURN = r"""
tagged:
  description: Ids of the instances whose tags were set.
  returned: always
  type: list
instances:
  description: The suite's running instances with their addresses (instance_id, public_ip_address, private_ip_address).
  returned: always
  type: list
"""

from ansible.module_utils.doe_aws_slots import doe_aws_slot_tags
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

try:
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError:
    pass  # AnsibleAWSModule reports the missing botocore itself


def _suite_instances(client, project: str, suite_id: str) -> list[dict]:
    filters = [{"Name": "tag:doe:project", "Values": [project]},
               {"Name": "tag:doe:suite_id", "Values": [suite_id]},
               {"Name": "instance-state-name", "Values": ["pending", "running"]}]
    pages = client.get_paginator("describe_instances").paginate(Filters=filters)
    return [{
        "instance_id": i["InstanceId"],
        "launch_time": i["LaunchTime"].isoformat(),
        "tags": {t["Key"]: t["Value"] for t in i.get("Tags", [])},
        "public_ip_address": i.get("PublicIpAddress", ""),
        "private_ip_address": i.get("PrivateIpAddress", ""),
    } for page in pages for r in page["Reservations"] for i in r["Instances"]]


def main() -> None:
    module = AnsibleAWSModule(
        argument_spec={
            "project": {"type": "str", "required": True},
            "suite_id": {"type": "str", "required": True},
            "host_plan": {"type": "list", "elements": "dict", "required": True},
            "name_prefix": {"type": "str", "required": True},
            "lifetime_hours": {"type": "float", "required": True},
        },
        supports_check_mode=True,
    )
    params = module.params
    client = module.client("ec2")
    try:
        instances = _suite_instances(client, params["project"], params["suite_id"])
        changes = doe_aws_slot_tags(instances, params["host_plan"], params["name_prefix"], params["lifetime_hours"])
        if not module.check_mode:
            for change in changes:
                client.create_tags(Resources=[change["instance_id"]],
                                   Tags=[{"Key": k, "Value": v} for k, v in change["tags"].items()])
    except (BotoCoreError, ClientError) as error:
        module.fail_json_aws(error, msg="Could not tag the suite's instances")
    addresses = [{key: i[key] for key in ("instance_id", "public_ip_address", "private_ip_address")}
                 for i in instances]
    module.exit_json(changed=bool(changes), tagged=[c["instance_id"] for c in changes], instances=addresses)


if __name__ == "__main__":
    main()
