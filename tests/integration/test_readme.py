"""The README's getting-started steps hold: `doe` is reachable the way the README says, before it is used."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from doe_cli import __version__

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
CODE_BLOCK = re.compile(r"^```bash\n(.*?)^```", re.MULTILINE | re.DOTALL)
YAML_BLOCK = re.compile(r"^## Your own suite.*?^```yaml\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _code_lines() -> list[str]:
    """Every command line of the README's bash blocks, without its comment, in order."""
    return [line.split("#", 1)[0].strip() for block in CODE_BLOCK.findall(README.read_text())
            for line in block.splitlines() if line.split("#", 1)[0].strip()]


def test_the_first_block_starts_with_make_run_and_make_test():
    lines = _code_lines()
    assert lines[0].startswith("make run suite=") and lines[0].endswith("id=new")
    assert lines[1] == "make test"


def test_doe_is_put_on_the_path_before_the_readme_first_calls_it():
    lines = _code_lines()
    activate = next((i for i, line in enumerate(lines) if line.endswith(".venv/bin/activate")), None)
    first_doe = next(i for i, line in enumerate(lines) if line.startswith("doe "))
    assert activate is not None and activate < first_doe, "the README calls doe before saying how to reach it"
    # A shell whose PATH has no doe (a new terminal), in the repository, as the README's reader has it.
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                           if not (Path(p) / "doe").exists())
    done = subprocess.run(["bash", "-c", f"{lines[activate]} && command -v doe && doe --version"], cwd=REPO,
                          env={**os.environ, "PATH": path}, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [str(REPO / ".venv" / "bin" / "doe"), f"doe {__version__}"]


def test_the_readmes_own_suite_runs_as_written_and_draws_its_plot():
    """A new user's first study, copied from the README: design, run, summary table and bar plot."""
    import shutil
    import tempfile

    import pandas as pd

    from tests.integration.run.conftest import Doe, make_config_dir

    design = YAML_BLOCK.search(README.read_text()).group(1)
    tmp_path = Path(tempfile.mkdtemp(prefix="doe-readme-", dir="/tmp"))  # task spooler sockets need short paths
    try:
        config = make_config_dir(tmp_path, {"gzip": design})
        shutil.rmtree(config / "roles")
        doe = Doe(config, tmp_path / "results", tmp_path / "hosts")
        done = doe("run", "--suite", "gzip", "--id", "new")
        assert "gzip: 18/18 jobs, 0 failed" in done.stderr and "ETL" not in done.stderr
        summary = doe.suite_dir("gzip") / "etl_results" / "summary"
        table = pd.read_csv(summary / "summary.csv", index_col=0)
        assert len(table) == 6 and set(table["level"]) == {1, 5, 9} and (table["ms_count"] == 3).all()
        assert (table["bytes_mean"] > 0).all()
        assert (summary / "summary_bar_ms_mean.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)
