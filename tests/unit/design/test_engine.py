"""Semantics of the design engine: run order, merging, templates, host helpers, plugins, outer pass."""

from __future__ import annotations

import pytest

from doe_cli.design import design_loader, load_stored_suite, load_suite
from doe_cli.errors import UserError


def runs_of(cfg, text: str, exp: str = "exp", **extend) -> list[dict]:
    return load_suite(cfg.project, cfg.design(text)).extend(check_commands=False, **extend)[exp]


def host(host_type: str, idx: int, n: int, **hostvars) -> dict:
    return {"host_type": host_type, "host_type_idx": idx, "host_type_n": n,
            "public_dns_name": f"{host_type}-{idx}.public", "private_dns_name": f"{host_type}-{idx}.private",
            "hostvars": hostvars}


# --- run enumeration -----------------------------------------------------------------------------

def test_level_list_is_the_outer_loop_and_the_last_cross_factor_varies_fastest(shipped):
    runs = load_suite(shipped, "example03-format").extend(check_commands=False)["format_mixed"]
    assert [(r["app"], r["vector_size"]) for r in runs] == [
        ("app1", 10), ("app1", 20), ("app1", 30), ("app1", 40),
        ("app2", 10), ("app2", 20), ("app2", 30),
        ("app3", 20), ("app3", 30), ("app3", 40)]


def test_run_numbers_stay_dense_after_except_filters(cfg):
    runs = runs_of(cfg, """
        exp:
          host_types: {small: {$CMD$: "echo [% run %] [% my_run.x %]"}}
          base_experiment:
            x: {$FACTOR$: [1, 2, 3, 4]}
          except_filters: [{x: 2}]
    """)
    assert [r["$CMD$"]["small"][0]["main"] for r in runs] == ["echo 0 1", "echo 1 3", "echo 2 4"]


def test_no_factors_gives_one_run(cfg):
    assert len(runs_of(cfg, """
        exp:
          host_types: {small: {$CMD$: "true"}}
          base_experiment: {a: 1}
    """)) == 1


def test_run_configs_share_no_objects(cfg):
    runs = runs_of(cfg, """
        exp:
          host_types: {small: {n: 2, $CMD$: {main: "true", bg: "sleep 1"}}}
          base_experiment:
            nested: {list: [1, {deep: 2}]}
            x: {$FACTOR$: [{a: 1}, {a: 2}]}
    """)
    runs[0]["nested"]["list"][1]["deep"] = 99
    runs[0]["$CMD$"]["small"][0]["main"] = "changed"
    assert runs[1]["nested"]["list"][1]["deep"] == 2
    assert runs[0]["$CMD$"]["small"][1]["main"] == "true"
    assert runs[1]["$CMD$"]["small"][0]["main"] == "true"


def test_n_runs_matches_the_extension(shipped):
    for suite_name in shipped.suites():
        suite = load_suite(shipped, suite_name)
        extended = suite.extend(check_commands=False)
        counted = {name: exp.n_runs() for name, exp in suite.experiments.items()}
        assert counted == {name: len(runs) for name, runs in extended.items()}


# --- includes and suite variables ------------------------------------------------------------------

def test_precedence_is_base_then_includes_then_suite_vars_and_key_order_follows(shipped):
    suite = load_suite(shipped, "example06-vars")
    with_include = suite.extend(check_commands=False)["with_include"][0]
    assert list(with_include) == ["workload", "block_bytes", "storage", "seed", "out", "$CMD$"]
    assert with_include["block_bytes"] == "4096"
    assert with_include["storage"] == {"device": "ssd", "block_size_kb": 4}
    assert with_include["workload"] == {"ops": 1000, "read_ratio": 0.9, "name": "kv"}
    only_suite_vars = suite.extend(check_commands=False)["suite_vars_only"][0]
    assert only_suite_vars["seed"] == 11
    assert only_suite_vars["storage"] == {"device": "hdd"}
    assert "$SUITE_VARS$" not in suite.resolved


def test_resolved_design_keeps_factor_markers_after_merging(shipped):
    base = load_suite(shipped, "example06-vars").resolved["with_include"]["base_experiment"]
    assert base["workload"]["ops"] == {"$FACTOR$": [1000, 2000]}
    assert "$INCLUDE_VARS$" not in base


# --- [% %] templates -------------------------------------------------------------------------------

def test_quotes_and_braces_in_values_survive_rendering(cfg):
    run = runs_of(cfg, """
        exp:
          host_types: {small: {$CMD$: "echo [% my_run.text | quote %]"}}
          base_experiment:
            text: "she said \\"hi\\" {and} 'left' [% my_run.suffix %]"
            suffix: '{"json": [1, 2]}'
    """)[0]
    assert run["text"] == "she said \"hi\" {and} 'left' {\"json\": [1, 2]}"
    assert run["$CMD$"]["small"][0]["main"] == \
        "echo 'she said \"hi\" {and} '\"'\"'left'\"'\"' {\"json\": [1, 2]}'"


