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
