"""The exported JSON Schema accepts every shipped and good design and rejects structural mistakes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pydantic import ValidationError

from doe_cli.design import load_raw_design, load_suite
from doe_cli.design.schema import design_schema
from doe_cli.design.spec import DesignSpec, ExperimentSpec, HostTypeSpec, spec_keys
from doe_cli.design.validate import EXPERIMENT_KEYS, HOST_TYPE_KEYS
from doe_cli.errors import UserError
from tests.unit.design.conftest import make_config_dir

jsonschema = pytest.importorskip("jsonschema")

DESIGNS = Path(__file__).resolve().parents[2] / "designs"
STRUCTURAL_BAD = ["experiment-name", "reserved-name", "unknown-experiment-key", "missing-host-types",
                  "n-repetitions", "unknown-host-type-key", "n-zero", "check-status-type", "missing-cmd",
                  "cmd-without-main", "cmd-type", "run-reserved", "host-type-all", "levels-not-list", "job-timeout",
                  "etl-step-unknown-option", "order", "seed", "repetitions-metric-column", "repetitions-target",
                  "repetitions-unknown-key"]


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
    for include in (DESIGNS / "design_vars").glob("*.yml"):
        shutil.copy(include, project.design_vars_dir / include.name)
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


# -- the schema is generated from the design's models (doe_cli.design.spec) and says what they say ---------
EXAMPLES = sorted([*DESIGNS.glob("good/*.yml"), *DESIGNS.glob("bad/*.yml")])
# The schema types the ETL steps' options (etl.step_catalog); the models leave them to etl's own checks.
SCHEMA_ONLY = {"etl-step-unknown-option"}
# YAML that does not parse (or duplicates a key) gives no design to check.
NOT_PARSED = {"duplicate-key", "outer-syntax", "yaml-syntax"}


def model_accepts(raw) -> bool:
    try:
        DesignSpec.model_validate(raw)
    except ValidationError:
        return False
    return True


def test_the_models_keys_are_the_validators():
    assert spec_keys(ExperimentSpec) == EXPERIMENT_KEYS
    assert spec_keys(HostTypeSpec) == HOST_TYPE_KEYS


def test_shipped_examples_satisfy_the_models(shipped):
    for suite in shipped.suites():
        raw, _ = load_raw_design(shipped, suite)
        assert model_accepts(raw), suite


@pytest.mark.parametrize("design", EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_the_schema_rejects_what_the_models_reject(project, validator, design):
    if design.stem in NOT_PARSED:
        with pytest.raises(UserError):
            load_raw_design(project, design.stem)
        return
    raw, _ = load_raw_design(project, design.stem)
    by_model, by_schema = model_accepts(raw), not list(validator.iter_errors(raw))
    if design.parent.name == "good":
        assert by_model and by_schema
    elif design.stem in SCHEMA_ONLY:
        assert by_model and not by_schema
    else:
        assert by_model == by_schema


def test_whatever_the_models_reject_the_validator_rejects_with_file_line_and_path(project):
    """The validator (not the models) reports a design's mistakes: every bad design the models reject fails
    loading with one line naming the file, the line and the YAML path."""
    rejected = []
    for design in EXAMPLES:
        if design.parent.name != "bad" or design.stem in NOT_PARSED:
            continue
        raw, _ = load_raw_design(project, design.stem)
        if model_accepts(raw):
            continue
        rejected.append(design.stem)
        with pytest.raises(UserError) as caught:
            load_suite(project, design.stem)
        error = caught.value
        assert error.file and Path(error.file).name == design.name, design.stem
        if raw is not None and error.path:
            assert error.line is not None, design.stem
    assert set(STRUCTURAL_BAD) - SCHEMA_ONLY <= set(rejected)