def test_references_resolve_whatever_the_key_order(cfg):
    run = runs_of(cfg, """
        exp:
          host_types: {small: {$CMD$: "echo [% my_run.a %]"}}
          base_experiment:
            a: "a([% my_run.b %])"
            b: "b([% my_run.c.d %])"
            c: {d: "d([% my_run.e[1] %])"}
            e: [zero, "one-[% run %]"]
    """)[0]
    assert run["a"] == "a(b(d(one-0)))"
    assert run["$CMD$"]["small"][0]["main"] == "echo a(b(d(one-0)))"


def test_a_reference_cycle_is_an_error_naming_the_keys(cfg):
    with pytest.raises(UserError) as caught:
        runs_of(cfg, """
            exp:
              host_types: {small: {$CMD$: "true"}}
              base_experiment:
                first: "[% my_run.second %]"
                second: {inner: "[% my_run.first %]"}
        """)
    assert "cycle" in caught.value.detail
    assert "first" in caught.value.detail and "second.inner" in caught.value.detail


def test_the_whole_run_config_can_be_passed_to_a_command(cfg):
    run = runs_of(cfg, """
        exp:
          host_types: {small: {$CMD$: "echo [% my_run | to_json | quote %]"}}
          base_experiment: {x: "[% 1 + 1 %]", y: [1, 2]}
    """)[0]
    assert run["$CMD$"]["small"][0]["main"] == """echo '{"x": "2", "y": [1, 2]}'"""


def test_templates_inside_factor_levels_are_rendered(cfg):
    runs = runs_of(cfg, """
        exp:
          host_types: {small: {$CMD$: "true"}}
          base_experiment:
            base: 10
            size: {$FACTOR$: ["[% my_run.base * 2 %]", plain]}
    """)
    assert [r["size"] for r in runs] == ["20", "plain"]


def test_undefined_variable_names_run_and_key(cfg):
    with pytest.raises(UserError) as caught:
        runs_of(cfg, """
            exp:
              host_types: {small: {$CMD$: "echo [% nothing %]"}}
              base_experiment: {}
        """)
    assert caught.value.path == "experiments.exp.host_types.small.$CMD$"
    assert "run 0" in caught.value.detail and "'nothing' is undefined" in caught.value.detail


# --- hosts -------------------------------------------------------------------------------------------

HOST_DESIGN = """
    exp:
      host_types:
        client:
          $CMD$: >-
            connect [% exp_host_lst | to_private_dns_name('server') %]
            [% exp_host_lst | to_public_dns_name('server', 1) %] [% exp_host_lst | to_ipv4('server') %]
            [% 'zone' | at_runtime(exp_host_lst) %] [% 'port' | at_runtime(exp_host_lst, 'server', 1) %]
        server: {n: 2, $CMD$: "serve"}
      base_experiment: {}
"""


def test_host_helpers_read_the_experiment_hosts(cfg):
    hosts = [host("client", 0, 1, zone="a"),
             host("server", 1, 2, zone="a", port=81),
             host("server", 0, 2, zone="a", port=80, ansible_default_ipv4={"address": "10.1.1.1"})]
    run = runs_of(cfg, HOST_DESIGN, exp_host_lst={"exp": hosts})[0]
    assert run["$CMD$"]["client"][0]["main"] == \
        "connect server-0.private server-1.public 10.1.1.1 a 81"


def test_host_helpers_show_placeholders_at_design_time(cfg):
    run = runs_of(cfg, HOST_DESIGN)[0]
    assert run["$CMD$"]["client"][0]["main"] == ("connect @server[0].private_dns_name@ "
                                                 "@server[1].public_dns_name@ @server[0].ipv4@ "
                                                 "@at_runtime:zone@ @at_runtime:port@")


def test_direct_host_list_access_shows_a_placeholder_at_design_time(cfg):
    run = runs_of(cfg, """
        exp:
          host_types: {small: {$CMD$: "ping [% exp_host_lst[0].public_dns_name %]"}}
          base_experiment: {}
    """)[0]
    assert run["$CMD$"]["small"][0]["main"] == "ping @exp_host_lst[0].public_dns_name@"


def test_at_runtime_without_host_type_needs_agreeing_hosts(cfg):
    hosts = [host("client", 0, 1, zone="a"), host("server", 0, 2, zone="b"), host("server", 1, 2, zone="a")]
    with pytest.raises(UserError, match="disagree"):
        runs_of(cfg, HOST_DESIGN, exp_host_lst={"exp": hosts})


def test_missing_host_index_is_an_error(cfg):
    with pytest.raises(UserError, match="1 host.s. of type 'server'; no index 1"):
        runs_of(cfg, HOST_DESIGN, exp_host_lst={"exp": [host("client", 0, 1), host("server", 0, 1)]})


# --- filter plugins ------------------------------------------------------------------------------------

