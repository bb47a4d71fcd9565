"""`doe run --cloud <inventory>` on the real two-node Slurm test cluster, the controller on its login node."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import yaml

from tests.integration.run.conftest import Doe, make_config_dir, wait_for

pytestmark = pytest.mark.slurm

# Two experiments, one of them multi-factor; every job appends to a ledger (exactly once each).
MIXED = """
sweep:
  n_repetitions: 2
  host_types:
    small:
      $CMD$: >-
        echo "sweep [% my_run.x %] [% my_run.y %] $SLURM_JOB_ID" >> "[% 'ledger' | at_runtime(exp_host_lst) %]";
        echo "{\\"x\\": [% my_run.x %]}" > results/out.json
  base_experiment:
    x: $FACTOR$
    y: $FACTOR$
  factor_levels:
    - {x: 1, y: a}
    - {x: 2, y: b}
    - {x: 3, y: c}
single:
  n_repetitions: 3
  host_types:
    small:
      $CMD$: echo "single $SLURM_JOB_NAME" >> "[% 'ledger' | at_runtime(exp_host_lst) %]"
  base_experiment:
    k: 1
"""

FAILING = """
failing:
  host_types:
    small:
      $CMD$: if [ "[% my_run.i %]" = 1 ]; then echo "no model" >&2; exit 5; fi; echo fine
  base_experiment:
    i:
      $FACTOR$: [0, 1]
"""


def write_cluster_inventory(config, cluster, remote, ledger, name="cluster", **extra):
    host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
            "job_scheduler": "slurm", "slurm_conf": str(cluster.conf), "remote_dir": str(remote / "doe"),
            "remote_results_dir": str(remote / "results"), "ledger": str(ledger), **extra}
    (config / "inventory").mkdir(exist_ok=True)
    (config / "inventory" / f"{name}.yml").write_text(yaml.safe_dump({"small": {"hosts": {"login": host}}}))


@pytest.fixture
def env(slurm_cluster, tmp_path, short_tmp):
    def make(designs: dict[str, str]):
        config = make_config_dir(tmp_path, designs)
        (config / "group_vars" / "all" / "main.yml").write_text("prj_id: prj\n")
        ledger = short_tmp / "ledger.txt"
        write_cluster_inventory(config, slurm_cluster, short_tmp / "remote", ledger)
        doe = Doe(config, tmp_path / "results", short_tmp / "local")
        doe.ledger = ledger
        return doe
    return make


def test_a_mixed_suite_runs_every_job_once_as_its_own_slurm_job(env, slurm_cluster):
    doe = env({"mixed": MIXED})
    done = doe("run", "--suite", "mixed", "--id", "new", "--cloud", "cluster")
    assert "sweep: 6/6 jobs, 0 failed" in done.stderr and "single: 3/3 jobs, 0 failed" in done.stderr
    lines = doe.ledger.read_text().splitlines()
    assert len(lines) == 9
    sweep = sorted(line.rsplit(" ", 1)[0] for line in lines if line.startswith("sweep"))
    assert sweep == ["sweep 1 a", "sweep 1 a", "sweep 2 b", "sweep 2 b", "sweep 3 c", "sweep 3 c"]
    assert len({line.rsplit(" ", 1)[1] for line in lines if line.startswith("sweep")}) == 6  # six Slurm jobs
    suite_dir = doe.suite_dir("mixed")
    suite_id = suite_dir.name.rsplit("_", 1)[1]
    names = sorted(line.split(" ", 1)[1] for line in lines if line.startswith("single"))
    assert names == [f"prj.mixed.{suite_id}.single.0.{rep}" for rep in range(3)]
    host_dir = suite_dir / "sweep" / "run_2" / "rep_1" / "small" / "host_0"
    assert json.loads((host_dir / "out.json").read_text()) == {"x": 3}
    assert (host_dir / "stdout.log").exists() and (host_dir / "stderr.log").exists()


def test_a_failing_job_is_reported_and_retried(env):
    doe = env({"failing": FAILING})
    done = doe("run", "--suite", "failing", "--id", "new", "--cloud", "cluster", check=False)
    assert done.returncode == 1 and "failing: 2/2 jobs, 1 failed" in done.stderr, done.stderr
    assert "exit code 5" in done.stderr and "no model" in done.stderr
    again = doe("run", "--suite", "failing", "--id", "last", "--retry-failed", check=False)
    assert again.returncode == 1 and "failing: 2/2 jobs, 1 failed" in again.stderr
    assert (doe.suite_dir("failing") / "failing/run_1/rep_0/small/host_0/stderr.log").read_text() == "no model\n"


SLOW = """
slow:
  n_repetitions: 4
  host_types:
    small:
      $CMD$: >-
        echo "slow [% my_run.i %] $SLURM_JOB_ID" >> "[% 'ledger' | at_runtime(exp_host_lst) %]"; sleep 1
  base_experiment:
    i:
      $FACTOR$: [0, 1, 2]
