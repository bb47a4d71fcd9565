"""scripts/install_project_packages.py: which packages of a project's pyproject.toml `make install` installs."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

from tests.conftest import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "install_project_packages.py"
spec = importlib.util.spec_from_file_location("install_project_packages", SCRIPT)
installer = importlib.util.module_from_spec(spec)
spec.loader.exec_module(installer)

PYPROJECT = """
[tool.poetry.dependencies]
python = ">=3.9,<4.0"
doespy = {path = "../doe-suite/doespy", develop = true}
seaborn = "^0.13.2"
tqdm = "~4.66"
pdf2image = {version = "^1.17.0", extras = ["fast"]}
pyyaml = "*"
legacy = {git = "https://example.invalid/legacy.git"}
"""


def test_poetry_constraints_become_pip_specifiers():
    assert installer.poetry_specifier("^1.2.3") == ">=1.2.3,<2"
    assert installer.poetry_specifier("^0.13.2") == ">=0.13.2,<0.14"
    assert installer.poetry_specifier("~4.66") == ">=4.66,<4.67"
    assert installer.poetry_specifier("1.2") == "==1.2"
    assert installer.poetry_specifier(">=1,<2") == ">=1,<2"
    assert installer.poetry_specifier("*") == ""


def test_python_and_path_or_git_dependencies_are_skipped(tmp_path):
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    assert installer.requirements(tmp_path / "pyproject.toml") == [
        "seaborn>=0.13.2,<0.14",
        "tqdm>=4.66,<4.67",
        "pdf2image[fast]>=1.17.0,<2",
        "pyyaml",
    ]


def test_installed_packages_are_not_installed_again(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.poetry.dependencies]\npython = "^3.11"\npyyaml = ">=5"\n')
    assert not installer.missing("pyyaml>=5") and installer.missing("pyyaml>=999")
    done = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path)], capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout) == (0, "")
