"""Step options are discoverable: `doe etl-steps`, the error for an unknown option, the typed `$ETL$` of
`doe schema`."""

from __future__ import annotations

import json

import jsonschema
from typer.testing import CliRunner

from doe_cli.main import app
from tests.unit.etl.conftest import STEPS
from tests.unit.etl.test_cli import invoke
from tests.unit.etl.test_custom_steps import write_package

CUSTOM = """
from typing import Literal

from pydantic import Field

from etl.steps.base import Transformer


class ScaleTransformer(Transformer):
    \"\"\"Multiplies a column.\"\"\"

    column: str
    factor: float = Field(2.0, description="What to multiply by.")
    mode: Literal["copy", "replace"] = "copy"

    def transform(self, df, options):
        return df.assign(**{self.column: df[self.column] * self.factor})
"""


def test_etl_steps_lists_built_in_and_custom_steps_with_options(tmp_path):
    write_package(tmp_path / "config", {"scale": CUSTOM, "broken": "import not_a_package_anywhere\n"})
    listed = invoke(tmp_path, "etl-steps")
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert "  ScaleTransformer (transformer, does_etl_custom.etl.scale): Multiplies a column." in lines
    assert "    factor: float (default 2.0)  What to multiply by." in lines
    assert "    mode: 'copy' | 'replace' (default 'copy')" in lines
    assert "    column: str (required)" in lines
    assert "    data_columns: list[str] (required)" in lines  # RepAggTransformer and the like
    assert any(line.startswith("  df.<method> (transformer, built-in)") for line in lines)
    assert lines[-2] == "custom ETL modules that cannot be imported:"
    assert lines[-1].startswith("  does_etl_custom.etl.broken: it needs package not_a_package_anywhere")

    plot = invoke(tmp_path, "etl-steps", "FactorPlotLoader")
    assert plot.exit_code == 0, plot.output
    for option in ("x: str | None (default None)  Column along the x axis; default: the first factor.",
                   "group: str | None (default None)", "facet: str | None (default None)", "y: str (required)"):
        assert f"    {option}" in plot.output
    assert "CsvExtractor" not in plot.output

    unknown = invoke(tmp_path, "etl-steps", "FactorPlotLoder")
    assert unknown.exit_code == 2 and "Traceback" not in unknown.output
    assert "no step FactorPlotLoder; steps: " in unknown.output and "FactorPlotLoader" in unknown.output


def test_an_unknown_option_names_the_allowed_ones(make_suite, tmp_path):
    loaders = {"FactorPlotLoader": {"y": "lat", "hue": "op"}}
    make_suite({"p": {"experiments": ["beta"], "extractors": STEPS, "loaders": loaders}})
    result = invoke(tmp_path, "etl", "--suite", "demo")
    assert result.exit_code == 1
    assert (
        "hue: Extra inputs are not permitted; FactorPlotLoader takes skip_empty, kind, y, x, group, facet, name, "
        "title, xlabel, ylabel, logy, formats, data_table (see doe etl-steps FactorPlotLoader)"
    ) in result.output


def test_the_schema_types_the_etl_steps():
    result = CliRunner().invoke(app, ["schema"])
    assert result.exit_code == 0
    validator = jsonschema.Draft202012Validator(json.loads(result.output))

    def problems(pipeline: dict) -> list:
        design = {
            "e": {"host_types": {"small": {"$CMD$": "true"}}, "base_experiment": {}},
            "$ETL$": {"p": {"experiments": "*", **pipeline}},
        }
        return list(validator.iter_errors(design))

    assert not problems(
        {
            "extractors": {"CsvExtractor": {"file_regex": "x"}, "JsonExtractor": None, "MyExtractor": {"a": 1}},
            "transformers": [
                {"name": "RepAggTransformer", "data_columns": ["[% metric %]"]},
                {"df.sort_values": {"by": "lat"}},
                {"name": "MyTransformer", "anything": 1},
            ],
            "loaders": {"FactorPlotLoader": {"y": "[% metric %]", "group": "size"}, "MyLoader": {}},
        }
    )
    assert problems({"transformers": [{"name": "RepAggTransformer"}]})  # data_columns missing
    assert problems({"transformers": [{"name": "RepAggTransformer", "data_columns": ["x"], "extra": 1}]})
    assert problems({"loaders": {"FactorPlotLoader": {"y": "lat", "kind": "pie"}}})
    assert problems({"loaders": {"FactorPlotLoader": {"y": "lat", "hue": "size"}}})
    assert problems({"extractors": {"CsvExtractor": {"delimiter": 1}}})
