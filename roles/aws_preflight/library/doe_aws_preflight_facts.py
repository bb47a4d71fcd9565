"""Gather what preflight checks in one call: caller identity, region, AMIs, key pair, instance types.

One module start instead of one per question (each costs about 2 s, mostly importing boto3). It only
reports; the role's tasks decide and word the errors, except when AWS cannot be used at all (endpoint
unreachable, credentials missing or rejected): then it fails with the wording every doe module shares.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: doe_aws_preflight_facts
short_description: Look up what an AWS suite needs before anything is created.
options:
  image_ids:
    description: AMI ids to look up.
    type: list
    elements: str
    default: []
  key_name:
    description: Key pair to look up; empty means none.
    type: str
    default: ""
  instance_types:
    description: Instance types whose availability in the region is looked up.
    type: list
    elements: str
    default: []
  hosts:
    description: One entry per host the suite needs, with its aws_instance_type and aws_market (on-demand or spot).
    type: list
    elements: dict
    default: []
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

RETURN = r"""
account:
  description: Account id of the credentials.
  returned: always
  type: str
region_known:
  description: Whether the region is enabled for the account.
  returned: always
  type: bool
images_found:
  description: The AMI ids of image_ids that exist.
  returned: always
  type: list
key_found:
  description: Whether key_name exists.
  returned: always
  type: bool
instance_types_offered:
  description: The instance types of instance_types offered in the region.
  returned: always
  type: list
vcpu_quotas:
  description:
    - Per market, the vCPUs the suite's standard-family instances (A, C, D, H, I, M, R, T, Z) need and the account's
      quota for them (needed, quota, code, exceeded); quota is null and exceeded false when Service Quotas does
      not tell (no permission, or an emulator).
  returned: always
  type: list
"""

from ansible.module_utils.doe_aws_access import access_problem
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

try:
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError:
    pass  # AnsibleAWSModule reports the missing botocore itself

# Service Quotas codes of the vCPU limits of standard instance families, per market.
STANDARD_VCPU_QUOTAS = {"on-demand": "L-1216C47A", "spot": "L-34B43A08"}
STANDARD_FAMILIES = set("acdhimrtz")


def _is_standard(instance_type: str) -> bool:
    family = instance_type.split(".", 1)[0]
    return family[:1] in STANDARD_FAMILIES and not family.startswith(("inf", "dl", "trn", "hpc"))


def vcpu_quotas(module, ec2, hosts: list[dict], offered: set[str]) -> list[dict]:
    instance_counts: dict[str, dict[str, int]] = {}
    for host in hosts:
        instance_type = host["aws_instance_type"]
        if instance_type in offered:
            per_type = instance_counts.setdefault(host.get("aws_market", "on-demand"), {})
            per_type[instance_type] = per_type.get(instance_type, 0) + 1
    types = sorted({t for counts in instance_counts.values() for t in counts if _is_standard(t)})
    if not types:
        return []
    described = ec2.describe_instance_types(InstanceTypes=types)["InstanceTypes"]
    vcpus = {t["InstanceType"]: t["VCpuInfo"]["DefaultVCpus"] for t in described}
    quotas_client = module.client("service-quotas")
    checks = []
    for market, counts in sorted(instance_counts.items()):
        needed = sum(vcpus.get(t, 0) * int(n) for t, n in counts.items() if _is_standard(t))
        if not needed or market not in STANDARD_VCPU_QUOTAS:
            continue
        try:
            quota = quotas_client.get_service_quota(ServiceCode="ec2", QuotaCode=STANDARD_VCPU_QUOTAS[market])
            value = quota["Quota"]["Value"]
        except (BotoCoreError, ClientError):
            value = None  # the API does not tell: no check
        checks.append({"market": market, "needed": needed, "quota": value, "code": STANDARD_VCPU_QUOTAS[market],
                       "exceeded": value is not None and needed > value})
    return checks


def main() -> None:
    module = AnsibleAWSModule(
        argument_spec={
            "image_ids": {"type": "list", "elements": "str", "default": []},
            "key_name": {"type": "str", "default": ""},
            "instance_types": {"type": "list", "elements": "str", "default": []},
            "hosts": {"type": "list", "elements": "dict", "default": []},
        },
        supports_check_mode=True,
    )
    facts = {"account": "", "region_known": False, "images_found": [], "key_found": False,
             "instance_types_offered": [], "vcpu_quotas": []}
    try:
        facts["account"] = module.client("sts").get_caller_identity()["Account"]
        ec2 = module.client("ec2")
        region = module.region
        facts["region_known"] = bool(ec2.describe_regions(
            Filters=[{"Name": "region-name", "Values": [region]}])["Regions"])
        if not facts["region_known"]:
            module.exit_json(changed=False, **facts)
        if module.params["image_ids"]:
            images = ec2.describe_images(Filters=[{"Name": "image-id", "Values": module.params["image_ids"]}])
            facts["images_found"] = sorted(i["ImageId"] for i in images["Images"])
        if module.params["key_name"]:
            keys = ec2.describe_key_pairs(Filters=[{"Name": "key-name", "Values": [module.params["key_name"]]}])
            facts["key_found"] = bool(keys["KeyPairs"])
        if module.params["instance_types"]:
            offers = ec2.describe_instance_type_offerings(
                LocationType="region", Filters=[{"Name": "instance-type", "Values": module.params["instance_types"]}])
            facts["instance_types_offered"] = sorted(o["InstanceType"] for o in offers["InstanceTypeOfferings"])
            facts["vcpu_quotas"] = vcpu_quotas(module, ec2, module.params["hosts"],
                                               set(facts["instance_types_offered"]))
    except (BotoCoreError, ClientError) as error:
        problem = access_problem(error, module.region)
        if problem:
            module.fail_json(**problem)
        module.fail_json_aws(error, msg="Could not look up the suite's AWS prerequisites")
    module.exit_json(changed=False, **facts)


if __name__ == "__main__":
    main()
