"""`doe run` end to end on the local cloud: real ansible-playbook through the adapter, real tsp.

One suite run (session fixture) covers a single-host experiment (factors, repetitions, a background
command, a job that fails once) and a client/server experiment (readiness barrier, servers stopped
when the clients finish); further tests resume it with --retry-failed, filter experiments, and kill
the controller with SIGKILL in the middle of a 20-job suite.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from datetime import datetime

import pytest
import yaml

from tests.integration.run.conftest import (
    REPO,
    Doe,
    make_config_dir,
    process_gone,
    tsp_servers_under,
    wait_for,
)

pytestmark = [pytest.mark.tsp, pytest.mark.slow]

MIXED = """
single:
  n_repetitions: 2
  host_types:
    small:
      $CMD$:
        main: >-
          if [ [% my_run.x %] = 3 ] && [ ! -e "{shared}/failed_once_$(basename "$PWD")" ];
          then touch "{shared}/failed_once_$(basename "$PWD")"; echo failing >&2; exit 7; fi;
          echo "x=[% my_run.x %] label=[% my_run.label %]"; echo "note" >&2;
          cp config.json results/copied_config.json; ln -s /etc/hostname results/evil_link;
          i=0; while [ ! -s results/bg.pid ] && [ $i -lt 1000 ]; do sleep 0.01; i=$((i+1)); done
        watcher: echo $$ > results/bg.pid.tmp && mv results/bg.pid.tmp results/bg.pid; exec sleep 300
  base_experiment:
    label: "it's [% my_run.x %]"
    x:
      $FACTOR$: [1, 2, 3]
client_server:
  host_types:
    server:
      n: 1
      check_status: false
      $CMD$: echo $$ > results/server.pid; echo server-up; exec sleep 300
    client:
      n: 2
      $CMD$: echo "client [% my_run.y %]"
  base_experiment:
    y:
      $FACTOR$: [1, 2]
$ETL$:
  table:
    experiments: [single]
    extractors:
      JsonExtractor: {{}}
      YamlExtractor: {{}}
      RuntimeInfoExtractor: {{}}
      # bg.pid.tmp too: a main that fails at once may end the watcher between its write and its mv
      IgnoreExtractor: {{file_regex: ["^stdout.log$", "^stderr.log$", "^bg\\\\.pid"]}}
    loaders:
      CsvSummaryLoader: {{}}
  broken:
    experiments: [client_server]
    extractors:
      IgnoreExtractor: {{}}
    loaders:
      CsvSummaryLoader: {{}}
"""

TWENTY = """
twenty:
  n_repetitions: 2
  host_types:
    small:
      $CMD$: echo "$PWD" >> "{shared}/ran.log"; sleep 0.2
  base_experiment:
    i:
      $FACTOR$: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
"""


MULTI_KILLED = """
pairs:
  host_types:
    server:
      check_status: false
      $CMD$: exec sleep 300
    client:
      n: 2
      $CMD$: echo "$PWD $(basename "$(dirname "$PWD")")" >> "{shared}/pairs.log"; sleep 0.3
  base_experiment:
    i:
      $FACTOR$: [0, 1, 2, 3]
"""

INTERRUPTED = """
slow:
  common_roles: mark
  host_types:
    small:
      init_roles: [mark_type]
      $CMD$: sleep 1; echo "[% my_run.i %]"
  base_experiment:
    i:
      $FACTOR$: [0, 1, 2, 3]
"""


# Every job succeeds; the pipeline fails: its extractors miss stdout.log and stderr.log.
ETL_FAILS = """
etl_fails:
  host_types:
    small:
      $CMD$: >-
        echo '{"lat": 1}' > results/out.json
  base_experiment:
    x:
      $FACTOR$: [1, 2]
$ETL$:
  table:
    experiments: "*"
    extractors:
      JsonExtractor: {}
    loaders:
      CsvSummaryLoader: {}
