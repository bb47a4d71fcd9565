"""What a fresh `doe` process imports for the ETL: validating step options and a re-run with nothing new need
no pandas (about a second of start-up)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO_ROOT
from tests.unit.etl.conftest import RUN_CONFIGS, STEPS, design, job_files
from tests.unit.etl.tree import age_tree, write_suite

ALL_STEP_KINDS = {
    "p": {
        "experiments": "*",
        "extractors": {**STEPS, "RuntimeInfoExtractor": {}},
        "transformers": [
            {"name": "RepAggTransformer", "data_columns": ["lat"]},
            {"name": "ConfidenceIntervalTransformer", "data_columns": ["lat_mean"]},
            {"df.sort_values": {"by": ["lat_mean"]}},
        ],
        "loaders": {"CsvSummaryLoader": {}, "ParquetLoader": {}, "FactorPlotLoader": {"y": "lat_mean"}},
    }
}


def fresh_python(code: str, *args: str) -> list[str]:
    """Run `code` in a new interpreter; returns the heavy modules it imported."""
    heavy = "('pandas', 'numpy', 'matplotlib', 'pyarrow')"
    probe = f"{code}\nimport json\nprint(json.dumps([m for m in {heavy} if m in sys.modules]))"
    command = [sys.executable, "-c", probe, *args]
    done = subprocess.run(command, check=False, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_expanding_and_validating_an_etl_section_imports_no_pandas():
    code = (
        "import sys, json\nfrom etl.design_section import expand_etl_section\n"
        "expanded = expand_etl_section(json.loads(sys.argv[1]), ['alpha'], config_dir=None)\n"
        "assert expanded['p']['transformers'][2] == {'df.sort_values': {'by': ['lat_mean']}}"
    )
    assert fresh_python(code, json.dumps(ALL_STEP_KINDS)) == []


def test_an_unknown_dataframe_method_is_still_an_error_in_a_fresh_process():
    code = (
        "import sys\nfrom etl.design_section import expand_etl_section\nfrom etl.errors import EtlConfigError\n"
        "section = {'p': {'experiments': '*', 'extractors': {'CsvExtractor': {}}, 'transformers': [{'df.nope': {}}]}}\n"
        "try:\n    expand_etl_section(section, ['alpha'], config_dir=None)\n"
        "except EtlConfigError as error:\n    assert 'DataFrame method' in str(error)\n"
        "else:\n    raise SystemExit('accepted df.nope')"
    )
    assert "pandas" in fresh_python(code)  # a name not known up front is looked up in the installed pandas


def test_a_rerun_with_nothing_new_imports_no_pandas(tmp_path):
    pipelines = {"p": {"experiments": "*", "extractors": STEPS, "loaders": {"CsvSummaryLoader": {}}}}
    suite_dir = write_suite(tmp_path, "demo", 1700000000, design(pipelines), RUN_CONFIGS, job_files)
    age_tree(suite_dir)
    code = (
        "import sys\nfrom etl.api import run_suite_etl\nreport = run_suite_etl(sys.argv[1])\n"
        "assert report.ok and report.outcomes[0].rows == 12, report.lines()"
    )
    assert "pandas" in fresh_python(code, str(suite_dir))
    assert fresh_python(code, str(suite_dir)) == []


def test_validating_a_column_cross_plot_loader_imports_no_pandas():
    loader = {
        "metrics": {"time": {"value_cols": "lat_mean", "unit_label": "ms"}},
        "cum_subplot_config": [{"chart": {"bar_foreach": {"cols": ["system"]}}}],
    }
    section = {"p": {"experiments": "*", "extractors": STEPS, "loaders": {"ColumnCrossPlotLoader": loader}}}
    code = (
        "import sys, json\nfrom etl.design_section import expand_etl_section\n"
        "expand_etl_section(json.loads(sys.argv[1]), ['alpha'], config_dir=None)"
    )
    assert fresh_python(code, json.dumps(section)) == []
