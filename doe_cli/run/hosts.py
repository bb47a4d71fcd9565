"""Host assignment: which host of which type serves which experiment. Every cloud uses it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class HostSlot:
    exp: str
    host_type: str
    idx: int            # index within the experiment's hosts of this type
    n: int              # hosts of this type in the experiment
    type_index: int = 0  # index among all hosts of this type in the suite (the n-th instance)

    @property
    def name(self) -> str:
        """Inventory host name in the local cloud."""
        return f"{self.exp}-{self.host_type}-{self.idx}"


def assign_hosts(suite: Any) -> list[HostSlot]:
    """For each host type in order of first appearance over the experiments, for each experiment
    using it (design order), the next `n` hosts of that type. Deterministic: the same design always
    gives the same slots, so resumes see the same assignment."""
    type_order: list[str] = []
    for exp in suite.experiments.values():
        for host_type in exp.host_types:
            if host_type not in type_order:
                type_order.append(host_type)
    slots = []
    for host_type in type_order:
        taken = 0
        for exp in suite.experiments.values():
            spec = exp.host_types.get(host_type)
            if spec is None:
                continue
            for idx in range(spec.n):
                slots.append(HostSlot(exp=exp.name, host_type=host_type, idx=idx, n=spec.n,
                                      type_index=taken))
                taken += 1
    return slots


def slots_of(slots: list[HostSlot], exp: str) -> list[HostSlot]:
    """The experiment's slots in the order of its host types in the design, then by index."""
    return [s for s in slots if s.exp == exp]
