"""The make surface of doe-suite: its target names, one-line errors for missing arguments, the defaults of id
and cloud, and `make clean` passing on its confirmation."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from doe_cli.config import TOOL_ROOT

DOE_SUITE_TARGETS = ("run", "run-keep", "status", "design", "design-validate", "info", "etl", "etl-all",
                     "etl-clean", "etl-clean-all", "etl-super", "clean", "clean-cloud", "clean-aws", "clean-result")


def make(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DOES_", "DOE_"))}
    return subprocess.run(["make", "--no-print-directory", *args], cwd=TOOL_ROOT, capture_output=True, text=True,
                          env={**base, **env}, stdin=subprocess.DEVNULL, check=False)


def doe_line(*args: str, **env: str) -> str:
    """The doe command a target runs (make -n: printed, not run)."""
    done = make("-n", *args, **env)
    assert done.returncode == 0, done.stderr
    [line] = [line for line in done.stdout.splitlines() if line.startswith(".venv/bin/doe ")]
    return " ".join(line.split())


def test_help_lists_every_doe_suite_target_on_one_line():
    listed = make("help")
    assert listed.returncode == 0
    lines = {line.split()[1]: line for line in listed.stdout.splitlines()}
    for target in DOE_SUITE_TARGETS:
        assert target in lines and len(lines[target].split()) > 2, f"make help: no line for {target}"
    assert make().stdout == listed.stdout  # `make` alone is `make help`, as in doe-suite


@pytest.mark.parametrize(("args", "needs"), [
    (["run"], "make run needs suite="), (["run-keep", "id=last"], "make run-keep needs suite="),
    (["etl"], "make etl needs suite="), (["etl-super"], "make etl-super needs config="),
    (["clean-cloud"], "make clean-cloud needs cloud="),
])
def test_a_missing_argument_is_one_line_before_anything_runs(args, needs):
    done = make(*args)
    assert done.returncode == 2 and done.stdout == ""
    [line] = done.stderr.strip().splitlines()
    assert needs in line


def test_run_starts_a_new_id_and_status_and_etl_read_the_last():
    assert doe_line("run", "suite=s") == '.venv/bin/doe run --suite "s" --id "new"'
    assert doe_line("run-keep", "suite=s", "id=last", "cloud=lab") == \
        '.venv/bin/doe run --suite "s" --id "last" --cloud "lab" --keep'
    assert doe_line("status", "suite=s") == '.venv/bin/doe status --suite "s" --id "last"'
    assert doe_line("etl", "suite=s") == '.venv/bin/doe etl --suite "s" --id "last"'
    assert doe_line("etl-clean-all") == ".venv/bin/doe etl-clean --all"


def test_clean_takes_the_cloud_of_does_cloud_else_aws_and_yes_skips_the_question():
    assert doe_line("clean") == '.venv/bin/doe clean --cloud "aws"'
    assert doe_line("clean", "yes=1", DOES_CLOUD="lab") == '.venv/bin/doe clean --cloud "lab" --yes'
    assert doe_line("clean-aws", "suite=s", "id=3") == '.venv/bin/doe clean --cloud aws --suite "s" --id "3"'


def test_clean_result_restricts_to_a_suite_and_passes_yes_and_dry_run():
    assert doe_line("clean-result") == ".venv/bin/doe clean-result"
    assert doe_line("clean-result", "suite=s", "yes=1") == '.venv/bin/doe clean-result --suite "s" --yes'
    assert doe_line("clean-result", "dry_run=1") == ".venv/bin/doe clean-result --dry-run"


def test_clean_of_a_cloud_runs_doe_clean(tmp_path):
    done = make("clean-cloud", "cloud=local", DOES_RESULTS_DIR=str(tmp_path / "results"),
                DOE_LOCAL_DIR=str(tmp_path / "hosts"))
    assert done.returncode == 0, done.stderr
    assert "stopped the queues of 0 host(s) of 0 suite run(s)" in done.stderr


def test_envrc_example_covers_every_variable_of_the_readme_and_sources_cleanly():
    readme = (TOOL_ROOT / "README.md").read_text()
    named = set(re.findall(r"^\| `(DOES_[A-Z_]+)` \|", readme, flags=re.MULTILINE))
    example = TOOL_ROOT / ".envrc.example"
    assert named and named <= set(re.findall(r"export (DOES_[A-Z_]+)=", example.read_text()))
    sourced = subprocess.run(["bash", "-euc", f'source "{example}"; echo "$DOES_CLOUD"'], capture_output=True,
                             text=True, check=False)
    assert sourced.returncode == 0 and sourced.stdout.strip() == "local", sourced.stderr
