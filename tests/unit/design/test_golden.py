"""Golden run lists: the shipped examples and tests/designs/good/ expand exactly as recorded.

The golden files in golden/ are the extended designs (suite_design_ext.yml at design time). After an
intended change, regenerate them with DOE_REGEN_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from doe_cli.design import dump_yaml, load_suite
from tests.unit.design.conftest import make_config_dir

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "golden"
DESIGNS = HERE.parents[1] / "designs"
GOOD = sorted(DESIGNS.glob("good/*.yml"))
EXAMPLES = sorted(p.stem for p in (HERE.parents[2] / "designs").glob("example*.yml"))
REGENERATE = os.environ.get("DOE_REGEN_GOLDEN") == "1"


def check_golden(name: str, text: str) -> None:
    golden = GOLDEN / f"{name}.yml"
    if REGENERATE:
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text)
    assert golden.is_file(), f"no golden file {golden.name}; run with DOE_REGEN_GOLDEN=1 and review it"
    assert text == golden.read_text()


@pytest.fixture(scope="module")
def good_project(tmp_path_factory):
    project = make_config_dir(tmp_path_factory.mktemp("good") / "config")
    for design in GOOD:
        shutil.copy(design, project.designs_dir / design.name)
    for include in (DESIGNS / "design_vars").glob("*.yml"):
        shutil.copy(include, project.design_vars_dir / include.name)
    return project


def test_every_feature_has_an_example():
    assert {"example01-minimal", "example04-multi"} <= set(EXAMPLES)
    assert len(EXAMPLES) >= 7


@pytest.mark.parametrize("suite", EXAMPLES)
def test_example_expands_as_recorded(shipped, suite):
    check_golden(suite, dump_yaml(load_suite(shipped, suite).extend(check_commands=False)))


@pytest.mark.parametrize("design", GOOD, ids=lambda p: p.stem)
def test_good_design_expands_as_recorded(good_project, design):
    header = re.search(r"^# runs: (.*)$", design.read_text(), re.MULTILINE).group(1)
    expected = {name: int(n) for name, n in re.findall(r"(\w+)=(\d+)", header)}
    suite = load_suite(good_project, design.stem)
    extended = suite.extend(check_commands=False)
    assert {name: len(runs) for name, runs in extended.items()} == expected
    assert {name: exp.n_runs() for name, exp in suite.experiments.items()} == expected
    check_golden(f"good-{design.stem}", dump_yaml(extended))
