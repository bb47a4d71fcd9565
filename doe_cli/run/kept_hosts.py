"""Hosts that outlived their run (`doe run --keep`, Ctrl-C, a crash), released by `doe clean`.

A suite's hosts are known from the inventory doe stored in its results folder, so nothing beyond the
results tree is needed. The same cleanup playbook a finished run uses stops their jobs and shuts their
queues down; what differs between clouds is behind their KeptHosts hooks (doe_cli.clouds): on the local
cloud and on Slurm the job folders then go (Slurm's jobs are cancelled by their recorded ids), on SSH
hosts the shutdown releases the suite's host lock and the files stay. Where the folders go, jobs that
finished but were not fetched yet are fetched first, as a poll would, so the removal loses nothing that ran. Results already fetched stay; a later `doe run --id last`
sets the hosts up again and runs what did not finish.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from doe_cli.clouds import LOCAL, KeptHosts, kept_hosts_of
from doe_cli.clouds.inventory import read_suite_inventory_hosts, suite_inventory_file
from doe_cli.config import Project
from doe_cli.errors import DoeError, UserError
from doe_cli.run.state import setup_marker
from etl.layout import suite_runs

__all__ = ["LOCAL", "KeptSuite", "fetch_finished", "find_kept", "hosts_left", "release", "unfetched_counts"]


@dataclass
class KeptSuite:
    suite_dir: Path
    cloud: str
    hosts: dict[str, dict]  # inventory name -> its host vars
    suite: str
    suite_id: int
    policy: KeptHosts = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.policy = kept_hosts_of(self.cloud, self.hosts)

    @property
    def inventory(self) -> Path:
        return suite_inventory_file(self.suite_dir, self.cloud)

    def describe(self) -> str:
        return f"{self.suite_dir.name}: {len(self.hosts)} {self.policy.kind} ({', '.join(sorted(self.hosts))})"


def find_kept(results_dir: Path, cloud: str, suite: str | None = None, suite_id: str | None = None) -> list[KeptSuite]:
    """Suite runs on `cloud` (local, or an SSH inventory's name) whose hosts are still set up: local
    hosts whose folder or queue socket exists; SSH hosts of a run that did not clean up after itself."""
    if suite_id is not None and suite is None:
        raise UserError("--id needs --suite", path="--id")
    if suite_id is not None and suite_id != "last" and not suite_id.isdigit():
        raise UserError(f"expected a suite id (digits) or 'last', got '{suite_id}'", path="--id")
    runs = suite_runs(results_dir, suite)
    if suite_id == "last":
        if not runs:
            raise UserError(f"no results folder of suite '{suite}' in {results_dir}", path="--id")
        runs = runs[-1:]
    elif suite_id is not None:
        runs = [run for run in runs if run[1] == int(suite_id)]
    kept = []
    for suite_name, number, suite_dir in runs:
        hosts = hosts_left(suite_dir, cloud)
        if hosts:
            kept.append(KeptSuite(suite_dir=suite_dir, cloud=cloud, hosts=hosts, suite=suite_name, suite_id=number))
    return kept


def hosts_left(suite_dir: Path, cloud: str) -> dict[str, dict]:
    """The hosts of a suite run on `cloud` that are still set up (name -> host vars): local hosts whose
    folder or queue socket exists; other hosts while the run's setup marker says they were not cleaned up."""
    return kept_hosts_of(cloud).hosts_left(suite_dir, read_suite_inventory_hosts(suite_dir, cloud))


def unfetched_counts(project: Project, kept: KeptSuite) -> tuple[int, int]:
    """(finished jobs not fetched yet, jobs queued or running) on the kept hosts, as the hosts report them."""
    from doe_cli.run.status import host_job_counts, load_states

    counts = host_job_counts(kept.suite_dir, load_states(kept.suite, kept.suite_id, kept.suite_dir), project)
    return (sum(c["done"] for c in counts.values()),
            sum(c["queued"] + c["running"] for c in counts.values()))


def fetch_finished(project: Project, kept: KeptSuite, log) -> int:
    """Clouds whose folders go (local, Slurm): fetch the jobs that finished on the kept hosts into the results
    folder, as the run's polls do (its state records them); returns how many. Jobs still queued or running are left to the cleanup."""
    from doe_cli.run.controller import fetch_finished as fetch
    from doe_cli.run.runtime import RunOptions

    return fetch(project, RunOptions(suite=kept.suite, id=str(kept.suite_id), cloud=kept.cloud, keep=True,
                                     long_poll=0), log=log)


def release(project: Project, kept: KeptSuite) -> None:
    """Stop the suite's jobs and queues (local and Slurm: remove the job folders; SSH: release the host locks);
    refuses while the suite's controller runs."""
    from doe_cli.run.ansible_env import suite_adapter
    from doe_cli.run.runtime import SuiteLock

    try:
        lock = SuiteLock(kept.suite_dir / ".doe" / "lock")
    except DoeError:
        raise DoeError(f"{kept.suite_dir.name}: a doe controller is running this suite; stop it first "
                       "(Ctrl-C), then clean") from None
    try:
        result = suite_adapter(project, kept.suite_dir).run("cleanup.yml", inventory=kept.inventory, limit=",".join(sorted(kept.hosts)),
                             extravars=kept.policy.cleanup_vars())
        if not result.ok:
            raise DoeError(f"{kept.suite_dir.name}: cleanup failed: {result.summary()}")
        kept.policy.after_cleanup(kept.suite_dir, kept.hosts)
        # The hosts are released: a resume sets them up again.
        setup_marker(kept.suite_dir).unlink(missing_ok=True)
    finally:
        lock.release()