"""


def test_a_controller_killed_mid_run_resumes_without_submitting_a_job_twice(env, slurm_cluster):
    doe = env({"slow": SLOW})
    process = doe.popen("run", "--suite", "slow", "--id", "new", "--cloud", "cluster")
    wait_for(lambda: doe.ledger.exists() and len(doe.ledger.read_text().splitlines()) >= 2, timeout=120,
             what="the first jobs ran")
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    resumed = doe("run", "--suite", "slow", "--id", "last")
    assert "slow: 12/12 jobs, 0 failed" in resumed.stderr
    lines = doe.ledger.read_text().splitlines()
    assert sorted(line.split()[1] for line in lines) == sorted(["0", "1", "2"] * 4)  # each job exactly once
    assert len({line.split()[2] for line in lines}) == 12


def test_each_poll_asks_squeue_once_for_all_of_a_hosts_jobs(env, slurm_cluster, short_tmp):
    doe = env({"slow": SLOW})
    counter = short_tmp / "squeue-calls"
    wrappers = short_tmp / "bin"
    wrappers.mkdir()
    real = subprocess.run(["sh", "-c", "command -v squeue"], capture_output=True, text=True, check=True).stdout.strip()
    (wrappers / "squeue").write_text(f'#!/bin/sh\necho "$*" >> {counter}\nexec {real} "$@"\n')
    (wrappers / "squeue").chmod(0o755)
    env_path = f"{wrappers}:{os.environ['PATH']}"
    doe.env = lambda: {**Doe.env(doe), "PATH": env_path}
    done = doe("run", "--suite", "slow", "--id", "new", "--cloud", "cluster")
    assert "slow: 12/12 jobs, 0 failed" in done.stderr
    calls = counter.read_text().splitlines()
    # One call per enqueue or poll of the host, each naming several jobs at once; never one per job.
    assert calls and len(calls) < 12, calls
    assert max(len(call.split(" -j ", 1)[1].split()[0].split(",")) for call in calls if " -j " in call) >= 3


def test_clean_cancels_its_own_suites_jobs_and_leaves_another_suites_queued(env, slurm_cluster, short_tmp):
    doe = env({"slow": SLOW})
    (doe.config / "group_vars" / "small").mkdir(exist_ok=True)
    (doe.config / "group_vars" / "small" / "slurm.yml").write_text(
        "slurm_extra_args: ['--nodes=3']\nslurm_max_pending_minutes: 0\n")  # pending for good: 2 nodes exist
    first = doe.popen("run", "--suite", "slow", "--id", "new", "--cloud", "cluster")

    def pending_by_suite() -> dict[str, int]:
        listing = slurm_cluster.run("squeue", "-h", "-t", "PENDING", "-o", "%j").stdout.split()
        found: dict[str, int] = {}
        for name in listing:
            found[name.split(".")[2]] = found.get(name.split(".")[2], 0) + 1
        return found

    wait_for(lambda: list(pending_by_suite().values()) == [12], timeout=120, what="the first suite's jobs pending")
    second = doe.popen("run", "--suite", "slow", "--id", "new", "--cloud", "cluster")
    wait_for(lambda: sorted(pending_by_suite().values()) == [12, 12], timeout=120, what="both suites' jobs pending")
    ids = sorted(pending_by_suite())

    def status_lines() -> list[str]:
        return doe("status", "--suite", "slow", "--id", ids[0]).stdout.splitlines()

    # While the controller runs, status shows what its polls heard from Slurm; after it stopped, it asks.
    wait_for(lambda: "  Slurm: 12 PENDING" in status_lines(), timeout=60, what="status with the Slurm states")
    for process in (first, second):
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C: the jobs stay queued
        process.wait(timeout=60)
    lines = status_lines()
    assert "  Slurm: 12 PENDING" in lines, lines
    listed = [line for line in lines if line.startswith("    run_")]
    assert len(listed) == 12 and all(": PENDING (" in line for line in listed), lines
    job_folders = {suite_id: short_tmp / "remote" / "results" / f"slow_{suite_id}" / "slow-small-0" for suite_id in ids}
    assert all(folder.is_dir() for folder in job_folders.values())
    doe("clean", "--cloud", "cluster", "--suite", "slow", "--id", ids[0], "--yes")
    wait_for(lambda: ids[0] not in pending_by_suite(), what="the first suite's jobs cancelled")
    assert pending_by_suite() == {ids[1]: 12}
    # Its folders on the cluster are gone (nothing had finished to fetch); the other suite's stay.
    assert not job_folders[ids[0]].exists() and job_folders[ids[1]].is_dir()
    doe("clean", "--cloud", "cluster", "--suite", "slow", "--id", ids[1], "--yes")
    wait_for(lambda: not pending_by_suite(), what="the second suite's jobs cancelled")


def test_plan_prints_each_host_types_sbatch_resources_and_submits_nothing(env, slurm_cluster):
    doe = env({"mixed": MIXED})
    (doe.config / "group_vars" / "small" / "slurm.yml").write_text(
        "slurm_partition: debug\nslurm_time_minutes: 30\neuler_cpu_cores: 2\neuler_env: [gcc/12]\n")
    before = slurm_cluster.run("squeue", "-h", "--states=all", "-o", "%i").stdout
    lines = doe("plan", "--suite", "mixed", "--cloud", "cluster").stdout.splitlines()
    assert lines[0].startswith("suite mixed on the Slurm cluster of inventory/cluster.yml: every job is one sbatch job")
    assert "  sweep: 6 job(s) via login (this machine): sbatch --partition=debug --time=30 " \
           "--cpus-per-task=2; modules: gcc/12" in lines
    assert any(line.startswith("  single: 3 job(s)") for line in lines)
    assert slurm_cluster.run("squeue", "-h", "--states=all", "-o", "%i").stdout == before


# doe-suite's own inventory/euler.yml, pointed at the test cluster: its single-host check, its loop over the
# suite's host types, euler_user from $DOES_EULER_USER and prj_id with a template in group_vars.
EULER_INVENTORY = """\
# Check is Valid for Euler: {{ ('True' if is_single_host_per_host_type | bool and is_single_host_type_per_exp \
| bool ) | mandatory('Cloud=euler only supports single instance experiments') }}
all:
  children:
{% for ht, exps in host_types.items() %}
    {{ ht }}:
      hosts:
{% for i in range(exps | length )  %}
        {{ ht }}_{{ i }}:
          ansible_connection: local
          ansible_python_interpreter: PYTHON
          ansible_user: {{ euler_user }}
          job_scheduler: slurm
          slurm_conf: CONF
          ledger: LEDGER
          remote_dir: REMOTE/{{ euler_user }}/doe-suite/{{ prj_id }}/{{ suite }}
          remote_results_dir: REMOTE/{{ euler_user }}/doe-suite-results
{% endfor %}
{% endfor %}
"""

CLIENT_SERVER = """
pair:
  host_types:
    client: {$CMD$: echo client}
    server: {$CMD$: echo server}
  base_experiment: {k: 1}
