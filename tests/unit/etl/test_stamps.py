"""Packed stamps and how a large stamp check is shared out among processes."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from etl import safecache, stamps


def test_packed_stamps_give_back_their_entries_and_share_names():
    memo: dict = {}
    one = stamps.pack([("", 4096, 10), ("a.csv", 12, 2**62), ("b.log", 0, -5)], memo)
    other = stamps.pack([("", 4096, 11), ("a.csv", 13, 3), ("b.log", 1, 4)], memo)
    assert list(stamps.entries(one)) == [("", 4096, 10), ("a.csv", 12, 2**62), ("b.log", 0, -5)]
    assert stamps.first(other) == ("", 4096, 11)
    assert stamps.latest_mtime(one) == 2**62 and stamps.latest_mtime(stamps.pack([])) == 0
    assert one[0] is other[0]  # one names tuple for both, so a cache file holds it once
    table = safecache.StampsTable()
    places = [table.add(one), table.add(other)]
    assert len(table.names_list()) == 1
    reader = safecache.StampsReader(json.loads(json.dumps(table.names_list())), table.values_blob())
    again = [reader.get(*place) for place in places]
    assert again == [one, other] and again[0][0] is again[1][0]
    tails = [stamps.without_first(one, memo), stamps.without_first(other, memo)]
    assert list(stamps.entries(tails[0])) == [("a.csv", 12, 2**62), ("b.log", 0, -5)]
    assert stamps.first(tails[1]) == ("a.csv", 13, 3) and tails[0][0] is tails[1][0]


@given(
    sizes=st.lists(st.integers(min_value=0, max_value=60), max_size=40),
    cpus=st.integers(min_value=1, max_value=8),
    per_process=st.integers(min_value=1, max_value=100),
    start_cost=st.integers(min_value=0, max_value=50),
)
def test_shares_cover_every_group_once_in_order(sizes, cpus, per_process, start_cost):
    groups = [
        (f"f{index}", stamps.pack((str(i), 0, 0) for i in range(size))) for index, size in enumerate(sizes)
    ]
    original = (stamps._usable_cpus, stamps.STAMPS_PER_PROCESS, stamps.HELPER_START_STAMPS)
    stamps._usable_cpus, stamps.STAMPS_PER_PROCESS, stamps.HELPER_START_STAMPS = (
        lambda: cpus,
        per_process,
        start_cost,
    )
    try:
        own, *helpers = stamps._shares(groups)
    finally:
        stamps._usable_cpus, stamps.STAMPS_PER_PROCESS, stamps.HELPER_START_STAMPS = original
    covered = [index for start, end in [*helpers, own] for index in range(start, end)]
    assert covered == list(range(len(groups)))
    assert all(end > start for start, end in helpers)
    processes = min(cpus, stamps.MAX_PROCESSES, sum(sizes) // per_process)
    assert len(helpers) <= max(0, processes - 1)
    if helpers:
        # Helpers start late: up to each one's end they hold no more than even shares less the start-up cost.
        even = (sum(sizes) - start_cost) / processes
        assert all(sum(sizes[:end]) <= even * (number + 1) for number, (_, end) in enumerate(helpers))