def test_project_filter_plugins_are_available(cfg):
    plugins = cfg.project.filter_plugins_dir
    plugins.mkdir(parents=True)
    (plugins / "units.py").write_text(
        "class FilterModule:\n"
        "    def filters(self):\n"
        "        return {'kib': lambda x: int(x) * 1024}\n")
    run = runs_of(cfg, """
        exp:
          host_types: {small: {$CMD$: "alloc [% my_run.size | kib %]"}}
          base_experiment: {size: 4}
    """)[0]
    assert run["$CMD$"]["small"][0]["main"] == "alloc 4096"


def test_a_filter_plugin_that_fails_to_import_is_reported(cfg):
    plugins = cfg.project.filter_plugins_dir
    plugins.mkdir(parents=True)
    (plugins / "broken.py").write_text("import module_that_does_not_exist\n")
    with pytest.raises(UserError) as caught:
        runs_of(cfg, """
            exp:
              host_types: {small: {$CMD$: "true"}}
              base_experiment: {}
        """)
    assert caught.value.file.endswith("broken.py")
    assert "module_that_does_not_exist" in caught.value.detail


# --- outer pass ----------------------------------------------------------------------------------------

RANGE_DESIGN = """
    exp:
      host_types: {small: {$CMD$: "echo {{ suite }} {{ id }}"}}
      base_experiment:
        listed: {$FACTOR$: {{ range(10, 25, 5) | list }}}
        quoted: "{{ range(3) | list }}"
        {% if prj_id == 'test' %}from_block: yes{% endif %}
"""


def test_outer_pass_unquoted_gives_a_list_and_quoted_a_string(cfg):
    runs = runs_of(cfg, RANGE_DESIGN)
    assert [r["listed"] for r in runs] == [10, 15, 20]
    assert runs[0]["quoted"] == "[0, 1, 2]"
    assert runs[0]["from_block"] is True


def test_outer_pass_leaves_undefined_names_unless_strict(cfg):
    name = cfg.design(RANGE_DESIGN)
    loose = load_suite(cfg.project, name).extend(check_commands=False)["exp"][0]
    assert loose["$CMD$"]["small"][0]["main"] == "echo {{ suite }} {{ id }}"
    strict = load_suite(cfg.project, name, variables={"suite": name, "id": 17}, strict=True)
    assert strict.extend(check_commands=False)["exp"][0]["$CMD$"]["small"][0]["main"] == "echo t 17"
    with pytest.raises(UserError, match="'id' is undefined"):
        load_suite(cfg.project, name, variables={"suite": name}, strict=True)


# --- config dir, stored designs, ETL -------------------------------------------------------------------

def test_missing_group_vars_all_is_an_error(cfg):
    name = cfg.design("exp: {host_types: {small: {$CMD$: 'true'}}, base_experiment: {}}\n")
    (cfg.project.group_vars_dir / "all" / "main.yml").unlink()
    with pytest.raises(UserError, match="group_vars/all/main.yml is missing"):
        load_suite(cfg.project, name)


def test_roles_are_found_in_the_config_dir(cfg):
    exp = load_suite(cfg.project, cfg.design("""
        exp:
          common_roles: setup_base
          host_types: {server: {init_roles: setup_server, $CMD$: "true"}}
          base_experiment: {}
    """)).experiments["exp"]
    assert exp.common_roles == ["setup_base"]
    assert exp.host_types["server"].init_roles == ["setup_server"]


def test_etl_section_is_expanded_in_the_resolved_design(shipped):
    etl = load_suite(shipped, "example07-etl").resolved["$ETL$"]
    assert list(etl) == ["timing", "timing_copy"]
    assert next(iter(etl["timing"])) == "experiments"
    assert etl["timing"]["experiments"] == ["sum_timing"]
    assert etl["timing"]["extractors"]["IgnoreExtractor"]["file_regex"] == ["^stdout\\.log$"]
    assert etl["timing_copy"]["extractors"] == etl["timing"]["extractors"]


def test_stored_suite_keeps_its_etl_section(shipped, tmp_path):
    suite = load_suite(shipped, "example07-etl")
    suite.write_resolved(tmp_path / "suite_design.yml")
    assert load_stored_suite(shipped, tmp_path / "suite_design.yml", "example07-etl").etl == suite.etl


def test_design_loader_returns_the_raw_design(shipped):
    raw = design_loader(shipped)("example07-etl")
    included = raw["$ETL$"]["timing_copy"]["$INCLUDE_PIPELINE$"]
    assert included == {"suite": "example07-etl", "pipeline": "timing"}


def test_a_cross_factor_is_merged_as_a_value(cfg):
    runs = runs_of(cfg, """
        $SUITE_VARS$:
          opts: {$FACTOR$: [1, 2]}
          size: {small: 1}
        exp:
          host_types: {small: {$CMD$: "true"}}
          base_experiment:
            opts: {fixed: true}
            size: {$FACTOR$: [a, b]}
    """)
    assert [(r["opts"], r["size"]) for r in runs] == [({"fixed": True}, "a"), ({"fixed": True}, "b")]
