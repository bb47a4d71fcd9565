"""expand_etl_section: the explicit `$ETL$` form written into suite_design.yml, and its one-line errors."""

from __future__ import annotations

import pytest
import yaml

from etl.design_section import expand_etl_section
from etl.errors import EtlConfigError

MINIMAL = {"experiments": "*", "extractors": {"CsvExtractor": {}}}


def expand(section, experiments=("a", "b"), **kwargs):
    return expand_etl_section(section, list(experiments), **kwargs)


def test_defaults_are_made_explicit():
    expanded = expand({"p": {**MINIMAL, "extractors": {"CsvExtractor": {}, "IgnoreExtractor": None}}})
    assert expanded == {
        "p": {
            "experiments": ["a", "b"],
            "extractors": {
                "CsvExtractor": {"file_regex": [r".*\.csv$"], "delimiter": ",", "has_header": True},
                # doe-suite's default text, as its suite_design.yml lists it
                "IgnoreExtractor": {"file_regex": ["^stdout.log$"]},
            },
            "transformers": [],
            "loaders": {},
        }
    }
    assert list(expanded["p"]) == ["experiments", "extractors", "transformers", "loaders"]


def test_empty_or_missing_section_is_empty():
    assert expand(None) == {}
    assert expand({}) == {}


def test_etl_vars_keep_type_and_render_inside_strings():
    expanded = expand(
        {
            "p": {
                **MINIMAL,
                "$ETL_VARS$": {"cols": ["lat"], "n": 3},
                "transformers": [
                    {"name": "GroupByAggTransformer", "data_columns": "[% cols %]", "groupby_columns": []},
                    {"df.query": {"expr": "x > [% n %]"}},
                ],
            }
        }
    )
    assert expanded["p"]["transformers"] == [
        {
            "name": "GroupByAggTransformer",
            "data_columns": ["lat"],
            "groupby_columns": [],
            "agg_functions": ["mean", "min", "max", "std", "count"],
            "custom_tail_length": 5,
        },
        {"df.query": {"expr": "x > 3"}},
    ]
    assert "$ETL_VARS$" not in expanded["p"]


def test_steps_list_doe_suites_options_with_defaults_in_its_order_and_doe_options_only_when_set():
    expanded = expand(
        {
            "p": {
                "experiments": "*",
                "extractors": {
                    "CsvExtractor": {"has_header": False, "fieldnames": ["a", "b"], "file_regex": "x.csv"},
                    "ErrorExtractor": {"on_output": "warning"},
                    "RuntimeInfoExtractor": {},
                },
                "transformers": [
                    {"name": "RepAggTransformer", "data_columns": ["lat"]},
                    {"name": "ConditionalTransformer", "value": {"a": 1}, "dest": "d", "col": "c"},
                    {"name": "FilterColumnTransformer"},
                    {"df.sort_values": {"by": ["run"]}},
                ],
                "loaders": {"PickleSummaryLoader": {}, "LatexTableLoader": None, "ParquetLoader": {}},
            }
        }
    )["p"]
    assert expanded["extractors"] == {
        "CsvExtractor": {"file_regex": ["x.csv"], "delimiter": ",", "has_header": False, "fieldnames": ["a", "b"]},
        "ErrorExtractor": {"file_regex": ["^stderr.log$"], "on_output": "warning"},
        "RuntimeInfoExtractor": {"file_regex": [r"^\.doe_runtime_info\.yaml$"]},
    }
    assert list(expanded["extractors"]["CsvExtractor"]) == ["file_regex", "delimiter", "has_header", "fieldnames"]
    assert [list(item.items()) for item in expanded["transformers"]] == [
        [
            ("name", "RepAggTransformer"),
            ("ignore_columns", []),
            ("data_columns", ["lat"]),
            ("agg_functions", ["mean", "min", "max", "std", "count"]),
        ],
        [("name", "ConditionalTransformer"), ("col", "c"), ("dest", "d"), ("value", {"a": 1})],
        [("name", "FilterColumnTransformer"), ("filters", {}), ("allow_empty_result", False)],
        [("df.sort_values", {"by": ["run"]})],
    ]
    assert expanded["loaders"] == {
        "PickleSummaryLoader": {"skip_empty": False},
        "LatexTableLoader": {"skip_empty": False},
        "ParquetLoader": {},
    }


