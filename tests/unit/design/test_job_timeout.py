"""An experiment's optional `job_timeout` (seconds): validated, in the schema, kept in suite_design.yml."""

from __future__ import annotations

import pytest

from doe_cli.design import load_raw_design, load_stored_suite, load_suite
from doe_cli.design.schema import design_schema
from doe_cli.errors import UserError

DESIGN = """
timed:
  job_timeout: 2.5
  host_types: {small: {$CMD$: "true"}}
  base_experiment: {}
untimed:
  host_types: {small: {$CMD$: "true"}}
  base_experiment: {}
"""


@pytest.fixture
def config(tmp_path):
    from tests.unit.design.conftest import ConfigDir

    return ConfigDir(tmp_path / "config")


def test_job_timeout_is_read_and_kept_in_the_stored_design(config, tmp_path):
    config.design(DESIGN, "timed")
    suite = load_suite(config.project, "timed")
    assert suite.experiments["timed"].job_timeout == 2.5 and suite.experiments["untimed"].job_timeout is None
    assert "job_timeout" not in suite.resolved["untimed"]
    stored = tmp_path / "suite_design.yml"
    suite.write_resolved(stored)
    again = load_stored_suite(config.project, stored, "timed")
    assert again.experiments["timed"].job_timeout == 2.5


def test_the_schema_describes_job_timeout(config):
    jsonschema = pytest.importorskip("jsonschema")
    config.design(DESIGN, "timed")
    raw, _ = load_raw_design(config.project, "timed")
    assert not list(jsonschema.Draft202012Validator(design_schema()).iter_errors(raw))


@pytest.mark.parametrize("value", ["0", "-1", "true", "'10'", "[1]"])
def test_a_job_timeout_that_is_no_positive_number_is_refused(config, value):
    config.design(f"e:\n  job_timeout: {value}\n  host_types: {{small: {{$CMD$: 'true'}}}}\n  base_experiment: {{}}\n")
    with pytest.raises(UserError) as caught:
        load_suite(config.project, "t")
    assert caught.value.path == "experiments.e.job_timeout" and caught.value.line == 2
    assert "expected a positive number of seconds" in str(caught.value)
