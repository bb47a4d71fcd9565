"""ColumnCrossPlotLoader on a doe-suite-style project (tests/projects/doe_suite_project): figures checked on
the drawn matplotlib objects, files by name; custom modules that cannot be imported fail only their steps."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from doe_cli.main import app
from etl.api import run_suite_etl
from etl.registry import load_registry
from etl.super_etl import run_super_etl
from tests.unit.etl.tree import csv_text, write_suite

PROJECT = Path(__file__).parents[2] / "projects" / "doe_suite_project" / "doe-suite-config"
SUITE_ID = 1700000000
LAT = {("A", "read"): 1000, ("A", "write"): 3000, ("B", "read"): 2000, ("B", "write"): 5000}


@pytest.fixture
def project(tmp_path) -> Path:
    """A copy of the fixture project's config dir, as `<tmp>/doe-suite-config`."""
    return Path(shutil.copytree(PROJECT, tmp_path / "doe-suite-config"))


def design() -> dict:
    return yaml.safe_load((PROJECT / "designs" / "figures.yml").read_text())


def run_configs() -> list[dict]:
    cmd = {"node": [{"main": "bench"}]}
    return [
        {"system": s, "workload": w, "threads": t, "$CMD$": cmd}
        for s in ("A", "B")
        for w in ("read", "write")
        for t in (1, 2)
    ]


def job_files(exp, run, rep, host_type, idx):
    config = run_configs()[run]
    lat = LAT[config["system"], config["workload"]] * config["threads"] + 100 * rep
    return {"results.csv": csv_text(["lat", "mem"], [[lat, 10 * config["threads"]]]), "stdout.log": "ok\n"}


def suite(tmp_path: Path, pipelines: dict | None = None) -> Path:
    document = design()
    if pipelines is not None:
        document["$ETL$"] = pipelines
    return write_suite(
        tmp_path / "doe-suite-results", "figures", SUITE_ID, document, {"bench": run_configs()}, job_files
    )


def options(pipeline: str, loader: str) -> dict:
    return design()["$ETL$"][pipeline]["loaders"][loader]


def aggregated() -> pd.DataFrame:
    """What RepAggTransformer gives the loaders: lat/mem means and std per run."""
    rows = []
    for config in run_configs():
        lat = LAT[config["system"], config["workload"]] * config["threads"]
        rows.append(
            {
                **{k: v for k, v in config.items() if k != "$CMD$"},
                "lat_mean": lat + 50.0,
                "lat_std": 70.0,
                "mem_mean": 10.0 * config["threads"],
            }
        )
    return pd.DataFrame(rows)


def test_the_project_figures_are_written_under_doe_suite_names(project, tmp_path):
    suite_dir = suite(tmp_path)
    report = run_suite_etl(suite_dir, config_dir=project)
    assert report.ok, report.lines()
    out = suite_dir / "etl_results"
    expected = {
        "bars": ["$metrics$=time", "$metrics$=memory"],
        "stacked": ["workload=read_$metrics$=parts", "workload=write_$metrics$=parts"],
        "spread": ["$metrics$=latency"],
    }
    for pipeline, names in expected.items():
        assert sorted(p.name for p in (out / pipeline).iterdir()) == sorted(
            f"{name}.{ext}" for name in names for ext in ("html", "pdf")
        )
        for name in names:
            assert (out / pipeline / f"{name}.pdf").read_bytes().startswith(b"%PDF")
            table = (out / pipeline / f"{name}.html").read_text()
            assert table.count("<tr>") > 1 and "<th>system</th>" in table


def test_bars_show_scaled_metrics_errors_labels_colors_and_legend():
    loader = load_registry(None).step("ColumnCrossPlotLoader", "loader")(
        **options("bars", "ColumnCrossPlotLoader")
    )
    figures = {plot_id["$metrics$"]: fig for plot_id, _rows, fig in loader.plot(aggregated())}
    assert list(figures) == ["time", "memory"]
    fig = figures["time"]
    reads, writes = fig.axes
    assert (reads.get_title(), writes.get_title()) == ("reads", "write")
    assert reads.get_ylabel() == "time [sec]"
    assert figures["memory"].axes[0].get_ylabel() == "memory [MB]"
    bars = [patch for container in reads.containers if hasattr(container, "patches") for patch in container]
    # groups by threads, then systems in the filter's order (B before A); values in seconds
    assert [round(bar.get_height(), 3) for bar in bars] == [2.05, 1.05, 4.05, 2.05]
    assert [bar.get_facecolor()[:3] for bar in bars[:2]] == [
        (1.0, 0.4980392156862745, 0.054901960784313725),
        (0.12156862745098039, 0.4666666666666667, 0.7058823529411765),
    ]
    assert [bar.get_hatch() for bar in bars[:2]] == [None, "//"]
    errors = [c for c in reads.containers if type(c).__name__ == "ErrorbarContainer"]
    assert len(errors) == 4
    segment = errors[0].lines[2][0].get_segments()[0]
    assert round(segment[1][1] - segment[0][1], 3) == 0.14  # 2 x 70 ms
    assert [t.get_text() for t in reads.get_xticklabels()] == ["1 threads", "2 threads"]
    assert [t.get_text() for t in reads.get_xticklabels(minor=True)] == ["System B", "System A"] * 2
    assert reads.get_ylim()[0] == 0
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["System B", "System A"]


