"""Where a suite's hosts come from: this machine (local), existing SSH hosts, AWS EC2 instances, or a
Slurm cluster's login hosts.

Each cloud is one module implementing the hooks of `Cloud` (base.py); open_cloud picks it by name.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from doe_cli.clouds.base import Cloud, KeptHosts
from doe_cli.clouds.inventory import stored_cloud
from doe_cli.config import Project, default_cloud
from doe_cli.errors import UserError

if TYPE_CHECKING:
    from doe_cli.clouds.inventory_template import HostTypes

LOCAL = "local"
AWS = "aws"

__all__ = ["AWS", "LOCAL", "Cloud", "KeptHosts", "cloud_of_run", "kept_hosts_of", "open_cloud"]


def cloud_of_run(option: str | None, suite_dir: Path, *, is_new: bool, log: Callable[[str], None]) -> str:
    """The cloud a run uses: a resumed run's own (--cloud may only name it, or local: the default),
    else --cloud, else config.default_cloud()."""
    stored = None if is_new else stored_cloud(suite_dir)
    if stored is None:
        return option or default_cloud()
    if option not in (None, LOCAL, stored):
        raise UserError(f"{suite_dir.name} runs on cloud {stored!r}; resume it with --cloud {stored}", path="--cloud")
    if stored not in (LOCAL, option):
        log(f"note: {suite_dir.name} runs on cloud {stored!r}; resuming there")
    return stored


def kept_hosts_of(name: str, hosts: dict[str, dict] | None = None) -> KeptHosts:
    """`doe clean --cloud <name>`: how the cloud's kept hosts are found and released (local, or the SSH or
    Slurm hosts of inventory/<name>.yml; `hosts`, a suite run's stored host vars, tell Slurm's apart)."""
    if name == LOCAL:
        from doe_cli.clouds.local import LocalKeptHosts

        return LocalKeptHosts()
    if any(host.get("job_queue_scheduler") == "slurm" for host in (hosts or {}).values()):
        from doe_cli.clouds.slurm import SlurmKeptHosts

        return SlurmKeptHosts(name)
    from doe_cli.clouds.ssh import SshKeptHosts

    return SshKeptHosts(name)


def open_cloud(project: Project, name: str, *, suite: str, suite_id: int, force: bool = False,
               accept_cost: bool = False, parallel: bool = False, local_dir: Path | None = None,
               log: Callable[[str], None] = print) -> Cloud:
    """The cloud `name`: local, aws, or the SSH hosts (or Slurm login hosts) of inventory/<name>.yml."""
    if name == LOCAL:
        from doe_cli.clouds.local import LocalCloud, local_base_dir

        return LocalCloud(project=project, base=local_base_dir(local_dir), parallel=parallel, log=log)
    if name == AWS:
        from doe_cli.clouds.aws.cloud import AwsCloud

        return AwsCloud.create(project, suite, suite_id, accept_cost=accept_cost, force=force, log=log)
    from doe_cli.clouds.inventory_template import inventory_vars
    from doe_cli.clouds.slurm import SlurmCloud, is_slurm_inventory
    from doe_cli.clouds.ssh import SshCloud

    variables = inventory_vars(project, suite=suite, cloud=name, host_types=design_host_types(project, name, suite, suite_id))
    ssh = SshCloud.load(project, name, variables, force=force, log=log)
    return SlurmCloud.from_ssh(ssh, suite, suite_id) if is_slurm_inventory(ssh) else ssh


def design_host_types(project: Project, cloud: str, suite: str,
                      suite_id: int | str | None) -> Callable[[], HostTypes]:
    """Loads the host types of the suite run's design (a resumed run's stored one) when first asked: only
    inventories that loop over them need the design before the run loads it."""

    @functools.cache
    def load() -> HostTypes:
        from doe_cli.clouds.inventory_template import suite_host_types
        from doe_cli.design import load_stored_suite, load_suite
        from etl.layout import suite_folder

        stored = suite_folder(project.results_dir, suite, suite_id) / "suite_design.yml" \
            if suite_id is not None else None
        if stored is not None and stored.is_file():
            return suite_host_types(load_stored_suite(project, stored, suite))
        variables = {"suite": suite, "cloud": cloud, **({"id": suite_id} if suite_id is not None else {})}
        return suite_host_types(load_suite(project, suite, variables=variables, strict=False))

    return load