"""


@pytest.fixture(scope="session")
def env(short_tmp):
    shared = short_tmp / "shared"
    shared.mkdir()
    designs = {"mixed": MIXED.format(shared=shared), "twenty": TWENTY.format(shared=shared),
               "interrupted": INTERRUPTED, "multi_killed": MULTI_KILLED.format(shared=shared), "etl_fails": ETL_FAILS}
    config = make_config_dir(short_tmp, designs)
    # Project setup roles: they append to a log, so the test sees how often they ran (and which tasks file).
    role_task = ("- name: Note that this role ran\n  ansible.builtin.command:\n"
                 "    argv: [sh, -c, 'echo \"$1\" >> \"$2\"', sh, '{text} {{{{ inventory_hostname }}}}', '{log}']\n"
                 "  changed_when: true\n")
    for role, tasks in (("mark", {"main": "mark"}), ("mark_type", {"main": "type-main", "local": "type-local"})):
        (config / "roles" / role / "tasks").mkdir(parents=True)
        for name, text in tasks.items():
            (config / "roles" / role / "tasks" / f"{name}.yml").write_text(
                role_task.format(text=text, log=shared / "setup.log"))
    # A code repository to check out on every host (its commit goes into provenance.json).
    repo = short_tmp / "code-repo"
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(repo)]
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    (repo / "tool.sh").write_text("echo tool\n")
    subprocess.run([*git, "add", "tool.sh"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "one"], check=True)
    (config / "group_vars" / "all" / "main.yml").write_text(
        f"prj_id: doe_test\ngit_remote_repository:\n  - repo: file://{repo}\n    version: main\n")
    doe = Doe(config, short_tmp / "results", short_tmp / "hosts")
    doe.shared = shared
    doe.commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    return doe


@pytest.fixture(scope="session")
def mixed_run(env):
    done = env("run", "--suite", "mixed", "--id", "new", check=False)
    assert done.returncode == 1, done.stderr  # two jobs failed
    return env.suite_dir("mixed"), done


def read_yaml(path):
    return yaml.safe_load(path.read_text())


def test_result_tree_config_and_runtime_info(mixed_run, env):
    suite_dir, _ = mixed_run
    assert tsp_servers_under(env.local) == []  # every host's queue was shut down at the end
    for name in ("suite_design.yml", "suite_design_ext.yml", "provenance.json", ".inventory/local.yml"):
        assert (suite_dir / name).is_file(), name
    ext = read_yaml(suite_dir / "suite_design_ext.yml")
    assert len(ext["single"]) == 3 and len(ext["client_server"]) == 2
    for run in range(2):
        for rep in range(2):
            rep_dir = suite_dir / "single" / f"run_{run}" / f"rep_{rep}"
            config = json.loads((rep_dir / "config.json").read_text())
            assert config["x"] == run + 1 and config["label"] == f"it's {run + 1}"
            host = rep_dir / "small" / "host_0"
            assert (host / "stdout.log").read_text() == f"x={run + 1} label=it's {run + 1}\n"
            assert (host / "stderr.log").read_text() == "note\n"
            assert json.loads((host / "copied_config.json").read_text()) == config
            info = read_yaml(host / ".doe_runtime_info.yaml")
            assert info["exit_code"] == 0 and info["status"] == "finished"
            assert info["host"] == "single-small-0" and info["host_type"] == "small" and info["host_idx"] == 0
            assert info["max_rss_kb"] > 0 and 0 <= info["wall_seconds"] < 60
            assert datetime.fromisoformat(info["end_time"]) >= datetime.fromisoformat(info["start_time"])
            assert process_gone(int((host / "bg.pid").read_text()))
            assert not os.path.lexists(host / "evil_link")  # symlinks are never fetched
    provenance = json.loads((suite_dir / "provenance.json").read_text())
    assert provenance["hosts"]["single-small-0"]["cpu_cores"] >= 1
    # This machine has a C compiler, so the hosts built the native job wrapper and ran the jobs with it.
    assert {host["job_wrapper"] for host in provenance["hosts"].values()} == {"native"}
    assert set(provenance["hosts"]) == {"single-small-0", "client_server-server-0", "client_server-client-0",
                                        "client_server-client-1"}
    checkout = provenance["repositories"]["single-small-0"][0]
    assert checkout["commit"] == env.commit and checkout["dir"] == "code" and checkout["version"] == "main"


def test_failed_jobs_are_recorded_fetched_and_listed(mixed_run, env):
    suite_dir, done = mixed_run
    state = read_yaml(suite_dir / "single" / "state.yml")
    assert state["jobs"]["run_2/rep_0"] == {"status": "failed", "exit_code": 7, "attempt": 1}
    assert len(state["exp_job_ids_finished"]) == 6 and state["exp_job_ids_unfinished"] == []
    host = suite_dir / "single/run_2/rep_1/small/host_0"
    assert (host / "stderr.log").read_text() == "failing\n"
    assert read_yaml(host / ".doe_runtime_info.yaml")["status"] == "failed"
    assert "failed: run 2 rep 0 exit code 7" in done.stderr
    status = json.loads(env("status", "--suite", "mixed", "--id", "last", "--json").stdout)
    assert status["experiments"]["single"]["failed"] == 2
    assert status["experiments"]["client_server"] == {
        "total": 2, "finished": 2, "failed": 0, "queued": 0, "pending": 0, "failed_jobs": []}


def test_etl_runs_after_the_jobs_and_its_errors_go_to_the_log(mixed_run, env):
    suite_dir, done = mixed_run
    table_file = suite_dir / "etl_results" / "table" / "table.csv"
    assert table_file.is_file(), done.stderr
    table = table_file.read_text()
    # One row per job (its copied_config.json); doe's own record adds columns, never rows.
    assert table.count("\n") == 1 + 6 and "runtime.exit_code" in table and "copied_config.json" in table
    error = (suite_dir / "ETL_ERROR.log").read_text().strip()
    assert error.startswith("broken: error: ") and "\n" not in error
    assert "ETL failed" in done.stderr and f"    {error}\n" in done.stderr  # shown, not only its log's name
    status = json.loads(env("status", "--suite", "mixed", "--id", "last", "--json").stdout)
    assert status["etl"]["error"] == error


def test_status_lists_pipelines_not_the_etl_cache(mixed_run, env):
    suite_dir, _ = mixed_run
    assert (suite_dir / "etl_results" / ".cache").is_dir()
    status = json.loads(env("status", "--suite", "mixed", "--id", "last", "--json").stdout)
    assert status["etl"]["pipelines"] == ["table"]


def test_an_etl_error_fails_the_run_only_with_strict_etl(env):
    strict = env("run", "--suite", "etl_fails", "--id", "new", "--strict-etl", check=False)
    assert strict.returncode == 1, strict.stderr
    expected = "    table: error: pipeline table: no extractor matches these file names: stderr.log (2 files"
    assert expected in strict.stderr and "0 failed" in strict.stderr
    lenient = env("run", "--suite", "etl_fails", "--id", "last")
    assert expected in lenient.stderr


def test_client_server_barrier_and_server_stop(mixed_run):
    suite_dir, _ = mixed_run
    for run in range(2):
        rep_dir = suite_dir / "client_server" / f"run_{run}" / "rep_0"
        server = read_yaml(rep_dir / "server/host_0/.doe_runtime_info.yaml")
        assert server["stopped_by_controller"] is True and server["status"] == "finished"
        assert (rep_dir / "server/host_0/stdout.log").read_text() == "server-up\n"
        assert process_gone(int((rep_dir / "server/host_0/server.pid").read_text()))
        for idx in range(2):
            client = read_yaml(rep_dir / f"client/host_{idx}/.doe_runtime_info.yaml")
            assert client["exit_code"] == 0
            # Readiness barrier: no client starts before the server's job has started.
            assert datetime.fromisoformat(client["start_time"]) >= datetime.fromisoformat(server["start_time"])
            assert (rep_dir / f"client/host_{idx}/stdout.log").read_text() == f"client {run + 1}\n"
    runs = sorted((suite_dir / "client_server").glob("run_*/rep_0/server/host_0/.doe_runtime_info.yaml"))
    first_server_end = read_yaml(runs[0])["end_time"]
    second_server_start = read_yaml(runs[1])["start_time"]
    assert second_server_start >= first_server_end  # one multi-host job at a time


def test_retry_failed_reruns_only_failed_jobs(mixed_run, env):
    suite_dir, _ = mixed_run
    before = (suite_dir / "single/run_0/rep_0/small/host_0/.doe_runtime_info.yaml").read_text()
    env("run", "--suite", "mixed", "--id", "last", "--retry-failed")
    state = read_yaml(suite_dir / "single" / "state.yml")
    assert state["jobs"]["run_2/rep_0"] == {"status": "finished", "exit_code": 0, "attempt": 2}
    assert (suite_dir / "single/run_0/rep_0/small/host_0/.doe_runtime_info.yaml").read_text() == before
    host = suite_dir / "single/run_2/rep_0/small/host_0"
    assert read_yaml(host / ".doe_runtime_info.yaml")["exit_code"] == 0
    assert (host / "stdout.log").read_text() == "x=3 label=it's 3\n"


def test_expfilter_runs_only_matching_experiments(env):
    done = env("run", "--suite", "mixed", "--id", "new", "--expfilter", "sing", check=False)
    assert done.returncode in (0, 1), done.stderr  # 1: jobs that fail once (when run before the others)
    suite_dir = env.suite_dir("mixed")
    assert not (suite_dir / "client_server").exists()
    assert (suite_dir / "single" / "state.yml").exists()
    assert list(read_yaml(suite_dir / "suite_design.yml")) == ["single", "$ETL$"]
    assert list(read_yaml(suite_dir / "suite_design.yml")["$ETL$"]) == ["table"]


def test_resume_after_sigkill_runs_every_job_exactly_once(env):
    log = env.shared / "ran.log"
    controller = env.popen("run", "--suite", "twenty", "--id", "new")
    wait_for(lambda: log.exists() and len(log.read_text().splitlines()) >= 3, timeout=120, what="first jobs")
    os.kill(controller.pid, signal.SIGKILL)
    controller.wait()
    status = json.loads(env("status", "--suite", "twenty", "--id", "last", "--json").stdout)
    assert status["controller_running"] is False and status["experiments"]["twenty"]["total"] == 20
    if status["experiments"]["twenty"]["queued"]:  # the hosts are asked, nothing is fetched
        assert sum(status["experiments"]["twenty"]["on_hosts"].values()) == status["experiments"]["twenty"]["queued"]
    env("run", "--suite", "twenty", "--id", "last")
    lines = log.read_text().splitlines()
    assert len(lines) == 20 and len(set(lines)) == 20
    suite_dir = env.suite_dir("twenty")
    state = read_yaml(suite_dir / "twenty" / "state.yml")
    assert len(state["exp_job_ids_finished"]) == 20
    assert all(job["status"] == "finished" for job in state["jobs"].values())
    assert len(list(suite_dir.glob("twenty/run_*/rep_*/small/host_0/.doe_runtime_info.yaml"))) == 20


def test_example01_minimal_from_the_repository(short_tmp):
    doe = Doe(REPO, short_tmp / "results-example01", short_tmp / "hosts-example01")
    done = doe("run", "--suite", "example01-minimal", "--id", "new")
    suite_dir = doe.suite_dir("example01-minimal")
    outputs = sorted(p.read_text() for p in suite_dir.glob("minimal/run_*/rep_*/small/host_0/stdout.log"))
    assert len(outputs) == 8
    assert outputs.count("payload=64 rate=1 seed=1234\n") == 2
    assert "minimal: 8/8 jobs, 0 failed" in done.stderr
    status = doe("status", "--suite", "example01-minimal", "--id", "last")
    assert "minimal: 8/8 jobs, 0 failed" in status.stdout
    assert not (short_tmp / "hosts-example01" / suite_dir.name).exists()  # hosts cleaned up
    assert tsp_servers_under(short_tmp / "hosts-example01") == []  # queues shut down


def test_bad_input_is_one_line_exit_2_and_creates_nothing(env, short_tmp):
    (env.config / "designs" / "undefined.yml").write_text(
        "e:\n  host_types:\n    small:\n      $CMD$: echo {{ not_defined_anywhere }}\n  base_experiment: {}\n")
    for args, expected in ((("--suite", "undefined", "--id", "new"), "not_defined_anywhere"),
                           (("--suite", "mixed", "--id", "abc"), "invalid id"),
                           (("--suite", "mixed", "--id", "new", "--cloud", "nowhere"), "cloud")):
        done = env("run", *args, check=False)
        assert done.returncode == 2, done.stderr
        assert expected in done.stderr and "Traceback" not in done.stderr
    assert not list(env.results.glob("undefined_*"))


def test_ctrl_c_leaves_jobs_queued_and_says_how_to_resume(env):
    controller = env.popen("run", "--suite", "interrupted", "--id", "new")
    # The first round sets up, enqueues and long-polls in one Ansible run: interrupt it while jobs run.
    wait_for(lambda: next(env.local.glob("interrupted_*/*/results/slow/run_*/rep_0/.doe_started"), None),
             timeout=120, what="a running job")
    controller.send_signal(signal.SIGINT)
    _, stderr = controller.communicate(timeout=120)
    assert controller.returncode == 130
    assert "resume with: doe run --suite interrupted --id " in stderr
    env("run", "--suite", "interrupted", "--id", "last")
    # Setup ran once (not again on resume), common role then the host type's role, local.yml preferred.
    assert (env.shared / "setup.log").read_text() == "mark slow-small-0\ntype-local slow-small-0\n"
    outputs = sorted(p.read_text() for p in env.suite_dir("interrupted").glob("slow/run_*/rep_0/small/host_0/stdout.log"))
    assert outputs == ["0\n", "1\n", "2\n", "3\n"]


def test_multi_host_resume_after_sigkill_runs_every_client_job_once(env):
    log = env.shared / "pairs.log"
    controller = env.popen("run", "--suite", "multi_killed", "--id", "new")
    wait_for(lambda: log.exists() and len(log.read_text().splitlines()) >= 3, timeout=180, what="first jobs")
    os.kill(controller.pid, signal.SIGKILL)
    controller.wait()
    resumed = env("run", "--suite", "multi_killed", "--id", "last")
    lines = log.read_text().splitlines()
    assert len(lines) == 8 and len(set(lines)) == 8, lines  # 4 jobs x 2 clients, each exactly once
    # Progress counts jobs, not hosts: a job running on three hosts is one running job.
    progress = [line for line in resumed.stderr.splitlines() if "experiment pairs:" in line]
    assert progress and all(int(line.split(" running")[0].rsplit(" ", 1)[1]) <= 1 for line in progress), progress
    assert not any("-" in line.split(" waiting")[0].rsplit(",", 1)[1] for line in progress), progress
    suite_dir = env.suite_dir("multi_killed")
    assert len(list(suite_dir.glob("pairs/run_*/rep_0/server/host_0/.doe_runtime_info.yaml"))) == 4
    assert all(job["status"] == "finished" for job in read_yaml(suite_dir / "pairs" / "state.yml")["jobs"].values())
    assert tsp_servers_under(env.local) == []


@pytest.mark.parametrize("suite", ["example02-repetitions", "example03-format", "example04-multi",
                                   "example05-background", "example06-vars", "example07-etl"])
def test_every_shipped_example_runs_every_job_on_every_host(suite, short_tmp):
    doe = Doe(REPO, short_tmp / f"results-{suite}", short_tmp / f"hosts-{suite}")
    doe("run", "--suite", suite, "--id", "new")
    suite_dir = doe.suite_dir(suite)
    design = yaml.safe_load((suite_dir / "suite_design.yml").read_text())
    extended = yaml.safe_load((suite_dir / "suite_design_ext.yml").read_text())
    for exp, runs in extended.items():
        spec = design[exp]
        for run in range(len(runs)):
            for rep in range(spec["n_repetitions"]):
                rep_dir = suite_dir / exp / f"run_{run}" / f"rep_{rep}"
                assert json.loads((rep_dir / "config.json").read_text())["$CMD$"] == runs[run]["$CMD$"]
                for host_type, host_spec in spec["host_types"].items():
                    for idx in range(host_spec["n"]):
                        host_dir = rep_dir / host_type / f"host_{idx}"
                        info = yaml.safe_load((host_dir / ".doe_runtime_info.yaml").read_text())
                        # Servers (check_status: false) are stopped by the controller once clients finish.
                        assert info["exit_code"] == 0 or not host_spec["check_status"], (host_dir, info)
                        assert (host_dir / "stdout.log").is_file() and (host_dir / "stderr.log").is_file()
    assert tsp_servers_under(short_tmp / f"hosts-{suite}") == []
    if design["$ETL$"]:
        assert not (suite_dir / "ETL_ERROR.log").exists()
        assert any((suite_dir / "etl_results").rglob("*.csv"))
