"""What a new user meets in the first hour, through the real `doe` command on the local cloud: a typo in
a `$...$` word, Ctrl-C, resuming a finished suite, failed jobs, and `doe status` before any run."""

from __future__ import annotations

import json
import signal
import threading
import time

import pytest

from tests.integration.run.conftest import Doe, make_config_dir, wait_for

pytestmark = [pytest.mark.tsp, pytest.mark.slow]

TYPO = """
compress:
  host_types:
    small:
      $CMD$: gzip -[% my_run.level %] < /dev/null > /dev/null
  base_experiment:
    level:
      $FACTORS$: [1, 5, 9]
"""

SLOW = """
slow:
  host_types:
    small:
      $CMD$: sleep 1; echo "$PWD" >> "{shared}/slow.log"
  base_experiment:
    i:
      $FACTOR$: [0, 1, 2, 3, 4, 5]
"""

DONE = """
done:
  host_types:
    small:
      $CMD$: >-
        echo '{{"value": [% my_run.i %]}}' > results/value.json
  base_experiment:
    i:
      $FACTOR$: [1, 2]
$ETL$:
  values:
    experiments: [done]
    extractors:
      JsonExtractor: {{}}
      IgnoreExtractor: {{file_regex: ["^stdout.log$", "^stderr.log$"]}}
    loaders:
      CsvSummaryLoader: {{}}
"""

FAILING = """
failing:
  host_types:
    small:
      $CMD$: echo "preparing [% my_run.i %]" >&2; echo "no such input [% my_run.i %]" >&2; exit 3
  base_experiment:
    i:
      $FACTOR$: [0, 1, 2, 3]
"""


@pytest.fixture(scope="module")
def doe(short_tmp) -> Doe:
    root = short_tmp / "first-hour"
    shared = root / "shared"
    shared.mkdir(parents=True)
    designs = {"typo": TYPO, "slow": SLOW.format(shared=shared), "done": DONE.format(), "failing": FAILING}
    env = Doe(make_config_dir(root, designs), root / "results", root / "hosts")
    env.shared = shared
    return env


def test_an_unknown_dollar_word_is_one_line_naming_the_closest_known_one(doe):
    for command in ("design-validate", "design", "run"):
        done = doe(command, "--suite", "typo", *(("--id", "new") if command == "run" else ()), check=False)
        assert done.returncode == 2, done.stderr
        assert done.stdout == "" and len(done.stderr.strip().splitlines()) == 1, done.stderr
        message = " ".join(done.stderr.split())
        assert "typo.yml:8: experiments.compress.base_experiment.level.$FACTORS$:" in message
        assert "did you mean $FACTOR$?" in message
    assert not list(doe.results.glob("typo_*"))


class StderrReader:
    """Collects a process's stderr while it runs, noting when each line arrived."""

    def __init__(self, stream) -> None:
        self.lines: list[tuple[float, str]] = []
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.append((time.monotonic(), line))

    def first(self, text: str) -> float | None:
        return next((at for at, line in self.lines if text in line), None)

    @property
    def text(self) -> str:
        return "".join(line for _, line in self.lines)


def test_first_ctrl_c_answers_at_once_stops_quickly_and_says_it_once(doe):
    controller = doe.popen("run", "--suite", "slow", "--id", "new")
    stderr = StderrReader(controller.stderr)
    wait_for(lambda: next(doe.local.glob("slow_*/*/results/slow/run_*/rep_0/.doe_started"), None),
             timeout=120, what="a running job")
    sent = time.monotonic()
    controller.send_signal(signal.SIGINT)
    answered = wait_for(lambda: stderr.first("stopping:"), timeout=30, what="the answer to Ctrl-C")
    controller.wait(timeout=30)
    ended = time.monotonic()
    stderr.thread.join(timeout=5)
    assert answered - sent < 1.0, stderr.text
    assert ended - sent < 3.0, stderr.text
    assert controller.returncode == 130
    assert stderr.text.count("stopping:") == 1 and "interrupted" not in stderr.text, stderr.text
    assert "queued jobs keep running; resume with: doe run --suite slow --id " in stderr.text
    doe("run", "--suite", "slow", "--id", "last")
    lines = (doe.shared / "slow.log").read_text().splitlines()
    assert len(lines) == 6 and len(set(lines)) == 6, lines


def test_resuming_a_finished_suite_touches_no_host_and_runs_the_etl_on_changed_results(doe):
    doe("run", "--suite", "done", "--id", "new")
    suite_dir = doe.suite_dir("done")
    ansible_runs = set((suite_dir / ".doe" / "ansible").iterdir())
    result = suite_dir / "done/run_1/rep_0/small/host_0/value.json"
    result.write_text('{"value": 2000}\n')  # a result changed since the last ETL

    resumed = doe("run", "--suite", "done", "--id", "last")
    assert f"{suite_dir.name} is complete" in resumed.stderr
    assert "setting up" not in resumed.stderr
    assert set((suite_dir / ".doe" / "ansible").iterdir()) == ansible_runs  # no Ansible run at all
    assert "2000" in (suite_dir / "etl_results/values/values.csv").read_text()
    assert "done: 2/2 jobs, 0 failed" in resumed.stderr


def test_failed_jobs_show_their_folder_and_the_end_of_their_stderr(doe):
    done = doe("run", "--suite", "failing", "--id", "new", check=False)
    assert done.returncode == 1, done.stderr
    suite_dir = doe.suite_dir("failing")
    status = doe("status", "--suite", "failing", "--id", "last")
    for output in (done.stderr, status.stdout):
        assert output.count("failed: run") == 4, output
        assert output.count("folder:") == 3, output  # the first few in detail
        assert f"folder: {suite_dir}/failing/run_0/rep_0/small/host_0" in output
        assert "preparing 0" in output and "no such input 0" in output
        assert "no such input 3" not in output
    report = json.loads(doe("status", "--suite", "failing", "--id", "last", "--json").stdout)
    first = report["experiments"]["failing"]["failed_jobs"][0]
    assert first["stderr_tail"] == ["preparing 0", "no such input 0"] and first["exit_code"] == 3


def test_status_before_any_run_suggests_the_command_that_starts_one(doe):
    for args in ((), ("--id", "last"), ("--id", "new")):
        done = doe("status", "--suite", "never", *args, check=False)
        assert done.returncode == 2, done.stderr
        assert "doe run --suite never --id new" in done.stderr
        assert "use --id new" not in done.stderr and "Traceback" not in done.stderr
