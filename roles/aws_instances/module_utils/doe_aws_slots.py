"""Give each launched instance its slot of the suite's host plan, as tags.

`ec2_instance` with `exact_count` launches the right number of instances per host type but cannot tag
them one by one. This decides which instance fills which slot: an instance keeps a valid
`doe:index` it already has (so a rerun or resume changes nothing), the others take the free indices in
launch order. It returns only the instances whose tags must change, so a rerun has nothing to do.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def _launch_time(instance: dict) -> datetime:
    parsed = datetime.fromisoformat(str(instance["launch_time"]))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _current_index(instance: dict, n_slots: int) -> int | None:
    raw = (instance.get("tags") or {}).get("doe:index")
    try:
        index = int(raw)
    except (TypeError, ValueError):
        return None
    return index if 0 <= index < n_slots else None


def assign_slots(instances: list[dict], host_plan: list[dict]) -> dict[str, tuple[int, dict]]:
    """Map instance id -> (index within its host type, plan slot {exp, host_type, idx})."""
    slots_by_type: dict[str, list[dict]] = {}
    for slot in host_plan:
        slots_by_type.setdefault(slot["host_type"], []).append(slot)
    assignment: dict[str, tuple[int, dict]] = {}
    for host_type, slots in slots_by_type.items():
        members = [i for i in instances if (i.get("tags") or {}).get("doe:host_type") == host_type]
        members.sort(key=lambda i: (_launch_time(i), i["instance_id"]))
        taken: set[int] = set()
        waiting = []
        for instance in members:
            index = _current_index(instance, len(slots))
            if index is None or index in taken:
                waiting.append(instance)
            else:
                taken.add(index)
                assignment[instance["instance_id"]] = (index, slots[index])
        free = (i for i in range(len(slots)) if i not in taken)
        for instance, index in zip(waiting, free):
            assignment[instance["instance_id"]] = (index, slots[index])
    return assignment


def doe_aws_slot_tags(instances: list[dict], host_plan: list[dict], name_prefix: str,
                      lifetime_hours: float) -> list[dict]:
    """[{instance_id, tags}] for each instance whose slot tags are missing or differ."""
    by_id = {i["instance_id"]: i for i in instances}
    changes = []
    for instance_id, (index, slot) in sorted(assign_slots(instances, host_plan).items()):
        instance = by_id[instance_id]
        expires = _launch_time(instance) + timedelta(hours=float(lifetime_hours))
        wanted = {
            "doe:index": str(index),
            "doe:experiment": str(slot["exp"]),
            "doe:exp_index": str(slot["idx"]),
            "doe:expires": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Name": f"{name_prefix}-{slot['exp']}-{slot['host_type']}-{slot['idx']}",
        }
        current = instance.get("tags") or {}
        if any(current.get(key) != value for key, value in wanted.items()):
            changes.append({"instance_id": instance_id, "tags": wanted})
    return changes
