"""Custom steps from the config dir's does_etl_custom package: lazy discovery, registration by class name,
errors."""

from __future__ import annotations

import textwrap

import pandas as pd
import pytest

from etl.api import run_suite_etl
from etl.design_section import expand_etl_section
from etl.errors import EtlConfigError
from etl.registry import load_registry
from tests.unit.etl.conftest import STEPS, job_files

STEPS_MODULE = """
from pathlib import Path

from etl.steps.base import Extractor, Loader, Transformer
from etl.steps.extractors import CsvExtractor  # importing a built-in step is no duplicate


class WordCountExtractor(Extractor):
    file_regex: list[str] = [r".*\\.txt$"]

    def extract(self, path, options):
        words = len(Path(path).read_text().split())
        return [{"words": words, "threads_seen": options["$config_flat$"].get("threads")}]


class DoubleTransformer(Transformer):
    column: str

    def transform(self, df, options):
        df[self.column + "_x2"] = df[self.column] * 2  # mutates: the runner must hand it a copy
        return df


class RowCountLoader(Loader):
    def load(self, df, options, etl_info):
        (self.get_output_dir(etl_info) / "rows.txt").write_text(f"{etl_info['suite']} {len(df)}")
"""


def write_package(config_dir, modules: dict[str, str], init_files: bool = True) -> None:
    package = config_dir / "does_etl_custom"
    (package / "etl").mkdir(parents=True)
    (config_dir / "designs").mkdir(exist_ok=True)
    if init_files:
        (package / "__init__.py").write_text("")
        (package / "etl" / "__init__.py").write_text("")
    for name, text in modules.items():
        (package / "etl" / f"{name}.py").write_text(textwrap.dedent(text))


def test_a_package_without_init_files_is_found_as_python_imports_it(tmp_path):
    # A checkout that lost the empty __init__.py files: Python 3 imports namespace packages all the same.
    config_dir = tmp_path / "config"
    write_package(config_dir, {"steps": STEPS_MODULE}, init_files=False)
    (config_dir / "does_etl_custom" / "__pycache__").mkdir()
    registry = load_registry(config_dir)
    assert {"WordCountExtractor"} <= set(registry.names("extractor"))
    assert "DoubleTransformer" in registry.names("transformer")


def test_custom_steps_are_discovered_and_run(make_suite, tmp_path):
    config_dir = tmp_path / "config"
    write_package(config_dir, {"steps": STEPS_MODULE})
    registry = load_registry(config_dir)
    assert {"WordCountExtractor", "CsvExtractor"} <= set(registry.names("extractor"))
    assert "Extractor" not in registry.names("extractor")  # abstract bases are not steps

    def files(*args):
        return {**job_files(*args), "notes.txt": "three little words"}

    pipeline = {
        "experiments": ["beta"],
        "extractors": {**STEPS, "WordCountExtractor": {}},
        "transformers": [{"name": "DoubleTransformer", "column": "words"}],
        "loaders": {"RowCountLoader": {}, "CsvSummaryLoader": {}},
    }
    expanded = expand_etl_section({"p": pipeline}, ["alpha", "beta"], config_dir=config_dir)
    assert expanded["p"]["extractors"]["WordCountExtractor"] == {"file_regex": [r".*\.txt$"]}
    suite_dir = make_suite({"p": pipeline}, files=files)
    report = run_suite_etl(suite_dir, config_dir=config_dir)
    assert report.ok, report.lines()
    out = suite_dir / "etl_results" / "p"
    assert (out / "rows.txt").read_text() == "demo 6"
    frame = pd.read_csv(out / "p.csv", index_col=0)
    words = frame[frame["source_file"] == "notes.txt"]
    assert list(words["words_x2"]) == [6, 6] and list(words["threads_seen"]) == [4, 4]


def test_a_duplicate_step_name_is_an_error_naming_both(tmp_path):
    other = (
        "from etl.steps.base import Transformer\n\n\nclass DoubleTransformer(Transformer):\n"
        "    def transform(self, df, options):\n        return df\n"
    )
    write_package(tmp_path, {"steps": STEPS_MODULE, "more": other})
    registry = load_registry(tmp_path)
    assert registry.step("RowCountLoader", "loader").__name__ == "RowCountLoader"
    with pytest.raises(EtlConfigError, match="DoubleTransformer is defined twice") as info:
        registry.step("DoubleTransformer", "transformer")
    assert "does_etl_custom.etl.more.DoubleTransformer" in str(info.value)
    assert "does_etl_custom.etl.steps.DoubleTransformer" in str(info.value)


def test_a_custom_step_shadowing_a_builtin_name_is_an_error(tmp_path):
    shadow = (
        "from etl.steps.base import Loader\n\n\nclass CsvSummaryLoader(Loader):\n"
        "    def load(self, df, options, etl_info):\n        pass\n"
    )
    write_package(tmp_path, {"shadow": shadow})
    with pytest.raises(EtlConfigError, match="CsvSummaryLoader is defined twice: etl.steps.loaders"):
        load_registry(tmp_path).step("CsvSummaryLoader", "loader")




