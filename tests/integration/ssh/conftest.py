"""sshd test hosts for the SSH cloud: three real sshd processes on loopback, shared per session."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.support.sshd_hosts import SshHostPool, close_control_masters


@pytest.fixture(scope="session")
def control_path_dir():
    # Unix socket paths are limited to 108 characters: keep this short.
    path = Path(tempfile.mkdtemp(prefix="doecp", dir="/tmp"))
    yield path
    close_control_masters(path)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def ssh_hosts(control_path_dir):
    if shutil.which("unshare") is None or not Path("/usr/sbin/sshd").exists():
        pytest.skip("needs unshare and openssh-server (installed by .ci/run)")
    pool = SshHostPool(3).start()
    yield pool
    close_control_masters(control_path_dir)
    pool.close()


# --- `doe run --cloud sshd` on the test hosts ------------------------------------------------------

SINGLE_AND_MULTI = """
single:
  n_repetitions: 2
  host_types:
    small:
      $CMD$: echo "$PWD" >> /tmp/ran.log; echo "x=[% my_run.x %]"; hostname_file=/tmp/whoami; cat $hostname_file
  base_experiment:
    x:
      $FACTOR$: [1, 2]
pair:
  host_types:
    server:
      n: 1
      check_status: false
      $CMD$: echo "$PWD" >> /tmp/ran.log; echo server-up; exec sleep 300
    client:
      n: 1
      $CMD$: echo "$PWD" >> /tmp/ran.log; echo "client [% my_run.y %] talks to [% exp_host_lst | json_query("[?host_type=='server'].private_dns_name") | first %]"
  base_experiment:
    y:
      $FACTOR$: [1]
"""


# Three single-host experiments, one per host (inventory sshd3: three hosts of type small).
THREE = """
{exps}
"""
THREE_EXP = """
e{i}:
  host_types:
    small:
      $CMD$: echo "$PWD" >> /tmp/ran.log; sleep [% my_run.s %]; echo done [% my_run.k %]
  base_experiment:
    s: {sleep}
    k:
      $FACTOR$: [0, 1, 2, 3, 4]
"""


# Host type "slow" has job_timeout 2 s (group_vars/slow); the fetch cap is 1 MB (group_vars/all).
HAZARDS = """
hazards:
  host_types:
    slow:
      $CMD$: >-
        if [ [% my_run.k %] = 0 ]; then echo $$ > results/hang.pid; exec sleep 600; fi;
        echo ok; ln -s /etc/passwd results/passwd_link; ln -s / results/root_link;
        echo x > results/..dots; mkdir -p results/sub; echo y > results/sub/inner.txt;
        head -c 2000000 /dev/zero > results/big.bin
  base_experiment:
    k:
      $FACTOR$: [0, 1]
"""


# A single-host experiment (host0) next to a multi-host one (server host1, client host2).
KILLED = """
solo:
  host_types:
    small:
      $CMD$: echo "$PWD" >> /tmp/ran.log; sleep 1
  base_experiment:
    k:
      $FACTOR$: [0, 1, 2, 3, 4, 5]
duo:
  host_types:
    server:
      n: 1
      check_status: false
      $CMD$: echo "$PWD" >> /tmp/ran.log; exec sleep 300
    client:
      n: 1
      $CMD$: echo "$PWD" >> /tmp/ran.log; sleep 2
  base_experiment:
    k:
      $FACTOR$: [0, 1]
"""


TINY = """
tiny:
  host_types:
    small:
      $CMD$: echo tiny
  base_experiment:
    k: 1
"""


MANY = """
many:
  host_types:
    small:
      $CMD$: "true"
  base_experiment:
    k:
      $FACTOR$: [{}]
""".format(", ".join(str(k) for k in range(40)))


def write_inventory(config: Path, pool: SshHostPool, groups: dict[str, list[int]], name: str = "sshd",
                    extra: dict[int, dict] | None = None) -> Path:
    """inventory/<name>.yml listing the test hosts by host type, as a user would write it."""
    import yaml

    children = {}
    for host_type, indexes in groups.items():
        children[host_type] = {"hosts": {pool.hosts[i].name: {**pool.hosts[i].inventory_vars(),
                                                               **(extra or {}).get(i, {})} for i in indexes}}
    path = config / "inventory" / f"{name}.yml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump({"all": {"children": children}}, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def ssh_env(ssh_hosts, tmp_path_factory):
    """A config dir whose inventory/sshd.yml lists the three hosts: small (host0), server (host1),
    client (host2); `doe` runs against it."""
    from tests.integration.run.conftest import Doe, make_config_dir

    root = Path(tempfile.mkdtemp(prefix="doe-ssh-", dir="/tmp"))
    three = THREE.format(exps="".join(THREE_EXP.format(i=i, sleep=1.5 if i == 1 else 0.1) for i in range(3)))
    config = make_config_dir(root, {"mixed": SINGLE_AND_MULTI, "three": three, "hazards": HAZARDS,
                                     "killed": KILLED, "tiny": TINY,
                                     "many": MANY})
    (config / "group_vars" / "all" / "main.yml").write_text("prj_id: doe_test\nfetch_max_file_mb: 1\n")
    (config / "group_vars" / "slow").mkdir()
    (config / "group_vars" / "slow" / "main.yml").write_text("job_timeout: 2\n")
    write_inventory(config, ssh_hosts, {"slow": [1]}, name="sshd_slow")
    write_inventory(config, ssh_hosts, {"small": [0], "server": [1], "client": [2]})
    write_inventory(config, ssh_hosts, {"small": [0, 1, 2]}, name="sshd3")
    for host in ssh_hosts.hosts:
        (host.dir / "tmp" / "whoami").write_text(host.name + "\n")
    doe = Doe(config, root / "results", root / "local")
    doe.pool = ssh_hosts
    yield doe
    for suite_dir in (root / "results").glob("*_*"):
        from doe_cli.run.ansible_env import control_path_dir

        close_control_masters(control_path_dir(suite_dir))
    shutil.rmtree(root, ignore_errors=True)


def in_host(host, script: str) -> None:
    """Run a shell script inside a test host's mount namespace (e.g. to mount a full or read-only
    folder that only this host sees)."""
    subprocess.run(["nsenter", "-t", str(host.process.pid), "-m", "sh", "-ec", script], check=True)


def ran_log(host) -> list[str]:
    """Job dirs a host ran, one line per run of a job (jobs append to the host's /tmp/ran.log)."""
    path = host.dir / "tmp" / "ran.log"
    return path.read_text().split() if path.exists() else []
