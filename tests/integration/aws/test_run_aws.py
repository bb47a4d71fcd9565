"""`doe run --cloud aws` end to end against the emulator: plan, preflight, provisioning, setup (packages
and S3 artifacts), jobs on the instances, a controller killed once jobs are queued and the resume on the
same instances, fetch, ETL, and cleanup of every resource of the suite id.

The emulator's instances get fake public addresses; group_vars/all maps each (host type, index) onto a
local sshd test host (aws_inventory_host_overrides), so no emulated address is ever contacted.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import boto3
import pytest
import yaml

from doe_cli.run.state import ExperimentState
from tests.integration.run.conftest import Doe, wait_for
from tests.support.sshd_hosts import SshHostPool, close_control_masters

from .conftest import REGION, tagged, write_config

pytestmark = [pytest.mark.aws_fake, pytest.mark.slow]

DESIGN = """
solo:
  n_repetitions: 2
  host_types:
    small:
      $CMD$: >-
        echo "[% my_run.x %] $(cat /root/artifacts/greeting.txt)" > results/out.json.txt;
        echo '{"x": [% my_run.x %]}' > results/out.json;
        pwd >> /root/ran.log; sleep 1
  base_experiment:
    x:
      $FACTOR$: [1, 2]
duo:
  host_types:
    small:
      n: 1
      check_status: false
      $CMD$: exec sleep 300
    medium:
      n: 1
      $CMD$: echo client [% my_run.y %]
  base_experiment:
    y: 7
$ETL$:
  table:
    experiments: [solo]
    extractors:
      JsonExtractor: {}
      YamlExtractor: {}
      IgnoreExtractor: {file_regex: ["^stdout.log$", "^stderr.log$", ".*[.]txt$"]}
    loaders:
      CsvSummaryLoader: {}