def test_glob_file_regex_is_translated_and_invalid_entry_is_an_error():
    with pytest.warns(UserWarning, match=r"'\*\.log' is no regular expression; read as a glob"):
        expanded = expand({"p": {**MINIMAL, "extractors": {"CsvExtractor": {"file_regex": "*.log"}}}})
    import re

    (regex,) = expanded["p"]["extractors"]["CsvExtractor"]["file_regex"]
    assert re.match(regex, "out.log") and not re.match(regex, "out.csv")
    with pytest.raises(EtlConfigError, match=r"neither a regular expression") as info:
        expand({"p": {**MINIMAL, "extractors": {"CsvExtractor": {"file_regex": ["ok", "(unclosed"]}}}})
    assert info.value.path == "$ETL$.p.extractors.CsvExtractor.file_regex"


@pytest.mark.parametrize(
    "section, path, message",
    [
        ({"p": {**MINIMAL, "experiments": ["zz"]}}, "$ETL$.p.experiments", "unknown experiments"),
        ({"p": {**MINIMAL, "experiments": "a"}}, "$ETL$.p.experiments", "expected"),
        (
            {"p": {**MINIMAL, "transformers": [{"name": "Nope"}]}},
            "$ETL$.p.transformers[0]",
            "unknown transformer",
        ),
        (
            {"p": {**MINIMAL, "transformers": [{"name": "CsvSummaryLoader"}]}},
            "$ETL$.p.transformers[0]",
            "is a loader",
        ),
        (
            {"p": {**MINIMAL, "transformers": [{"name": "RepAggTransformer"}]}},
            "$ETL$.p.transformers[0]",
            "data_columns",
        ),
        (
            {"p": {**MINIMAL, "transformers": [{"df.nope": {}}]}},
            "$ETL$.p.transformers[0]",
            "DataFrame method",
        ),
        (
            {"p": {**MINIMAL, "transformers": [{"df.eval": {"expr": "a=1", "inplace": True}}]}},
            "$ETL$.p.transformers[0]",
            "inplace",
        ),
        (
            {"p": {**MINIMAL, "loaders": {"CsvSummaryLoader": {"bogus": 1}}}},
            "$ETL$.p.loaders.CsvSummaryLoader",
            "bogus",
        ),
        ({"p": {**MINIMAL, "extra": 1}}, "$ETL$.p", "unknown keys"),
        ({"p": {"extractors": {"CsvExtractor": {}}}}, "$ETL$.p", "missing `experiments`"),
        ({"p": {**MINIMAL, "$INCLUDE_PIPELINE$": {"template": "t", "pipeline": "x"}}}, "$ETL$.p", "own"),
        (
            {
                "p": {
                    "experiments": "*",
                    "$INCLUDE_PIPELINE$": {"template": "t", "suite": "s", "pipeline": "x"},
                }
            },
            "$ETL$.p.$INCLUDE_PIPELINE$",
            "exactly one",
        ),
        (
            {"p": {"experiments": "*", "$INCLUDE_PIPELINE$": {"template": "missing", "pipeline": "x"}}},
            "$ETL$.p.$INCLUDE_PIPELINE$",
            "does not exist",
        ),
    ],
)
def test_errors_are_one_line_with_path(tmp_path, section, path, message):
    (tmp_path / "designs" / "etl_templates").mkdir(parents=True)
    with pytest.raises(EtlConfigError, match=message) as info:
        expand(section, config_dir=tmp_path)
    assert info.value.path == path
    assert "\n" not in str(info.value) and str(info.value).startswith(path)


