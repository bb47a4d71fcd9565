"""The shipped examples' commands really run on this machine with only sh and python3.

Each experiment's first run is executed the way a job runs: in its own folder holding config.json and
results/, with `sh -c`; background commands beside main, stopped when main ends.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from doe_cli.config import TOOL_ROOT, discover
from doe_cli.design import config_json, load_suite

PROJECT = discover(TOOL_ROOT)
JOB_TIMEOUT = 60


def local_hosts(suite) -> dict:
    return {name: [{"host_type": ht, "host_type_idx": i, "host_type_n": spec.n, "public_dns_name": "127.0.0.1",
                    "private_dns_name": "127.0.0.1", "hostvars": {"ansible_host": "127.0.0.1"}}
                   for ht, spec in exp.host_types.items() for i in range(spec.n)]
            for name, exp in suite.experiments.items()}


def job_dir(root: Path, name: str, run_config: dict) -> Path:
    folder = root / name
    (folder / "results").mkdir(parents=True)
    (folder / "config.json").write_text(config_json(run_config))
    return folder


def start(command: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(["sh", "-c", command], cwd=cwd, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    process.communicate(timeout=JOB_TIMEOUT)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("suite_name", [s for s in PROJECT.suites() if s != "example04-multi"])
def test_first_run_of_every_experiment_succeeds(tmp_path, suite_name):
    suite = load_suite(PROJECT, suite_name)
    for exp_name, runs in suite.extend(local_hosts(suite)).items():
        for host_type, commands in runs[0]["$CMD$"].items():
            for idx, host_commands in enumerate(commands):
                folder = job_dir(tmp_path, f"{exp_name}-{host_type}-{idx}", runs[0])
                background = [start(c, folder) for name, c in host_commands.items() if name != "main"]
                try:
                    main = subprocess.run(["sh", "-c", host_commands["main"]], cwd=folder, capture_output=True,
                                          text=True, timeout=JOB_TIMEOUT, check=False)
                finally:
                    for process in background:
                        stop(process)
                assert main.returncode == 0, (exp_name, host_type, main.stderr)


def test_multi_host_clients_reach_the_server(tmp_path):
    suite = load_suite(PROJECT, "example04-multi", variables={"example04_port": free_port()})
    run = suite.extend(local_hosts(suite))["client_server"][1]
    server = start(run["$CMD$"]["server"][0]["main"], job_dir(tmp_path, "server", run))
    try:
        clients = [start(c["main"], job_dir(tmp_path, f"client-{i}", run))
                   for i, c in enumerate(run["$CMD$"]["client"])]
        outputs = [client.communicate(timeout=JOB_TIMEOUT) for client in clients]
    finally:
        stop(server)
    for client, (stdout, stderr) in zip(clients, outputs):
        assert client.returncode == 0, stderr
        assert f"fetched http://127.0.0.1:{run['port']}/config.json 5 times" in stdout
