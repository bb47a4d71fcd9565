"""The design engine's public API as other parts of doe use it."""

from __future__ import annotations

import json

import pytest
import yaml

from doe_cli.design import config_json, dump_yaml, load_stored_suite, load_suite
from doe_cli.errors import UserError


def hosts_for(exp: str, spec: dict[str, int]) -> dict:
    hosts = []
    for host_type, n in spec.items():
        for idx in range(n):
            hosts.append({"host_type": host_type, "host_type_idx": idx, "host_type_n": n,
                          "public_dns_name": f"{host_type}{idx}.example.org",
                          "private_dns_name": f"{host_type}{idx}.internal",
                          "hostvars": {"ansible_host": f"10.0.0.{idx + 1}"}})
    return {exp: hosts}


def test_minimal_suite_exposes_experiments_and_host_types(shipped):
    suite = load_suite(shipped, "example01-minimal")
    assert suite.name == "example01-minimal"
    exp = suite.experiments["minimal"]
    assert exp.n_repetitions == 2
    assert exp.common_roles == []
    assert list(exp.host_types) == ["small"]
    small = exp.host_types["small"]
    assert (small.n, small.check_status, small.init_roles) == (1, True, [])
    assert small.cmd == [{"main": small.cmd[0]["main"]}]
    assert exp.factor_levels == [{}] and exp.except_filters == []


def test_minimal_suite_extends_in_run_order_with_rendered_commands(shipped):
    runs = load_suite(shipped, "example01-minimal").extend()["minimal"]
    assert [(r["payload_size"], r["rate"]) for r in runs] == [(64, 1), (64, 2), (128, 1), (128, 2)]
    assert list(runs[0]) == ["seed", "payload_size", "rate", "$CMD$"]
    assert runs[1]["$CMD$"] == {"small": [{"main": "echo 'payload=64 rate=2 seed=1234'"}]}


def test_resolved_design_has_defaults_and_etl_section(shipped):
    resolved = load_suite(shipped, "example01-minimal").resolved
    assert list(resolved) == ["minimal", "$ETL$"]
    assert list(resolved["minimal"]) == ["n_repetitions", "common_roles", "host_types", "base_experiment",
                                         "factor_levels", "except_filters"]
    assert list(resolved["minimal"]["host_types"]["small"]) == ["n", "check_status", "init_roles", "$CMD$"]


def test_multi_host_commands_use_the_given_hosts(shipped):
    suite = load_suite(shipped, "example04-multi")
    exp = suite.experiments["client_server"]
    assert {name: (ht.n, ht.check_status) for name, ht in exp.host_types.items()} == \
        {"server": (1, False), "client": (2, True)}
    runs = suite.extend(hosts_for("client_server", {"server": 1, "client": 2}), check_commands=False)
    clients = runs["client_server"][0]["$CMD$"]["client"]
    assert len(clients) == 2
    assert "http://server0.internal:40000/config.json" in clients[0]["main"]


def test_design_time_host_lookups_show_a_placeholder(shipped):
    runs = load_suite(shipped, "example04-multi").extend()["client_server"]
    assert "@server[0].private_dns_name@" in runs[0]["$CMD$"]["client"][0]["main"]


def test_extend_without_hosts_for_an_experiment_is_an_error(shipped):
    suite = load_suite(shipped, "example04-multi")
    with pytest.raises(UserError, match="client_server"):
        suite.extend({"other": []})


def test_write_resolved_round_trips_through_load_stored_suite(shipped, tmp_path):
    suite = load_suite(shipped, "example04-multi")
    stored = tmp_path / "suite_design.yml"
    suite.write_resolved(stored)
    assert yaml.safe_load(stored.read_text()) == suite.resolved
    again = load_stored_suite(shipped, stored, "example04-multi")
    assert again.resolved == suite.resolved
    assert again.extend() == suite.extend()


def test_load_stored_suite_missing_file_is_a_user_error(shipped, tmp_path):
    with pytest.raises(UserError, match="suite_design.yml"):
        load_stored_suite(shipped, tmp_path / "suite_design.yml", "x")


def test_filter_keeps_matching_experiments_and_pipelines(cfg):
    cfg.design("""
        exp_a:
          host_types: {small: {$CMD$: "true"}}
          base_experiment: {x: 1}
        exp_b:
          host_types: {small: {$CMD$: "true"}}
          base_experiment: {x: 2}
    """)
    suite = load_suite(cfg.project, "t")
    suite.etl = {"p1": {"experiments": ["exp_a", "exp_b"]}, "p2": {"experiments": ["exp_b"]}}
    only_a = suite.filter("exp_a")
    assert list(only_a.experiments) == ["exp_a"]
    assert only_a.etl == {"p1": {"experiments": ["exp_a"]}}
    assert list(suite.experiments) == ["exp_a", "exp_b"]
    with pytest.raises(UserError, match="no experiment matches"):
        suite.filter("zzz")


