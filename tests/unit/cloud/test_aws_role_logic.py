"""Pure logic of the AWS roles: slot assignment (idempotent tags), the inventory shape, and the wording of
AWS access problems."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from botocore.exceptions import ClientError, PartialCredentialsError, ProxyConnectionError

from tests.conftest import REPO_ROOT


def _load(relative: str):
    path = REPO_ROOT / relative
    spec = importlib.util.spec_from_file_location(Path(relative).stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


slots = _load("roles/aws_instances/module_utils/doe_aws_slots.py")
inventory = _load("roles/aws_inventory/filter_plugins/doe_aws_inventory.py")
access = _load("playbooks/module_utils/doe_aws_access.py")

PLAN = [{"exp": "a", "host_type": "small", "idx": 0}, {"exp": "a", "host_type": "small", "idx": 1},
        {"exp": "b", "host_type": "small", "idx": 0}, {"exp": "b", "host_type": "large", "idx": 0}]


def instance(instance_id: str, host_type: str, minute: int, **tags) -> dict:
    return {"instance_id": instance_id, "launch_time": f"2026-01-01T10:{minute:02d}:00+00:00",
            "tags": {"doe:host_type": host_type, **tags}}


def test_new_instances_take_the_slots_in_launch_order_and_expire_after_the_lifetime():
    found = [instance("i-3", "small", 2), instance("i-1", "small", 0), instance("i-2", "small", 1),
             instance("i-9", "large", 5)]
    changes = {c["instance_id"]: c["tags"] for c in slots.doe_aws_slot_tags(found, PLAN, "doe-p-s-1", 6)}
    assert changes["i-1"] == {"doe:index": "0", "doe:experiment": "a", "doe:exp_index": "0",
                              "doe:expires": "2026-01-01T16:00:00Z", "Name": "doe-p-s-1-a-small-0"}
    assert (changes["i-2"]["Name"], changes["i-3"]["Name"]) == ("doe-p-s-1-a-small-1", "doe-p-s-1-b-small-0")
    assert changes["i-9"]["Name"] == "doe-p-s-1-b-large-0"


def test_tagged_instances_keep_their_slot_and_need_no_change():
    first = [instance("i-1", "small", 0), instance("i-2", "small", 1)]
    tagged = [{**i, "tags": {**i["tags"], **c["tags"]}}
              for i, c in zip(first, slots.doe_aws_slot_tags(first, PLAN[:2], "x", 1))]
    assert slots.doe_aws_slot_tags(tagged, PLAN[:2], "x", 1) == []


def test_a_replacement_instance_fills_the_free_slot_only():
    survivor = instance("i-2", "small", 1, **{"doe:index": "1", "doe:experiment": "a", "doe:exp_index": "1",
                                               "doe:expires": "2026-01-01T11:01:00Z", "Name": "x-a-small-1"})
    replacement = instance("i-7", "small", 30)
    changes = slots.doe_aws_slot_tags([replacement, survivor], PLAN[:2], "x", 1)
    assert [(c["instance_id"], c["tags"]["doe:index"]) for c in changes] == [("i-7", "0")]


def test_duplicate_or_out_of_range_indices_are_reassigned():
    one = instance("i-1", "small", 0, **{"doe:index": "0"})
    dup = instance("i-2", "small", 1, **{"doe:index": "0"})
    stray = instance("i-3", "small", 2, **{"doe:index": "7"})
    assignment = slots.assign_slots([one, dup, stray], PLAN)
    assert {k: v[0] for k, v in assignment.items()} == {"i-1": 0, "i-2": 1, "i-3": 2}


def test_inventory_groups_by_suite_and_host_type_and_applies_overrides():
    tags = {"doe:host_type": "small", "doe:index": "2", "doe:experiment": "b", "doe:exp_index": "0"}
    found = [{"instance_id": "i-1", "public_ip_address": "54.1.2.3", "private_ip_address": "10.0.0.5",
              "private_dns_name": "ip-10-0-0-5", "tags": tags},
             {"instance_id": "i-2", "private_ip_address": "10.0.0.6", "tags": {"doe:host_type": "small"}}]
    result = inventory.doe_aws_inventory(found, "42", {"small": {"2": {"ansible_host": "127.0.0.1",
                                                                       "ansible_port": 2201}}},
                                         {"ansible_user": "ubuntu"})
    assert result["all"]["vars"] == {"ansible_user": "ubuntu"}
    hosts = result["all"]["children"]["suite_42"]["children"]["small"]["hosts"]
    assert list(hosts) == ["b-small-0"]  # the instance without a slot is left out
    host = hosts["b-small-0"]
    assert (host["ansible_host"], host["ansible_port"]) == ("127.0.0.1", 2201)
    assert (host["instance_id"], host["private_dns_name"], host["exp_host_type_idx"]) == ("i-1", "ip-10-0-0-5", 0)


def test_inventory_uses_the_private_address_without_a_public_one():
    tags = {"doe:host_type": "large", "doe:index": "0", "doe:experiment": "a", "doe:exp_index": "0"}
    result = inventory.doe_aws_inventory([{"instance_id": "i-1", "private_ip_address": "10.0.0.9", "tags": tags}],
                                         "1")
    assert result["all"]["children"]["suite_1"]["children"]["large"]["hosts"]["a-large-0"]["ansible_host"] == \
        "10.0.0.9"


def test_credentials_aws_refuses_are_rejected_but_a_missing_permission_is_no_access_problem():
    refused = ClientError({"Error": {"Code": "InvalidClientTokenId",
                                     "Message": "The security token included in the request is invalid."}},
                          "GetCallerIdentity")
    problem = access.access_problem(refused, "eu-north-1")
    assert problem == {"aws_access_problem": "rejected",
                       "msg": "AWS credentials rejected (InvalidClientTokenId: The security token included in the "
                              "request is invalid.); set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"}
    denied = ClientError({"Error": {"Code": "UnauthorizedOperation", "Message": "no"}}, "DescribeVpcs")
    assert access.access_problem(denied, "eu-north-1") is None


def test_incomplete_credentials_name_the_missing_variable():
    partial = PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY")
    problem = access.access_problem(partial, "eu-north-1")
    assert problem["aws_access_problem"] == "no_credentials"
    assert problem["msg"].startswith("incomplete AWS credentials (Partial credentials found in env, missing: "
                                     "AWS_SECRET_ACCESS_KEY); set AWS_PROFILE")


def test_an_unreachable_proxy_is_named_as_botocore_masked_it():
    refused = ConnectionRefusedError(111, "Connection refused")
    cause = RuntimeError("Unable to connect to proxy")
    cause.__context__ = refused
    problem = access.access_problem(ProxyConnectionError(proxy_url="http://***:***@10.0.0.1:3128", error=cause),
                                    "eu-north-1")
    assert problem["aws_access_problem"] == "unreachable"
    assert problem["msg"].startswith("cannot reach the proxy http://***:***@10.0.0.1:3128 to the AWS API for region "
                                     "eu-north-1 (connection refused); check the network and proxy settings")