def test_a_subclass_with_its_own_field_and_hooks_draws_stacked_parts(project):
    cls = load_registry(project).step("WatermarkPlotLoader", "loader")
    loader = cls(**options("stacked", "WatermarkPlotLoader"))
    frame = aggregated().query("threads == 1")
    (read_id, _rows, read), (write_id, _, _write) = loader.plot(frame)
    assert (read_id, write_id) == (
        {"workload": "read", "$metrics$": "parts"},
        {"workload": "write", "$metrics$": "parts"},
    )
    (ax,) = read.axes
    bars = [patch for container in ax.containers for patch in container]
    # one bar per system, two parts each: latency at the bottom, memory stacked on it
    assert [(bar.get_y(), bar.get_height()) for bar in bars] == [(0, 1050), (1050, 10), (0, 2050), (2050, 10)]
    assert [bar.get_hatch() for bar in bars] == [None, "xx", None, "xx"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["lat_mean", "mem_mean"]
    assert ax.yaxis.get_gridlines()[0].get_visible()  # the project's hook
    assert [text.get_text() for text in read.texts] == ["DRAFT"]  # the project's field, by its FigPost hook


def test_box_charts_draw_one_box_per_system_and_workload():
    loader = load_registry(None).step("ColumnCrossPlotLoader", "loader")(
        **options("spread", "ColumnCrossPlotLoader")
    )
    frame = aggregated().rename(columns={"lat_mean": "lat"})
    ((plot_id, _rows, fig),) = loader.plot(frame)
    (ax,) = fig.axes
    assert plot_id == {"$metrics$": "latency"}
    assert len(ax.lines) == 4 * 7  # 4 boxes, each: box, median, 2 whiskers, 2 caps, fliers
    assert [t.get_text() for t in ax.get_xticklabels()] == ["A", "B", "A", "B"]
    assert ax.get_xlabel() == "system per workload"


def test_a_label_naming_no_id_and_a_grid_that_is_none_are_one_line_errors():
    base = options("bars", "ColumnCrossPlotLoader")
    cls = load_registry(None).step("ColumnCrossPlotLoader", "loader")
    bad_label = {
        **base,
        "cum_subplot_config": [{**base["cum_subplot_config"][1], "ax_title": {"template": "{nope}"}}],
    }
    with pytest.raises(ValueError, match=r"ax_title: template '\{nope\}' names 'nope', which is not one of"):
        cls(**bad_label).plot(aggregated())
    no_grid = {
        **base,
        "cum_plot_config": [
            {
                "subplot_grid": {
                    "rows": ["workload"],
                    "cols": ["system"],
                    "jp_except": "workload == 'read' && system == 'A'",
                }
            }
        ],
    }
    with pytest.raises(ValueError, match="the subplots form no grid: rows have \\[1, 2\\] columns"):
        cls(**no_grid).plot(aggregated())


def test_super_etl_draws_with_the_column_cross_loader(project, tmp_path):
    suite(tmp_path)
    report = run_super_etl("figures", config_dir=project, results_dir=tmp_path / "doe-suite-results")
    assert report.ok, report.lines()
    out = tmp_path / "doe-suite-results-super" / "figures"
    assert sorted(p.name for p in (out / "overview").iterdir()) == ["$metrics$=time.html", "$metrics$=time.pdf"]
    assert sorted(p.name for p in (out / "grid").iterdir()) == ["out.html", "out.pdf"]


def test_a_grid_at_the_loaders_level_splits_one_figure_by_metric_and_system():
    config = yaml.safe_load((PROJECT / "super_etl" / "figures.yml").read_text())
    cls = load_registry(None).step("ColumnCrossPlotLoader", "loader")
    ((plot_id, _, fig),) = cls(**config["$ETL$"]["grid"]["loaders"]["ColumnCrossPlotLoader"]).plot(aggregated())
    assert plot_id == {}
    assert len(fig.axes) == 4


def invoke(project: Path, *args: str):
    options = ["--config-dir", str(project), "--results-dir", str(project.parent / "doe-suite-results")]
    return CliRunner().invoke(app, [*options, *args])


def test_broken_custom_modules_fail_only_the_suites_and_pipelines_that_name_their_steps(project, tmp_path):
    assert invoke(project, "info").exit_code == 0
    result = invoke(project, "design", "--suite", "figures")
    assert result.exit_code == 0, result.output
    heat = {"experiments": "*", "extractors": {"CsvExtractor": {}}, "loaders": {"HeatmapLoader": {}}}
    legacy = {**heat, "loaders": {"LegacyLoader": {}}}
    (project / "designs" / "heat.yml").write_text(
        yaml.safe_dump({"bench": design()["bench"], "$ETL$": {"heat": heat}}, sort_keys=False)
    )
    result = invoke(project, "design", "--suite", "heat")
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert "Traceback" not in line
    assert line.endswith(
        "$ETL$.heat.loaders.HeatmapLoader: step HeatmapLoader is defined in custom ETL module "
        "does_etl_custom.etl.heatmap, which cannot be imported: it needs package pdf2image "
        "(ModuleNotFoundError: No module named 'pdf2image'): "
        f"run make install with DOES_PROJECT_DIR={project.parent}"
    )
    suite_dir = suite(tmp_path, {"heat": heat, "legacy": legacy, **design()["$ETL$"]})
    outcomes = run_suite_etl(suite_dir, config_dir=project).by_pipeline()
    assert {name: outcome.status for name, outcome in outcomes.items()} == {
        "heat": "error",
        "legacy": "error",
        "bars": "ok",
        "stacked": "ok",
        "spread": "ok",
    }
    assert outcomes["legacy"].message.endswith(
        "step LegacyLoader is defined in custom ETL module does_etl_custom.etl.legacy, which cannot be "
        "imported: ModuleNotFoundError: No module named 'doespy.etl.etl_base'"
    )