@pytest.fixture
def config_dir(tmp_path):
    templates = tmp_path / "designs" / "etl_templates"
    templates.mkdir(parents=True)
    (templates / "common.yml").write_text(
        yaml.safe_dump(
            {
                "$ETL$": {
                    "base": {
                        "experiments": "*",
                        "extractors": {"CsvExtractor": {}, "ErrorExtractor": {}},
                        "transformers": [{"name": "RepAggTransformer", "data_columns": ["[% metric %]"]}],
                        "loaders": {"CsvSummaryLoader": {}},
                    },
                    "loop": {
                        "experiments": "*",
                        "$INCLUDE_PIPELINE$": {"template": "common", "pipeline": "loop"},
                    },
                }
            }
        )
    )
    (tmp_path / "super_etl").mkdir()
    (tmp_path / "super_etl" / "combo.yml").write_text(
        yaml.safe_dump(
            {
                "$ETL$": {
                    "plots": {
                        "experiments": {"s": "*"},
                        "extractors": {"IgnoreExtractor": {}},
                        "loaders": {"PickleSummaryLoader": {}},
                    }
                }
            }
        )
    )
    return tmp_path


def test_include_pipeline_from_template_with_vars(config_dir):
    expanded = expand(
        {
            "p": {
                "experiments": ["b"],
                "$ETL_VARS$": {"metric": "lat"},
                "$INCLUDE_PIPELINE$": {"template": "common.yml", "pipeline": "base"},
            }
        },
        config_dir=config_dir,
    )
    assert expanded["p"]["experiments"] == ["b"]
    assert list(expanded["p"]["extractors"]) == ["CsvExtractor", "ErrorExtractor"]
    assert [item["data_columns"] for item in expanded["p"]["transformers"]] == [["lat"]]


def test_include_steps_from_suite_design_and_super_etl_config(config_dir):
    designs = {
        "other": {
            "exp": {},
            "$ETL$": {
                "q": {
                    "experiments": "*",
                    "extractors": {"JsonExtractor": {}},
                    "transformers": [{"df.sort_values": {"by": ["x"]}}],
                    "loaders": {"LatexTableLoader": {}},
                }
            },
        }
    }
    source = {"suite": "other", "pipeline": "q"}
    expanded = expand(
        {
            "p": {
                "experiments": "*",
                "extractors": {"$INCLUDE_STEPS$": [source], "IgnoreExtractor": {}},
                "transformers": [{"$INCLUDE_STEPS$": source}, {"df.head": {"n": 1}}],
                "loaders": {"$INCLUDE_STEPS$": [{"config": "combo", "pipeline": "plots"}]},
            }
        },
        config_dir=config_dir,
        design_loader=designs.__getitem__,
    )
    p = expanded["p"]
    assert list(p["extractors"]) == ["JsonExtractor", "IgnoreExtractor"]
    assert p["transformers"] == [{"df.sort_values": {"by": ["x"]}}, {"df.head": {"n": 1}}]
    assert p["loaders"] == {"PickleSummaryLoader": {"skip_empty": False}}


def test_include_cycle_and_undefined_var_are_errors(config_dir):
    with pytest.raises(EtlConfigError, match="include cycle"):
        expand(
            {"p": {"experiments": "*", "$INCLUDE_PIPELINE$": {"template": "common", "pipeline": "loop"}}},
            config_dir=config_dir,
        )
    with pytest.raises(EtlConfigError, match="metric"):
        expand(
            {"p": {"experiments": "*", "$INCLUDE_PIPELINE$": {"template": "common", "pipeline": "base"}}},
            config_dir=config_dir,
        )


def test_input_section_is_not_mutated(config_dir):
    section = {
        "p": {
            "experiments": "*",
            "$ETL_VARS$": {"metric": "lat"},
            "$INCLUDE_PIPELINE$": {"template": "common", "pipeline": "base"},
        }
    }
    before = yaml.safe_dump(section)
    expand(section, config_dir=config_dir)
    assert yaml.safe_dump(section) == before


def test_dataframe_methods_known_up_front_exist_in_the_installed_pandas():
    from etl.steps.transformers import KNOWN_DATAFRAME_METHODS, dataframe_method_names, is_dataframe_method

    assert KNOWN_DATAFRAME_METHODS <= dataframe_method_names()
    assert is_dataframe_method("sort_values") and not is_dataframe_method("nope")
    assert not is_dataframe_method("_constructor")
