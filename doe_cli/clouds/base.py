"""What the run controller asks of a cloud: the hooks where clouds differ. Everything else (setup,
enqueue, poll, fetch) is the same Ansible machinery on any host, driven through the suite's inventory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from doe_cli.ansible_adapter import PlaybookResult
    from doe_cli.run.hosts import HostSlot


@dataclass(frozen=True)
class CostSoFar:
    """What a suite's hosts have cost until now, for the status page and the budget_80 notification."""

    usd: float
    budget_usd: float                 # 0: no budget set
    instances: int                    # instances counted, ended ones included
    unpriced: tuple[str, ...] = ()    # instance types without a price: not counted

    @property
    def budget_fraction(self) -> float | None:
        return self.usd / self.budget_usd if self.budget_usd > 0 else None


def format_usd(amount: float) -> str:
    # A cost of a few seconds on a small instance would otherwise read as free.
    return "under $0.01" if 0 < amount < 0.005 else f"${amount:.2f}"


class KeptHosts(Protocol):
    """`doe clean --cloud <name>`: how a cloud's hosts that outlived their run (--keep, Ctrl-C, a crash) are
    found and released, from the inventory doe stored in the results folder alone (no cloud is opened)."""

    @property
    def kind(self) -> str:
        """How a listing names them: "local host(s)", "host(s) of inventory <name>"."""
        ...

    @property
    def fetches_first(self) -> bool:
        """Whether the jobs that finished on them are fetched before they go (their folders go with them)."""
        ...

    def hosts_left(self, suite_dir: Path, hosts: dict[str, dict]) -> dict[str, dict]:
        """Of a suite run's stored hosts (name -> host vars), those still set up."""
        ...

    def cleanup_vars(self) -> dict[str, Any]:
        """Extra vars of cleanup.yml, which stops their jobs and shuts their queues down."""
        ...

    def after_cleanup(self, suite_dir: Path, hosts: dict[str, dict]) -> None:
        """What goes once the queues are shut down."""
        ...


class Cloud(Protocol):
    @property
    def name(self) -> str:
        """The --cloud value; the suite's stored inventory is .inventory/<name>.yml."""
        ...

    @property
    def runs_experiments_one_at_a_time(self) -> bool:
        """Experiments sharing one machine disturb each other's timings: they run one after another."""
        ...

    def allocation_parts(self, slots: list[HostSlot], host_vars: dict[str, dict]) -> list[dict] | None:
        """A cloud that runs each job of a multi-host experiment as one allocation (Slurm): per slot, the
        part the first slot's queue submits for it (host, host_type, host_idx, root, token); else None."""
        ...

    def context_vars(self, suite: str, first_repository_dir: str) -> dict[str, Any]:
        """Variables every host has unless the project's group_vars or the host's own set them."""
        ...

    def assign(self, slots: list[HostSlot]) -> None:
        """A host for every slot (provisioned, taken from an inventory, or a folder here)."""
        ...

    def check_hosts(self, suite_dir: Path, *, set_up: bool) -> dict[str, Any] | None:
        """Check (and lock) the assigned hosts before anything is set up. A resumed suite whose hosts
        are set up may leave the check to its first round: then the round's extra vars for it."""
        ...

    def read_check(self, result: PlaybookResult, suite_dir: Path) -> None:
        """The answers of the check a first round made (see check_hosts); raises if a host failed it."""
        ...

    def host_vars(self, suite_dir_name: str, slot: HostSlot, check_status: bool,
                  setup_roles: list[dict]) -> dict[str, Any]:
        """The inventory variables of the slot's host: its connection and its queue's folders."""
        ...

    def write_inventory(self, suite_dir: Path, slots: list[HostSlot], host_vars: dict[str, dict],
                        context: dict[str, Any], *, keep: bool) -> Path:
        """The suite's inventory in .inventory/<name>.yml, which every playbook of the run uses."""
        ...

    def hosts_gone(self, host_vars: dict[str, dict]) -> bool:
        """Whether hosts set up earlier lost what the setup put there, so they are set up again."""
        ...

    def release_hosts(self, suite_dir: Path, host_vars: dict[str, dict], *, still_locked: list[str]) -> None:
        """After the queues are shut down: the hosts are the suite's no more (folders, locks, instances).
        still_locked: the hosts whose shutdown did not release their lock itself."""
        ...

    def abandon_hosts(self, suite_dir: Path) -> None:
        """A new run that failed before anything was created gives its hosts back."""
        ...

    def teardown(self) -> None:
        """A failed run deletes what costs money (provisioned instances); a resume provisions anew."""
        ...

    def cost(self, now: float) -> CostSoFar | None:
        """What the suite's hosts have cost until `now` (epoch seconds) from what the run knows (no cloud
        API call: it is asked at every poll); None where hosts cost nothing doe knows of."""
        ...
