"""The cost so far of a suite's EC2 instances: price x hours since launch, at least a minute each, at most
the lifetime; ended instances stop costing; the ledger survives a resume."""

from __future__ import annotations

import pytest

from doe_cli.clouds.aws.cost import CostLedger, launch_seconds, stored_cost
from doe_cli.errors import UserError
from doe_cli.settings.aws import parse_aws_settings
from tests.unit.cloud.test_aws_role_logic import inventory

LAUNCH = "2026-01-01T10:00:00+00:00"
T0 = launch_seconds(LAUNCH)
PRICES = {"r6i.8xlarge": 2.0, "r6i.16xlarge": 4.0}


def _host(instance_id: str, instance_type: str = "r6i.8xlarge", launch: str = LAUNCH) -> dict:
    return {"instance_id": instance_id, "instance_type": instance_type, "launch_time": launch}


def _ledger(**settings) -> CostLedger:
    ledger = CostLedger()
    ledger.take_settings(parse_aws_settings({"aws_budget_usd": 10, "aws_max_lifetime_hours": 6, **settings}))
    return ledger


def test_each_instance_costs_its_price_per_hour_since_launch():
    ledger = _ledger()
    ledger.found({"e-small-0": _host("i-1"), "e-large-0": _host("i-2", "r6i.16xlarge")}, PRICES, T0)
    cost = ledger.cost(T0 + 1800)  # half an hour: 2.0/2 + 4.0/2
    assert cost.usd == pytest.approx(3.0)
    assert (cost.budget_usd, cost.instances, cost.unpriced) == (10.0, 2, ())
    assert cost.budget_fraction == pytest.approx(0.3)


def test_a_fresh_instance_is_billed_a_minute_and_one_past_its_lifetime_no_more_than_the_lifetime():
    ledger = _ledger()
    ledger.found({"e-small-0": _host("i-1")}, PRICES, T0)
    assert ledger.cost(T0 + 5).usd == pytest.approx(2.0 / 60)
    assert ledger.cost(T0 - 30).usd == pytest.approx(2.0 / 60)  # a clock behind AWS's
    assert ledger.cost(T0 + 10 * 3600).usd == pytest.approx(2.0 * 6)  # it terminated itself after 6 h


def test_ended_instances_stop_costing_and_a_gone_one_ends_when_a_discovery_misses_it():
    ledger = _ledger()
    ledger.found({"e-small-0": _host("i-1"), "e-small-1": _host("i-2")}, PRICES, T0)
    # A resume after an hour finds i-2 gone and a replacement i-3 launched then.
    ledger.found({"e-small-0": _host("i-1"), "e-small-1": _host("i-3", launch="2026-01-01T11:00:00+00:00")},
                 PRICES, T0 + 3600)
    assert ledger.instances["i-2"].ended == T0 + 3600 and ledger.instances["i-1"].ended is None
    assert ledger.cost(T0 + 7200).usd == pytest.approx(2.0 * 2 + 2.0 * 1 + 2.0 * 1)
    ledger.all_ended(T0 + 7200)
    assert ledger.cost(T0 + 99 * 3600).usd == pytest.approx(8.0)


def test_an_unpriced_type_is_named_not_counted_and_no_budget_gives_no_fraction():
    ledger = _ledger(aws_budget_usd=0)
    ledger.found({"e-small-0": _host("i-1", "m7g.large")}, PRICES, T0)
    cost = ledger.cost(T0 + 3600)
    assert cost.usd == 0 and cost.unpriced == ("m7g.large",) and cost.budget_fraction is None


def test_the_ledger_round_trips_through_the_suite_folder(tmp_path):
    assert stored_cost(tmp_path, T0) is None  # no AWS run
    ledger = _ledger()
    ledger.found({"e-small-0": _host("i-1")}, PRICES, T0)
    ledger.save(tmp_path)
    again = CostLedger.load(tmp_path)
    assert again == ledger
    assert stored_cost(tmp_path, T0 + 3600).usd == pytest.approx(2.0)


@pytest.mark.parametrize(("value", "expected"), [
    (LAUNCH, T0), ("2026-01-01T10:00:00Z", T0), ("2026-01-01T10:00:00", T0), ("", None), ("soon", None), (None, None),
])
def test_launch_times_parse_as_ec2_gives_them(value, expected):
    assert launch_seconds(value) == expected


@pytest.mark.parametrize("key", ["aws_budget_usd", "aws_max_lifetime_hours"])
def test_a_bad_budget_or_lifetime_names_the_file_and_key(key):
    with pytest.raises(UserError) as raised:
        parse_aws_settings({key: "lots"})
    assert str(raised.value).startswith("group_vars/all/main.yml: ") and key in str(raised.value)


def test_the_inventory_carries_what_the_cost_is_computed_from():
    found = inventory.doe_aws_inventory([{
        "instance_id": "i-1", "instance_type": "r6i.8xlarge", "launch_time": LAUNCH, "public_ip_address": "1.2.3.4",
        "tags": {"doe:host_type": "small", "doe:index": "0", "doe:experiment": "e", "doe:exp_index": "0"}}], "7")
    host = found["all"]["children"]["suite_7"]["children"]["small"]["hosts"]["e-small-0"]
    assert (host["instance_type"], host["launch_time"]) == ("r6i.8xlarge", LAUNCH)
