"""Turn the suite's described instances into a static Ansible inventory (as a dict for to_nice_yaml).

Groups: suite_<id> with one child group per host type, so group_vars/<host_type>/ applies. Hosts are
named <exp>-<host_type>-<idx> like on every other cloud. `overrides` maps a host type and the
instance's index within that type (tag doe:index) to host vars that replace the discovered ones; tests
use it to point the emulator's fake instances at local sshd hosts.
"""

from __future__ import annotations


def _override_for(overrides: dict, host_type: str, index: str) -> dict:
    per_type = (overrides or {}).get(host_type) or {}
    found = per_type.get(index, per_type.get(int(index)) if index.isdigit() else None)
    return dict(found or {})


def doe_aws_inventory(instances: list[dict], suite_id: str, overrides: dict | None = None,
                      common_vars: dict | None = None) -> dict:
    host_groups: dict[str, dict] = {}
    for instance in sorted(instances, key=lambda i: i["instance_id"]):
        tags = instance.get("tags") or {}
        host_type, index = tags.get("doe:host_type"), tags.get("doe:index")
        exp, exp_index = tags.get("doe:experiment"), tags.get("doe:exp_index")
        if None in (host_type, index, exp, exp_index):
            continue  # not yet given a slot: aws_instances tags every instance before this runs
        host_vars = {
            "ansible_host": instance.get("public_ip_address") or instance.get("private_ip_address"),
            "private_dns_name": instance.get("private_dns_name", ""),
            "public_dns_name": instance.get("public_dns_name", ""),
            "private_ip_address": instance.get("private_ip_address", ""),
            "instance_id": instance["instance_id"],
            # What the status page prices the instance by (doe_cli/clouds/aws/cost.py): no AWS call per poll.
            "instance_type": instance.get("instance_type", ""),
            "launch_time": str(instance.get("launch_time") or ""),
            "exp_name": exp,
            "host_type": host_type,
            "exp_host_type_idx": int(exp_index),
            "host_type_idx": int(index),
            "tags": dict(sorted(tags.items())),
        }
        host_vars.update(_override_for(overrides or {}, host_type, str(index)))
        group = host_groups.setdefault(host_type, {"hosts": {}})
        group["hosts"][f"{exp}-{host_type}-{exp_index}"] = host_vars
    for group in host_groups.values():
        group["hosts"] = dict(sorted(group["hosts"].items()))
    return {
        "all": {
            "vars": dict(common_vars or {}),
            "children": {f"suite_{suite_id}": {"children": dict(sorted(host_groups.items()))}},
        }
    }


class FilterModule:
    def filters(self):
        return {"doe_aws_inventory": doe_aws_inventory}