"""


def test_doe_suites_euler_inventory_runs_a_suite_on_the_cluster(env, slurm_cluster, short_tmp):
    doe = env({"mixed": MIXED, "pair": CLIENT_SERVER})
    (doe.config / "group_vars" / "all" / "main.yml").write_text("prj_id: example_{{ does_project_id_suffix }}\n")
    (doe.config / "group_vars" / "small" / "main.yml").write_text(
        "euler_job_minutes: 10\neuler_cpu_cores: 1\neuler_cpu_mem_per_core_mb: 64\neuler_gpu_number: 0\n"
        "euler_gpu_min_mem_per_gpu_mb: 0\neuler_gpu_model: ~\n")
    remote = short_tmp / "remote"
    inventory = EULER_INVENTORY.replace("PYTHON", sys.executable).replace("CONF", str(slurm_cluster.conf)) \
        .replace("LEDGER", str(doe.ledger)).replace("REMOTE", str(remote))
    (doe.config / "inventory" / "euler.yml").write_text(inventory)
    doe.env = lambda: {**Doe.env(doe), "DOES_EULER_USER": "ann", "DOES_PROJECT_ID_SUFFIX": "t1"}

    done = doe("run", "--suite", "mixed", "--id", "new", "--cloud", "euler")
    assert "sweep: 6/6 jobs, 0 failed" in done.stderr and "single: 3/3 jobs, 0 failed" in done.stderr
    suite_id = doe.suite_dir("mixed").name.rsplit("_", 1)[1]
    names = sorted(line.split(" ", 1)[1] for line in doe.ledger.read_text().splitlines() if line.startswith("single"))
    assert names == [f"example_t1.mixed.{suite_id}.single.0.{rep}" for rep in range(3)]
    assert (remote / "ann" / "doe-suite" / "example_t1" / "mixed" / "example_t1" / f"mixed_{suite_id}").is_dir()

    # The inventory's own check refuses a client/server experiment, before anything is created.
    refused = doe("run", "--suite", "pair", "--id", "new", "--cloud", "euler", check=False)
    assert refused.returncode == 2 and refused.stderr.strip().splitlines()[-1] == \
        "error: inventory/euler.yml: Cloud=euler only supports single instance experiments", refused.stderr
    assert not list(doe.results.glob("pair_*"))


# The client asks for the server's node by the design's usual filter; the server runs until stopped.
CLIENT_SERVER_ON_NODES = """
pair:
  n_repetitions: 2
  host_types:
    server:
      check_status: false
      $CMD$: echo "server $SLURMD_NODENAME $SLURM_JOB_ID" >> "[% 'ledger' | at_runtime(exp_host_lst) %]"; exec sleep 300
    client:
      $CMD$: >-
        echo "client $SLURMD_NODENAME $SLURM_JOB_ID" >> "[% 'ledger' | at_runtime(exp_host_lst) %]";
        echo "[% exp_host_lst | to_public_dns_name('server') %]" > results/server_node.txt
  base_experiment: {k: 1}