"""


@pytest.fixture
def aws_run_env(moto_endpoint, ssh_key):
    """Fresh sshd hosts per test (0.2 s): a failed run leaves its host locks behind on them."""
    if shutil.which("nsenter") is None or not Path("/usr/sbin/sshd").exists():
        pytest.skip("needs openssh-server")
    root = Path(tempfile.mkdtemp(prefix="doe-aws-run-", dir="/tmp"))
    pool = SshHostPool(3).start()
    bucket = f"doe-e2e-{secrets.token_hex(4)}"
    try:
        s3 = boto3.client("s3", region_name=REGION, endpoint_url=moto_endpoint)
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_object(Bucket=bucket, Key="e2e/greeting.txt", Body=b"hello from s3\n")
        host = [h.inventory_vars() for h in pool.hosts]
        project = write_config(
            root / "config", ssh_key, project_id="e2e_test",
            aws_setup_roles=["host_packages", "s3_artifacts"],
            host_packages_names=["task-spooler", "git", "rsync"],  # present here: nothing is installed
            s3_artifacts_sources=[{"bucket": bucket, "prefix": "e2e/", "dest": "/root/artifacts"}],
            aws_inventory_host_overrides={"small": {0: host[0], 1: host[1]}, "medium": {0: host[2]}})
        (project.config_dir / "designs" / "e2e.yml").write_text(DESIGN)
        (project.config_dir / "roles").mkdir(exist_ok=True)
        doe = Doe(project.config_dir, project.results_dir, root / "local")
        yield doe, pool
    finally:
        for suite_dir in (root / "config" / "results").glob("*_*"):
            from doe_cli.run.ansible_env import control_path_dir

            close_control_masters(control_path_dir(suite_dir))
        pool.close()
        shutil.rmtree(root, ignore_errors=True)


def _all_instances(ec2, suite_id: str) -> list[str]:
    """Every instance ever launched with the suite id, terminated ones included."""
    reservations = ec2.describe_instances(Filters=[{"Name": "tag:doe:suite_id", "Values": [suite_id]}])
    return sorted(i["InstanceId"] for r in reservations["Reservations"] for i in r["Instances"])


def _jobs_queued(results: Path) -> bool:
    """Whether the controller has queued jobs (state.yml plus its journal of changes, as `doe status` reads it)."""
    return any(ExperimentState.load(path, "", 0, path.parent.name).counts()["queued"]
               for path in results.glob("e2e_*/*/state.yml"))


def test_doe_run_on_aws_killed_then_resumed_runs_every_job_once_and_deletes_everything(aws_run_env, ec2):
    doe, pool = aws_run_env
    controller = doe.popen("run", "--suite", "e2e", "--cloud", "aws", "--id", "new")
    try:
        wait_for(lambda: _jobs_queued(doe.results) or controller.poll() is not None, timeout=300,
                 what="queued jobs")
    finally:
        with contextlib.suppress(ProcessLookupError):  # the controller and its Ansible runs, as in a crash
            os.killpg(controller.pid, signal.SIGKILL)
        _, stderr = controller.communicate(timeout=30)
    assert _jobs_queued(doe.results), stderr
    assert "estimated cost" in stderr
    suite_dir = doe.suite_dir("e2e")
    suite_id = suite_dir.name.rsplit("_", 1)[1]
    launched = _all_instances(ec2, suite_id)
    assert len(launched) == 3 and len(tagged(ec2, "doe:suite_id", suite_id)["instances"]) == 3
    # Setup copies the artifact with mode 0644: a setup that ran again would undo this.
    artifact = pool.hosts[0].root / "artifacts" / "greeting.txt"
    artifact.chmod(0o600)

    done = doe("run", "--suite", "e2e", "--id", "last", timeout=600)  # the stored cloud: aws
    assert "resuming on the 3 running instance(s)" in done.stderr
    assert "provisioned" not in done.stderr and "setting up" not in done.stderr
    assert artifact.stat().st_mode & 0o777 == 0o600
    ran = (pool.hosts[0].root / "ran.log").read_text().splitlines()
    assert len(ran) == 4 and len(set(ran)) == 4, ran  # 2 runs x 2 repetitions, each exactly once
    for rep in (0, 1):
        for run, x in ((0, 1), (1, 2)):
            out = suite_dir / "solo" / f"run_{run}" / f"rep_{rep}" / "small" / "host_0" / "out.json.txt"
            assert out.read_text() == f"{x} hello from s3\n"
    client = suite_dir / "duo" / "run_0" / "rep_0" / "medium" / "host_0" / "stdout.log"
    assert client.read_text().strip() == "client 7"
    for exp, jobs in (("solo", 4), ("duo", 1)):
        states = yaml.safe_load((suite_dir / exp / "state.yml").read_text())["jobs"]
        assert [job["status"] for job in states.values()] == ["finished"] * jobs
    table = (suite_dir / "etl_results" / "table" / "table.csv").read_text()
    assert table.count("solo") >= 4 and not (suite_dir / "ETL_ERROR.log").exists()
    stored = yaml.safe_load((suite_dir / ".inventory" / "aws.yml").read_text())["all"]["hosts"]
    assert {host["doe_cloud_setup_roles"] == ["host_packages", "s3_artifacts"] for host in stored.values()} == {True}
    # The resume went on with the instances it had (none launched), then deleted everything of the suite id.
    assert _all_instances(ec2, suite_id) == launched
    assert not any(tagged(ec2, "doe:suite_id", suite_id).values())


def test_a_failed_setup_deletes_the_instances(aws_run_env, ec2):
    doe, _ = aws_run_env
    settings_file = doe.config / "group_vars" / "all" / "main.yml"
    settings = yaml.safe_load(settings_file.read_text())
    broken = {**settings, "s3_artifacts_sources": [{"bucket": "no-such-bucket", "prefix": "", "dest": "/root/x"}]}
    settings_file.write_text(yaml.safe_dump(broken, sort_keys=False))
    try:
        done = doe("run", "--suite", "e2e", "--cloud", "aws", check=False, timeout=600)
    finally:
        settings_file.write_text(yaml.safe_dump(settings, sort_keys=False))
    assert done.returncode == 1, done.stderr
    assert "setup failed" in done.stderr
    suite_id = doe.suite_dir("e2e").name.rsplit("_", 1)[1]
    assert not any(tagged(ec2, "doe:suite_id", suite_id).values())
    assert "deleted" in done.stderr


def test_a_resume_replaces_a_terminated_instance_and_runs_the_jobs_lost_with_it(aws_run_env, ec2):
    """AWS ended an instance while the controller was down: the resume launches a replacement, sets it up,
    runs what was lost (the replacement starts empty, as a new machine does) and deletes everything."""
    doe, pool = aws_run_env
    controller = doe.popen("run", "--suite", "e2e", "--cloud", "aws", "--id", "new", "--expfilter", "solo")
    try:
        wait_for(lambda: _jobs_queued(doe.results) or controller.poll() is not None, timeout=300,
                 what="queued jobs")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(controller.pid, signal.SIGKILL)
        _, stderr = controller.communicate(timeout=30)
    assert _jobs_queued(doe.results), stderr
    suite_dir = doe.suite_dir("e2e")
    suite_id = suite_dir.name.rsplit("_", 1)[1]
    launched = _all_instances(ec2, suite_id)
    reservations = ec2.describe_instances(InstanceIds=launched)["Reservations"]
    tags = {i["InstanceId"]: {t["Key"]: t["Value"] for t in i.get("Tags", [])}
            for r in reservations for i in r["Instances"]}
    (lost,) = [iid for iid, t in tags.items() if t.get("doe:experiment") == "solo"]
    ec2.terminate_instances(InstanceIds=[lost])
    # The replacement is a new machine: nothing of the suite on it (its queue, job folders, running jobs).
    stored = yaml.safe_load((suite_dir / ".inventory" / "aws.yml").read_text())["all"]["hosts"]
    (solo_host,) = [h for h in stored.values() if h["doe_exp"] == "solo"]
    stop_queue = f"TS_SOCKET={shlex.quote(solo_host['job_queue_ts_socket'])} tsp -K; true"
    subprocess.run(pool.hosts[0].ssh_argv(stop_queue), check=True, capture_output=True, timeout=60)
    for remote in (solo_host["job_queue_root"], solo_host["job_queue_dir"]):
        local = pool.hosts[0].root / Path(remote).relative_to("/root")  # the host's /root is this folder
        for marker in local.glob("**/.doe_started"):
            started = json.loads(marker.read_text())
            pool.hosts[0].kill({started["wrapper_pid"]}, {started["main_pgid"], *started["background_pgids"]})
        shutil.rmtree(local)

    done = doe("run", "--suite", "e2e", "--id", "last", timeout=600)
    assert "no running instance for solo-small-0" in done.stderr, done.stderr
    assert "provisioned" in done.stderr
    ran = set((pool.hosts[0].root / "ran.log").read_text().splitlines())
    assert len(ran) == 4, ran  # every solo job ran (the lost ones again, on the replacement)
    for rep in (0, 1):
        for run, x in ((0, 1), (1, 2)):
            out = suite_dir / "solo" / f"run_{run}" / f"rep_{rep}" / "small" / "host_0" / "out.json.txt"
            assert out.read_text() == f"{x} hello from s3\n"
    states = yaml.safe_load((suite_dir / "solo" / "state.yml").read_text())["jobs"]
    assert [job["status"] for job in states.values()] == ["finished"] * 4
    everything = _all_instances(ec2, suite_id)
    assert len(launched) == 1 and len(everything) == 2 and launched[0] in everything  # one replacement
    assert not any(tagged(ec2, "doe:suite_id", suite_id).values())