def test_config_json_sorts_keys_recursively_with_four_space_indent():
    text = config_json({"b": 1, "a": {"d": [1, 2], "c": "x"}})
    assert text == '{\n    "a": {\n        "c": "x", \n        "d": [\n            1, \n            2\n' \
                   '        ]\n    }, \n    "b": 1\n}'
    assert json.loads(text) == {"a": {"c": "x", "d": [1, 2]}, "b": 1}


def test_dump_yaml_keeps_key_order_and_block_style():
    text = dump_yaml({"z": 1, "a": {"$FACTOR$": [1, 2]}, "cmd": "line1\nline2"})
    assert text.splitlines()[:4] == ["z: 1", "a:", "  $FACTOR$:", "  - 1"]
    assert yaml.safe_load(text)["cmd"] == "line1\nline2"


def test_dump_yaml_writes_shared_objects_in_full():
    shared = {"k": 1}
    assert "&" not in dump_yaml({"a": shared, "b": shared})


def test_unknown_suite_lists_the_available_ones(shipped):
    with pytest.raises(UserError, match="example01-minimal"):
        load_suite(shipped, "does-not-exist")


def test_every_example_loads_strictly_with_the_run_variables(shipped):
    for suite_name in shipped.suites():
        suite = load_suite(shipped, suite_name, variables={"suite": suite_name, "id": 1700000000,
                                                           "cloud": "local"}, strict=True)
        assert suite.extend(check_commands=False)


def test_resolved_is_a_copy(shipped):
    suite = load_suite(shipped, "example01-minimal")
    suite.resolved["minimal"]["base_experiment"]["seed"] = 0
    assert suite.resolved["minimal"]["base_experiment"]["seed"] == 1234


def test_config_json_writes_dates_as_text():
    import datetime

    assert json.loads(config_json({"day": datetime.date(2024, 5, 1)})) == {"day": "2024-05-01"}


def test_multi_host_port_follows_the_suite_id_at_run_time(shipped):
    variables = {"suite": "s", "id": 1764391234, "cloud": "local"}
    suite = load_suite(shipped, "example04-multi", variables=variables, strict=True)
    assert suite.extend(check_commands=False)["client_server"][0]["port"] == 40000 + 1764391234 % 20000


def test_suite_design_yml_lists_every_option_of_doe_suites_steps_with_its_default(cfg, tmp_path):
    cfg.design("""
        exp:
          host_types: {small: {$CMD$: "true"}}
          base_experiment: {x: 1}
        $ETL$:
          p:
            experiments: "*"
            extractors: {CsvExtractor: {file_regex: out.csv}, ErrorExtractor: {}}
            transformers:
              - {name: RepAggTransformer, data_columns: [lat]}
              - df.sort_values: {by: [run]}
            loaders: {CsvSummaryLoader: {}}
    """)
    stored = tmp_path / "suite_design.yml"
    load_suite(cfg.project, "t").write_resolved(stored)
    etl_text = stored.read_text().split("$ETL$:\n", 1)[1]
    assert etl_text == """\
  p:
    experiments:
    - exp
    extractors:
      CsvExtractor:
        file_regex:
        - out.csv
        delimiter: ','
        has_header: true
      ErrorExtractor:
        file_regex:
        - ^stderr.log$
    transformers:
    - name: RepAggTransformer
      ignore_columns: []
      data_columns:
      - lat
      agg_functions:
      - mean
      - min
      - max
      - std
      - count
    - df.sort_values:
        by:
        - run
    loaders:
      CsvSummaryLoader:
        skip_empty: false
"""


def test_inserted_values_read_json_escapes_once_as_doe_suite_does(cfg):
    # doe-suite renders the run config's JSON text, so a design writes \" for a quote that reaches the command
    cfg.design(r"""
        exp:
          host_types: {small: {$CMD$: "run [% my_run.arg %] [% my_run.pattern %]"}}
          base_experiment:
            arg: $FACTOR$
            pattern: 'x\d+'
            quoted: '[% my_run.arg %]'
          factor_levels:
          - arg: >-
              --unit '{\"unit\": \"UserMonth\"}'
    """)
    (run,) = load_suite(cfg.project, "t").extend()["exp"]
    assert run["$CMD$"]["small"][0]["main"] == """run --unit '{"unit": "UserMonth"}' x\\d+"""
    assert run["quoted"] == """--unit '{"unit": "UserMonth"}'"""
    assert run["arg"] == r"""--unit '{\"unit\": \"UserMonth\"}'"""
