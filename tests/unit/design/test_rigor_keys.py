"""`order`, `seed` and `repetitions` (adaptive repetitions): read, kept in suite_design.yml, in the schema."""

from __future__ import annotations

import pytest

from doe_cli.design import load_raw_design, load_stored_suite, load_suite
from doe_cli.design.repetitions import Repetitions
from doe_cli.design.schema import design_schema

DESIGN = """
adaptive:
  n_repetitions: 3
  order: rmit
  seed: 11
  repetitions:
    max: 12
    metric: {file: runtime_info.yaml, key: wall_seconds}
    target_ci: 0.05
    max_minutes: 2
  host_types: {small: {$CMD$: "true"}}
  base_experiment: {}
plain:
  host_types: {small: {$CMD$: "true"}}
  base_experiment: {}
"""


def test_the_keys_are_read_and_kept_in_the_stored_design(cfg, tmp_path):
    cfg.design(DESIGN, "rigor")
    suite = load_suite(cfg.project, "rigor")
    adaptive, plain = suite.experiments["adaptive"], suite.experiments["plain"]
    assert (adaptive.order, adaptive.seed) == ("rmit", 11)
    assert adaptive.repetitions == Repetitions(max=12, file="runtime_info.yaml", field="wall_seconds",
                                               statistic="median", target_ci=0.05, confidence=0.95,
                                               max_minutes=2.0)
    assert (plain.order, plain.seed, plain.repetitions) == ("sequential", None, None)
    assert (adaptive.max_jobs(), plain.max_jobs()) == (12, 1)  # the cost estimate's job counts
    # The defaults add nothing to suite_design.yml: a plain design is stored as before.
    assert not {"order", "seed", "repetitions"} & set(suite.resolved["plain"])
    stored = tmp_path / "suite_design.yml"
    suite.write_resolved(stored)
    again = load_stored_suite(cfg.project, stored, "rigor").experiments["adaptive"]
    assert (again.order, again.seed, again.repetitions) == (adaptive.order, adaptive.seed, adaptive.repetitions)


def test_the_schema_describes_the_keys(cfg):
    jsonschema = pytest.importorskip("jsonschema")
    cfg.design(DESIGN, "rigor")
    raw, _ = load_raw_design(cfg.project, "rigor")
    validator = jsonschema.Draft202012Validator(design_schema())
    assert not list(validator.iter_errors(raw))
    raw["adaptive"]["repetitions"]["metric"] = {"file": "out.csv", "key": "x"}
    assert list(validator.iter_errors(raw))
