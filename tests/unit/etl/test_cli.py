"""The etl commands, in process: exit codes, one-line errors, outputs in place."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from typer.testing import CliRunner

from doe_cli.config import TOOL_ROOT
from doe_cli.main import app
from tests.unit.etl.conftest import STEPS


def invoke(tmp_path, *args):
    (tmp_path / "config" / "designs").mkdir(parents=True, exist_ok=True)
    options = ["--config-dir", str(tmp_path / "config"), "--results-dir", str(tmp_path / "results")]
    return CliRunner().invoke(app, [*options, *args])


def test_etl_runs_selected_pipelines_and_reports_per_pipeline(make_suite, tmp_path):
    loaders = {"CsvSummaryLoader": {}}
    suite_dir = make_suite(
        {
            "p": {"experiments": ["beta"], "extractors": STEPS, "loaders": loaders},
            "q": {"experiments": ["beta"], "extractors": STEPS, "loaders": loaders},
        }
    )
    result = invoke(tmp_path, "etl", "--suite", "demo", "--id", "last", "--pipelines", "q")
    assert result.exit_code == 0, result.output
    assert "q: ok, 4 rows from 2 jobs" in result.output
    assert "note:" not in result.output  # no designs/demo.yml to compare the stored $ETL$ with
    assert (suite_dir / "etl_results" / "q" / "q.csv").is_file()
    assert not (suite_dir / "etl_results" / "p").exists()

    result = invoke(tmp_path, "etl-clean", "--suite", "demo")
    assert result.exit_code == 0 and not (suite_dir / "etl_results" / "q").exists()


def test_etl_clean_all_removes_the_etl_results_of_every_suite(make_suite, tmp_path):
    pipelines = {"p": {"experiments": ["beta"], "extractors": STEPS, "loaders": {"CsvSummaryLoader": {}}}}
    suite_dirs = [make_suite(pipelines, suite="demo"), make_suite(pipelines, suite="other")]
    assert invoke(tmp_path, "etl-all").exit_code == 0
    assert all((suite_dir / "etl_results" / "p" / "p.csv").is_file() for suite_dir in suite_dirs)
    result = invoke(tmp_path, "etl-clean", "--all")
    assert result.exit_code == 0, result.output
    assert not any((suite_dir / "etl_results" / "p").exists() for suite_dir in suite_dirs)
    for wrong in (["etl-clean"], ["etl-clean", "--all", "--suite", "demo"]):
        refused = invoke(tmp_path, *wrong)
        assert refused.exit_code == 2 and refused.stderr.strip() == "error: expected --suite S [--id ID] or --all"


def test_etl_exit_codes(make_suite, tmp_path):
    make_suite({"p": {"experiments": ["beta"], "extractors": {"CsvExtractor": {}}}})
    failed = invoke(tmp_path, "etl", "--suite", "demo")
    assert failed.exit_code == 1
    assert "no extractor matches" in failed.output and "Traceback" not in failed.output
    unknown = invoke(tmp_path, "etl", "--suite", "demo", "--pipelines", "zz")
    assert unknown.exit_code == 2 and "unknown pipelines ['zz']" in unknown.output
    missing = invoke(tmp_path, "etl", "--suite", "nosuch")
    assert missing.exit_code == 2 and "no results for suite 'nosuch'" in missing.output


def test_etl_all_runs_every_suite_folder(make_suite, tmp_path):
    pipelines = {"p": {"experiments": ["beta"], "extractors": STEPS, "loaders": {"CsvSummaryLoader": {}}}}
    first, second = make_suite(pipelines, suite_id=1), make_suite(pipelines, suite="other", suite_id=2)
    result = invoke(tmp_path, "etl-all")
    assert result.exit_code == 0, result.output
    for suite_dir in (first, second):
        assert (suite_dir / "etl_results" / "p" / "p.csv").is_file()


def stored_run(config_dir: Path, results: Path, suite: str = "example07-etl") -> Path:
    """A result folder as `doe run` leaves it: suite_design.yml and config.json written by the design engine."""
    from doe_cli.config import discover
    from doe_cli.design import load_suite

    loaded = load_suite(discover(config_dir, results), suite, strict=False)
    suite_dir = results / f"{suite}_1700000000"
    suite_dir.mkdir(parents=True)
    loaded.write_resolved(suite_dir / "suite_design.yml")
    for exp, run_configs in loaded.extend(None).items():
        for run, run_config in enumerate(run_configs):
            rep_dir = suite_dir / exp / f"run_{run}" / "rep_0"
            host_dir = rep_dir / "small" / "host_0"
            host_dir.mkdir(parents=True)
            (rep_dir / "config.json").write_text(json.dumps(run_config, indent=4, sort_keys=True))
            (host_dir / "metrics.json").write_text(json.dumps({"latency_ms": 1.0 + run, "total": 5}))
            (host_dir / "stdout.log").write_text("")
            (host_dir / "stderr.log").write_text("")
            (host_dir / ".doe_runtime_info.yaml").write_text("wall_seconds: 0.5\nmax_rss_kb: 100\nexit_code: 0\n")
    return suite_dir


def test_etl_on_a_tree_from_the_design_engine_stored_and_from_design(tmp_path):
    """example07-etl with its pipelines as shipped."""
    results = tmp_path / "results"
    suite_dir = stored_run(TOOL_ROOT, results)
    options = ["--config-dir", str(TOOL_ROOT), "--results-dir", str(results)]
    for extra in ([], ["--from-design"]):
        result = CliRunner().invoke(app, [*options, "etl", "--suite", "example07-etl", *extra])
        assert result.exit_code == 0, result.output
        assert "timing: ok, 2 rows from 2 jobs" in result.output
        assert "note:" not in result.output  # the design is the stored one
    frame = (suite_dir / "etl_results" / "timing" / "timing.csv").read_text()
    assert "latency_ms_mean" in frame and "runtime.wall_seconds_mean" in frame
    plot = (suite_dir / "etl_results" / "timing" / "timing_bar_latency_ms.html").read_text()
    assert "<th>n</th>" in plot and plot.count("<tr") == 1 + 2  # a bar per level of the factor n


def test_an_edited_etl_section_is_noted_with_how_to_run_it(tmp_path):
    config, results = tmp_path / "config", tmp_path / "results"
    shutil.copytree(TOOL_ROOT / "group_vars", config / "group_vars")
    (config / "designs").mkdir()
    shipped = (TOOL_ROOT / "designs" / "example07-etl.yml").read_text()
    (config / "designs" / "example07-etl.yml").write_text(shipped)
    suite_dir = stored_run(config, results)
    edited = shipped.replace("data_columns: [latency_ms]", "data_columns: [latency_ms, total]")
    assert edited != shipped
    (config / "designs" / "example07-etl.yml").write_text(edited)
    options = ["--config-dir", str(config), "--results-dir", str(results)]

    stored = CliRunner().invoke(app, [*options, "etl", "--suite", "example07-etl"])
    assert stored.exit_code == 0, stored.output
    notes = [line for line in stored.output.splitlines() if line.startswith("note:")]
    assert notes == [
        (
            "note: the $ETL$ of example07-etl.yml differs from the one stored with example07-etl_1700000000, "
            "which this ETL runs; for the edited one: doe etl --suite example07-etl --id 1700000000 "
            "--from-design (make etl suite=example07-etl id=1700000000 from_design=1)"
        )
    ]
    assert "total_mean" not in (suite_dir / "etl_results" / "timing" / "timing.csv").read_text()

    edited_run = CliRunner().invoke(app, [*options, "etl", "--suite", "example07-etl", "--from-design"])
    assert edited_run.exit_code == 0 and "note:" not in edited_run.output
    assert "total_mean" in (suite_dir / "etl_results" / "timing" / "timing.csv").read_text()


def test_make_etl_passes_from_design():
    dry = subprocess.run(["make", "-n", "etl", "suite=s", "id=3", "from_design=1"], cwd=TOOL_ROOT,
                         capture_output=True, text=True, check=True)
    assert 'etl --suite "s" --id "3"' in dry.stdout and "--from-design" in dry.stdout


def test_space_separated_words_after_pipelines_and_suite_id(make_suite, tmp_path):
    import yaml

    loaders = {"CsvSummaryLoader": {}}
    pipelines = {name: {"experiments": ["beta"], "extractors": STEPS, "loaders": loaders} for name in "pqr"}
    suite_dir = make_suite(pipelines, suite_id=2)
    result = invoke(tmp_path, "etl", "--suite", "demo", "--pipelines", "p", "q")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (suite_dir / "etl_results").iterdir() if not p.name.startswith(".")) == [
        "p",
        "q",
    ]
    stray = invoke(tmp_path, "etl", "--suite", "demo", "p")
    assert stray.exit_code == 2 and "did you mean --pipelines p" in stray.output

    (tmp_path / "config" / "super_etl").mkdir(parents=True)
    config = {
        "$SUITE_ID$": {"demo": 1},
        "$ETL$": {"p": {"experiments": {"demo": ["beta"]}, "extractors": STEPS, "loaders": loaders}},
    }
    (tmp_path / "config" / "super_etl" / "combo.yml").write_text(yaml.safe_dump(config))
    out = tmp_path / "out"
    result = invoke(
        tmp_path,
        "etl-super",
        "--config",
        "combo",
        "--out",
        str(out),
        "--suite-id",
        "demo=2",
        "--no-config-level",
        "--pipelines",
        "p",
    )
    assert result.exit_code == 0, result.output
    assert (out / "p" / "p.csv").is_file()


def test_etl_super_writes_to_does_superetl_out_without_out(make_suite, tmp_path, monkeypatch):
    import yaml

    loaders = {"CsvSummaryLoader": {}}
    make_suite({"p": {"experiments": ["beta"], "extractors": STEPS, "loaders": loaders}}, suite_id=1)
    (tmp_path / "config" / "super_etl").mkdir(parents=True)
    config = {"$SUITE_ID$": {"demo": 1},
              "$ETL$": {"p": {"experiments": {"demo": ["beta"]}, "extractors": STEPS, "loaders": loaders}}}
    (tmp_path / "config" / "super_etl" / "combo.yml").write_text(yaml.safe_dump(config))
    monkeypatch.setenv("DOES_SUPERETL_OUT", str(tmp_path / "super"))
    result = invoke(tmp_path, "etl-super", "--config", "combo", "--no-config-level")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "super" / "p" / "p.csv").is_file()


def test_etl_all_goes_on_after_a_suite_with_a_broken_design(make_suite, tmp_path):
    pipelines = {"p": {"experiments": ["beta"], "extractors": STEPS, "loaders": {"CsvSummaryLoader": {}}}}
    broken, good = make_suite(pipelines, suite="broken", suite_id=1), make_suite(pipelines, suite_id=2)
    (broken / "suite_design.yml").write_text("{not: [valid")
    result = invoke(tmp_path, "etl-all")
    assert result.exit_code == 1
    assert "broken_1" in result.output and "not valid YAML" in result.output
    assert (good / "etl_results" / "p" / "p.csv").is_file()


def test_every_file_name_matching_no_extractor_is_named_at_once(make_suite, tmp_path):
    def files(exp, run, rep, host_type, idx):
        return {"results.csv": "lat\n1\n", "notes.txt": "x", "stdout.log": "", **{f"trace_{i}.bin": "" for i in range(7)}}

    make_suite({"p": {"experiments": ["alpha"], "extractors": {"CsvExtractor": {}}}}, files=files)
    result = invoke(tmp_path, "etl", "--suite", "demo")
    assert result.exit_code == 1
    line = next(line for line in result.output.splitlines() if "no extractor matches" in line)
    assert "no extractor matches these file names: notes.txt (4 files, e.g. alpha/run_0/rep_0/client/host_0/notes.txt)" in line
    assert "stdout.log (4 files" in line
    assert "trace_<n>.bin (7 names: trace_0.bin, trace_1.bin, trace_2.bin, trace_3.bin, trace_4.bin, ...; 28 files" in line
    assert "candidates: CsvExtractor" in line
    assert r"IgnoreExtractor with file_regex ['^notes\\.txt$', '^stdout\\.log$', '^trace_\\d+\\.bin$']" in line
