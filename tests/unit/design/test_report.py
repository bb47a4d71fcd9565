"""What the design commands print, from the pure report functions."""

from __future__ import annotations

import json

from doe_cli.design import load_suite
from doe_cli.design.report import design_listing, extended_json, info_listing, suites_info


def test_background_commands_are_aligned_under_main(shipped):
    suite = load_suite(shipped, "example05-background")
    lines = design_listing(suite, suite.extend(check_commands=False)).splitlines()
    assert lines[0] == "experiment monitored: 2 runs x 2 repetitions = 4 jobs; hosts: client x2, server x1"
    main = lines[1]
    assert main.startswith("  run=000 host=client-0: python3 -c")
    column = main.index("python3")
    assert lines[2][:column].strip() == ""
    assert lines[2][column:].startswith("load: while :; do")
    assert lines[3].startswith("  run=000 host=client-1: ")


def test_multi_line_commands_continue_in_the_command_column(shipped):
    suite = load_suite(shipped, "example04-multi")
    lines = design_listing(suite, suite.extend(check_commands=False)).splitlines()
    client = next(i for i, line in enumerate(lines) if "host=client-0" in line)
    column = lines[client].index("python3")
    assert lines[client + 1] == " " * column + "import sys, time, urllib.request"


def test_pipelines_get_one_summary_line(shipped):
    suite = load_suite(shipped, "example07-etl")
    lines = design_listing(suite, suite.extend(check_commands=False)).splitlines()
    assert lines[-2].startswith("etl timing: experiments sum_timing; extractors JsonExtractor, ")
    assert "transformers RepAggTransformer; loaders CsvSummaryLoader" in lines[-2]
    assert lines[-1].startswith("etl timing_copy: ")


def test_extended_json_keeps_run_order(shipped):
    suite = load_suite(shipped, "example01-minimal")
    data = json.loads(extended_json(suite.extend(check_commands=False)))
    assert [(r["payload_size"], r["rate"]) for r in data["minimal"]] == [(64, 1), (64, 2), (128, 1), (128, 2)]


def test_info_counts_runs_and_jobs(shipped):
    infos = {info.suite: info for info in suites_info(shipped)}
    assert infos["example03-format"].experiments == [("format_cross", 5, 1), ("format_levellist", 3, 1),
                                                     ("format_mixed", 10, 1)]
    text = info_listing([infos["example06-vars"]])
    assert text.splitlines() == ["example06-vars: 2 experiments, 3 jobs",
                                 "  with_include: 2 runs x 1 repetition = 2 jobs",
                                 "  suite_vars_only: 1 run x 1 repetition = 1 job"]


def test_dataframe_method_transformers_are_named_by_their_method():
    from doe_cli.design.report import _pipeline_summary

    line = _pipeline_summary("p", {"experiments": ["e"], "extractors": {"JsonExtractor": {}},
                                   "transformers": [{"df.query": {"expr": "x > 1"}}, {"name": "RepAgg"}],
                                   "loaders": {}})
    assert line == "etl p: experiments e; extractors JsonExtractor; transformers df.query, RepAgg; loaders -"