def test_bad_custom_step_options_name_pipeline_and_step(tmp_path):
    write_package(tmp_path, {"steps": STEPS_MODULE})
    section = {
        "p": {
            "experiments": "*",
            "extractors": {"CsvExtractor": {}},
            "transformers": [{"name": "DoubleTransformer", "colum": "x"}],
        }
    }
    with pytest.raises(
        EtlConfigError, match="DoubleTransformer: column: Field required; colum: Extra inputs"
    ) as info:
        expand_etl_section(section, ["a"], config_dir=tmp_path)
    assert info.value.path == "$ETL$.p.transformers[0]"


def test_custom_extractors_even_subclasses_of_builtins_are_never_cached(make_suite, tmp_path):
    from tests.unit.etl.tree import age_tree

    subclass = (
        "from etl.steps.extractors import CsvExtractor\n\n\nclass MyCsvExtractor(CsvExtractor):\n    pass\n"
    )
    write_package(tmp_path / "config", {"mine": subclass})
    steps = {"MyCsvExtractor": {}, "ErrorExtractor": {}, "IgnoreExtractor": {}}
    suite_dir = make_suite({"p": {"experiments": ["beta"], "extractors": steps}})
    age_tree(suite_dir)
    for _ in range(2):
        outcome = run_suite_etl(suite_dir, config_dir=tmp_path / "config").by_pipeline()["p"]
        assert (outcome.status, outcome.jobs, outcome.jobs_read) == ("ok", 2, 2)


DOESPY_STYLE = """
from typing import Dict, List

from doespy.etl.steps.extractors import Extractor
from doespy.etl.steps.loaders import PlotLoader


class LineCountExtractor(Extractor):
    file_regex: List[str] = [r".*\\.txt$"]

    def extract(self, path: str, options: Dict) -> List[Dict]:
        with open(path) as handle:
            return [{"lines": len(handle.readlines())}]


class TablePlotLoader(PlotLoader):
    def load(self, df, options, etl_info):
        self.save_data(df[["run", "lines"]], "lines", self.get_output_dir(etl_info))
"""


def test_doe_suite_style_imports_from_doespy_work(make_suite, tmp_path):
    write_package(tmp_path / "config", {"legacy": DOESPY_STYLE})

    def files(*args):
        return {**job_files(*args), "notes.txt": "a\nb\n"}

    steps = {**STEPS, "LineCountExtractor": {}}
    suite_dir = make_suite(
        {"p": {"experiments": ["beta"], "extractors": steps, "loaders": {"TablePlotLoader": {}}}}, files=files
    )
    report = run_suite_etl(suite_dir, config_dir=tmp_path / "config")
    assert report.ok, report.lines()
    assert "<td>2.0</td>" in (suite_dir / "etl_results" / "p" / "lines.html").read_text()


BROKEN_MODULE = """
from doespy.etl.etl_base import Whatever  # a doespy module doe does not offer
from etl.steps.base import Loader


class HeatmapLoader(Loader):
    def load(self, df, options, etl_info):
        pass
"""


def test_a_module_that_cannot_be_imported_fails_only_the_pipelines_naming_its_steps(make_suite, tmp_path):
    write_package(tmp_path / "config", {"steps": STEPS_MODULE, "broken": BROKEN_MODULE})
    good = {"experiments": ["beta"], "extractors": STEPS, "loaders": {"RowCountLoader": {}}}
    heat = {"experiments": ["beta"], "extractors": STEPS, "loaders": {"HeatmapLoader": {}}}
    typo = {"experiments": ["beta"], "extractors": STEPS, "loaders": {"HeatmapLoadr": {}}}
    suite_dir = make_suite({"good": good, "heat": heat, "typo": typo})
    outcomes = run_suite_etl(suite_dir, config_dir=tmp_path / "config").by_pipeline()
    assert outcomes["good"].status == "ok"
    assert (suite_dir / "etl_results" / "good" / "rows.txt").read_text() == "demo 4"
    assert outcomes["heat"].status == "error"
    assert outcomes["heat"].message == (
        "$ETL$.heat.loaders.HeatmapLoader: step HeatmapLoader is defined in custom ETL module "
        "does_etl_custom.etl.broken, which cannot be imported: ModuleNotFoundError: "
        "No module named 'doespy.etl.etl_base'"
    )
    assert outcomes["typo"].status == "error"
    assert "unknown loader HeatmapLoadr; known: " in outcomes["typo"].message
    assert "RowCountLoader" in outcomes["typo"].message
    assert outcomes["typo"].message.endswith(
        "custom ETL modules that cannot be imported: does_etl_custom.etl.broken "
        "(ModuleNotFoundError: No module named 'doespy.etl.etl_base')"
    )