"""


def test_a_client_server_job_is_one_allocation_with_each_host_on_its_own_node(env, slurm_cluster):
    doe = env({"pair": CLIENT_SERVER_ON_NODES})
    inventory = yaml.safe_load((doe.config / "inventory" / "cluster.yml").read_text())
    (doe.config / "inventory" / "cluster.yml").write_text(yaml.safe_dump(
        {"server": inventory["small"], "client": {"hosts": {"login2": inventory["small"]["hosts"]["login"]}}}))
    done = doe("run", "--suite", "pair", "--id", "new", "--cloud", "cluster")
    assert "pair: 2/2 jobs, 0 failed" in done.stderr, done.stderr
    lines = [line.split() for line in doe.ledger.read_text().splitlines()]
    by_job: dict[str, dict[str, str]] = {}
    for role, node, job_id in lines:
        by_job.setdefault(job_id, {})[role] = node
    # Each repetition: one Slurm job whose server and client ran on the two different nodes.
    assert len(by_job) == 2 and all(set(roles) == {"server", "client"} for roles in by_job.values()), lines
    assert all({roles["server"], roles["client"]} == {"n1", "n2"} for roles in by_job.values()), lines
    suite_dir = doe.suite_dir("pair")
    for rep in range(2):
        client = suite_dir / "pair" / "run_0" / f"rep_{rep}" / "client" / "host_0"
        server_node = (client / "server_node.txt").read_text().strip()
        job_id = next(job for job, roles in by_job.items() if roles["client"] != server_node)
        assert by_job[job_id]["server"] == server_node  # the token became the server's node
        assert (suite_dir / "pair" / "run_0" / f"rep_{rep}" / "server" / "host_0" / "stdout.log").exists()
    assert not slurm_cluster.run("squeue", "-h", "-o", "%i").stdout.strip()  # the servers were stopped


NODE_DIES = """
long:
  host_types:
    small:
      $CMD$: >-
        echo "long $SLURM_JOB_ID" >> "[% 'ledger' | at_runtime(exp_host_lst) %]";
        if [ -e "[% 'ledger' | at_runtime(exp_host_lst) %].ok" ]; then echo done; else exec sleep 900; fi
  base_experiment: {k: 1}
