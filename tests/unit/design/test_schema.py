"""The exported JSON Schema accepts every shipped and good design and rejects structural mistakes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from doe_cli.design import load_raw_design
from doe_cli.design.schema import design_schema
from tests.unit.design.conftest import make_config_dir

jsonschema = pytest.importorskip("jsonschema")

DESIGNS = Path(__file__).resolve().parents[2] / "designs"
STRUCTURAL_BAD = ["experiment-name", "reserved-name", "unknown-experiment-key", "missing-host-types",
                  "n-repetitions", "unknown-host-type-key", "n-zero", "check-status-type", "missing-cmd",
                  "cmd-without-main", "cmd-type", "run-reserved", "host-type-all", "levels-not-list", "job-timeout",
                  "etl-step-unknown-option"]


@pytest.fixture(scope="module")
def validator():
    schema = design_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    project = make_config_dir(tmp_path_factory.mktemp("schema") / "config")
    for design in [*DESIGNS.glob("good/*.yml"), *DESIGNS.glob("bad/*.yml")]:
        shutil.copy(design, project.designs_dir / design.name)
    return project


def test_shipped_examples_satisfy_the_schema(shipped, validator):
    for suite in shipped.suites():
        raw, _ = load_raw_design(shipped, suite)
        assert not list(validator.iter_errors(raw)), suite


@pytest.mark.parametrize("design", sorted(p.stem for p in DESIGNS.glob("good/*.yml")))
def test_good_designs_satisfy_the_schema(project, validator, design):
    raw, _ = load_raw_design(project, design)
    assert not list(validator.iter_errors(raw))


@pytest.mark.parametrize("design", STRUCTURAL_BAD)
def test_structural_mistakes_violate_the_schema(project, validator, design):
    raw, _ = load_raw_design(project, design)
    assert list(validator.iter_errors(raw))