def test_a_missing_package_is_named_with_how_to_install_it(tmp_path):
    config_dir = tmp_path / "doe-suite-config"
    loader = BROKEN_MODULE.split("\n", 2)[2]  # without its doespy import
    needs = "import pdf2image_is_not_installed\nimport tqdm_is_not_installed\n" + loader
    write_package(config_dir, {"plots": needs})
    (config_dir / "pyproject.toml").write_text(
        '[tool.poetry.dependencies]\npython = "^3.11"\npdf2image-is-not-installed = "^1.16"\n'
    )
    with pytest.raises(EtlConfigError) as info:
        load_registry(config_dir).step("HeatmapLoader", "loader")
    assert str(info.value).endswith(
        "does_etl_custom.etl.plots, which cannot be imported: it needs package pdf2image_is_not_installed "
        "(ModuleNotFoundError: No module named 'pdf2image_is_not_installed'): "
        f"run make install with DOES_PROJECT_DIR={tmp_path}"
    )
    (config_dir / "does_etl_custom" / "etl" / "plots.py").write_text(needs.split("\n", 1)[1])
    load_registry.__globals__["_CACHE"].clear()
    with pytest.raises(EtlConfigError, match="add it to \\[tool.poetry.dependencies\\] of .*pyproject.toml"):
        load_registry(config_dir).step("HeatmapLoader", "loader")


def test_suite_design_lists_a_custom_steps_own_fields_with_defaults(tmp_path):
    module = """
from typing import Optional

from doespy.etl.steps.extractors import CsvExtractor
from doespy.etl.steps.loaders import PlotLoader
from doespy.etl.steps.transformers import Transformer


class SemicolonExtractor(CsvExtractor):
    file_regex: list = [r".*\\.scsv$"]
    delimiter: str = ";"
    unit: str = "ms"

    def extract(self, path, options):
        return []


class ShiftTransformer(Transformer):
    column: str
    offset: int = 1
    label: Optional[str] = None

    def transform(self, df, options):
        return df


class BarLoader(PlotLoader):
    widths: dict = {"bar": 0.5}

    def load(self, df, options, etl_info):
        pass
"""
    write_package(tmp_path / "config", {"mine": module})
    pipeline = {
        "experiments": "*",
        "extractors": {"SemicolonExtractor": {}},
        "transformers": [{"name": "ShiftTransformer", "column": "lat"}],
        "loaders": {"BarLoader": {}},
    }
    expanded = expand_etl_section({"p": pipeline}, ["alpha"], config_dir=tmp_path / "config")["p"]
    extractor = expanded["extractors"]["SemicolonExtractor"]
    assert list(extractor.items()) == [
        ("file_regex", [r".*\.scsv$"]),
        ("delimiter", ";"),
        ("has_header", True),
        ("unit", "ms"),
    ]
    assert list(expanded["transformers"][0].items()) == [("name", "ShiftTransformer"), ("column", "lat"), ("offset", 1)]
    assert expanded["loaders"] == {"BarLoader": {"widths": {"bar": 0.5}}}


def test_old_pydantic_style_steps_work_without_deprecation_noise(make_suite, tmp_path, recwarn):
    old_style = """
from typing import List

from pydantic import validator

from doespy.etl.steps.transformers import Transformer


class ScaleTransformer(Transformer):
    columns: List[str]
    factor: float = 1.0

    class Config:
        extra = "forbid"

    @validator("columns", pre=True)
    def one_or_more(cls, value):
        return [value] if isinstance(value, str) else value

    def transform(self, df, options):
        return df.assign(**{c + "_scaled": df[c] * self.factor for c in self.columns})
"""
    write_package(tmp_path / "config", {"old": old_style})
    pipeline = {
        "experiments": ["beta"],
        "extractors": STEPS,
        "transformers": [{"name": "ScaleTransformer", "columns": "lat", "factor": 2}],
        "loaders": {"CsvSummaryLoader": {}},
    }
    expanded = expand_etl_section({"p": pipeline}, ["alpha", "beta"], config_dir=tmp_path / "config")
    # as doe-suite's suite_design.yml: the step's fields with their defaults
    assert expanded["p"]["transformers"] == [{"name": "ScaleTransformer", "columns": "lat", "factor": 2}]
    assert not [w for w in recwarn if "deprecated" in str(w.message).lower()]
    suite_dir = make_suite({"p": pipeline})
    report = run_suite_etl(suite_dir, config_dir=tmp_path / "config")
    assert report.ok, report.lines()
    frame = pd.read_csv(suite_dir / "etl_results" / "p" / "p.csv", index_col=0)
    assert list(frame["lat_scaled"]) == list(frame["lat"] * 2)