"""


def test_a_job_whose_node_dies_fails_with_node_fail_and_runs_again_with_retry_failed(env, slurm_cluster):
    doe = env({"long": NODE_DIES})
    process = doe.popen("run", "--suite", "long", "--id", "new", "--cloud", "cluster")
    wait_for(lambda: doe.ledger.exists() and doe.ledger.read_text().strip(), timeout=120, what="the job ran")
    job_id = doe.ledger.read_text().split()[1]
    node = slurm_cluster.run("squeue", "-h", "-j", job_id, "-o", "%N").stdout.strip()
    slurm_cluster.kill_slurmd(node)
    try:
        out, err = process.communicate(timeout=180)
        assert process.returncode == 1 and "long: 1/1 jobs, 1 failed" in err, err
        assert "Slurm: NODE_FAIL" in err, err
    finally:
        subprocess.run(["pkill", "-f", "exec sleep 900|sleep 900"], check=False)
        slurm_cluster.start_slurmd(node)
        slurm_cluster.ensure_idle()
    (doe.ledger.parent / "ledger.txt.ok").touch()
    again = doe("run", "--suite", "long", "--id", "last", "--retry-failed")
    assert "long: 1/1 jobs, 0 failed" in again.stderr, again.stderr
    assert len(doe.ledger.read_text().splitlines()) == 2


OVERTIME = """
overtime:
  host_types:
    small:
      $CMD$: echo started; exec sleep 600
  base_experiment:
    $slurm_job_minutes$: 1
"""


def test_a_job_over_its_run_time_limit_fails_with_slurms_timeout(env, slurm_cluster):
    doe = env({"overtime": OVERTIME})
    done = doe("run", "--suite", "overtime", "--id", "new", "--cloud", "cluster", check=False, timeout=400)
    assert done.returncode == 1 and "overtime: 1/1 jobs, 1 failed" in done.stderr, done.stderr
    assert "Slurm: TIMEOUT" in done.stderr, done.stderr
    stdout = doe.suite_dir("overtime") / "overtime" / "run_0" / "rep_0" / "small" / "host_0" / "stdout.log"
    assert stdout.read_text() == "started\n"  # what the job wrote before Slurm stopped it is kept
    slurm_cluster.ensure_idle()


def test_clean_after_a_crash_fetches_what_finished_then_cancels_the_rest_and_removes_the_folders(
        env, slurm_cluster, short_tmp):
    doe = env({"slow": SLOW})
    process = doe.popen("run", "--suite", "slow", "--id", "new", "--cloud", "cluster")
    wait_for(lambda: list(short_tmp.glob("remote/results/slow_*/slow-small-0/slow/*/*/.doe_done")), timeout=120,
             what="a job finished")
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    suite_dir = doe.suite_dir("slow")
    remote = short_tmp / "remote" / "results" / suite_dir.name
    finished_there = {path.parent.relative_to(remote / "slow-small-0") for path in remote.glob("slow-small-0/*/*/*/.doe_done")}
    assert finished_there
    done = doe("clean", "--cloud", "cluster", "--suite", "slow", "--id", "last", "--yes")
    assert "  fetched " in done.stdout, done.stdout
    # Each job that had finished on the cluster is in the results folder (fetched by the run or by clean).
    for rel in finished_there:
        assert (suite_dir / rel / "small" / "host_0" / "stdout.log").exists(), rel
    assert not remote.exists() or not any(remote.iterdir())
    wait_for(lambda: not slurm_cluster.run("squeue", "-h", "-o", "%j").stdout.strip(), what="the rest cancelled")
