"""Property tests: run counts and run order for random factor structures.

Each example builds a design with random cross factors (possibly nested), level-list factors and
except_filters, and compares the engine with a direct reference enumeration written from the rules.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from doe_cli.design import dump_yaml, load_suite
from tests.unit.design.conftest import make_config_dir

FACTOR = "$FACTOR$"


@st.composite
def factor_designs(draw):
    n_cross = draw(st.integers(0, 3))
    n_level = draw(st.integers(0, 2))
    cross = [(f"c{i}", draw(st.lists(st.integers(0, 5), min_size=1, max_size=4, unique=True)))
             for i in range(n_cross)]
    level_names = [f"l{i}" for i in range(n_level)]
    entries = draw(st.lists(st.tuples(*[st.sampled_from("abc") for _ in level_names]),
                            min_size=1, max_size=4)) if level_names else [()]
    nest = draw(st.booleans())
    base: dict = {"const": 1}
    for name, levels in cross:
        (base.setdefault("group", {}) if nest and name == "c0" else base)[name] = {FACTOR: levels}
    for name in level_names:
        base[name] = FACTOR
    factors = [("group", name) if nest and name == "c0" else (name,) for name, _ in cross]
    factors += [(name,) for name in level_names]
    # filters: random partial assignments over the factors, values drawn from their levels (or not)
    level_values = [levels for _, levels in cross] + [sorted({e[i] for e in entries}) for i in range(n_level)]
    filters = []
    for _ in range(draw(st.integers(0, 3))):
        chosen = draw(st.sets(st.integers(0, len(factors) - 1), min_size=1)) if factors else set()
        if chosen:
            filters.append({i: draw(st.sampled_from(level_values[i])) for i in sorted(chosen)})
    return base, cross, level_names, entries, factors, filters


def nested(assignment: dict[tuple, object]) -> dict:
    out: dict = {}
    for path, value in assignment.items():
        node = out
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return out


def reference_runs(cross, entries, factors, filters) -> list[tuple]:
    """Level tuples (cross levels..., level-list levels...) in the documented order."""
    runs = []
    for entry in entries:
        for combo in itertools.product(*[levels for _, levels in cross]):
            values = tuple(combo) + tuple(entry)
            if any(all(values[i] == v for i, v in f.items()) for f in filters):
                continue
            runs.append(values)
    return runs


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return make_config_dir(tmp_path_factory.mktemp("prop") / "config")


@settings(max_examples=60, deadline=None)
@given(case=factor_designs())
def test_run_count_and_order_match_the_rules(project, case):
    base, cross, level_names, entries, factors, filters = case
    expected = reference_runs(cross, entries, factors, filters)
    design = {"exp": {
        "host_types": {"small": {"$CMD$": "echo [% run %]"}},
        "base_experiment": base,
        "factor_levels": [dict(zip(level_names, e)) for e in entries] if level_names else [{}],
        "except_filters": [nested({factors[i]: v for i, v in f.items()}) for f in filters],
    }}
    Path(project.design_file("prop")).write_text(dump_yaml(design))
    if not expected:
        with pytest.raises(Exception, match="every run is excluded"):
            load_suite(project, "prop")
        return
    suite = load_suite(project, "prop")
    runs = suite.extend(check_commands=False)["exp"]
    assert len(runs) == len(expected) == suite.experiments["exp"].n_runs()

    def levels_of(run: dict) -> tuple:
        values = []
        for path in factors:
            node = run
            for key in path:
                node = node[key]
            values.append(node)
        return tuple(values)

    assert [levels_of(r) for r in runs] == expected
    assert [r["$CMD$"]["small"][0]["main"] for r in runs] == [f"echo {i}" for i in range(len(runs))]
    assert suite.extend(check_commands=False)["exp"] == runs  # stable


@settings(max_examples=30, deadline=None)
@given(counts=st.lists(st.integers(1, 5), min_size=1, max_size=4))
def test_runs_without_filters_are_the_product_of_level_counts(project, counts):
    base = {f"f{i}": {FACTOR: list(range(n))} for i, n in enumerate(counts)}
    design = {"exp": {"host_types": {"small": {"$CMD$": "true"}}, "base_experiment": base}}
    Path(project.design_file("product")).write_text(dump_yaml(design))
    runs = load_suite(project, "product").extend(check_commands=False)["exp"]
    total = 1
    for n in counts:
        total *= n
    assert len(runs) == total
    assert [tuple(r[f"f{i}"] for i in range(len(counts))) for r in runs] == \
        list(itertools.product(*[range(n) for n in counts]))


KEYS = ["exp", "host_types", "base_experiment", "factor_levels", "except_filters", "n_repetitions",
        "common_roles", "small", "client", "n", "check_status", "init_roles", "$CMD$", "main", "bg",
        "$FACTOR$", "$INCLUDE_VARS$", "$SUITE_VARS$", "$ETL$", "x", "run", "setup_base"]
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2, 3), st.sampled_from(
    ["$FACTOR$", "echo [% my_run.x %]", "[% my_run.y %]", "network.yml", "true", "[% run %]", "a"]))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)), max_leaves=12)


HOST_SPEC = st.fixed_dictionaries({}, optional={
    "n": VALUES, "check_status": VALUES, "init_roles": VALUES, "$CMD$": VALUES})
EXPERIMENT = st.fixed_dictionaries({}, optional={
    "host_types": st.one_of(VALUES, st.dictionaries(st.sampled_from(["small", "client", "all", "gpu"]),
                                                    st.one_of(HOST_SPEC, VALUES), max_size=2)),
    "base_experiment": VALUES, "factor_levels": VALUES, "except_filters": VALUES,
    "n_repetitions": VALUES, "common_roles": VALUES, "unknown": VALUES})
DESIGNS = st.one_of(
    st.dictionaries(st.sampled_from(KEYS), VALUES, min_size=1, max_size=3),
    st.fixed_dictionaries({"exp": EXPERIMENT}, optional={"$SUITE_VARS$": VALUES, "other": EXPERIMENT}))


@settings(max_examples=60, deadline=None)
@given(design=DESIGNS)
def test_arbitrary_designs_fail_only_with_user_errors(project, design):
    from doe_cli.errors import UserError

    Path(project.design_file("fuzz")).write_text(dump_yaml(design))
    try:
        load_suite(project, "fuzz").extend(check_commands=False)
    except UserError as error:
        assert "\n" not in str(error)


TEXT_PIECES = st.sampled_from([
    "exp:", "\n", "  ", "host_types:", "{{", "}}", "{%", "%}", "{#", "#}", "[%", "%]", " if ", "x",
    "range(3)", "| list", ":", "-", "'", '"', "[", "]", "{", "}", "$FACTOR$", "&a", "*a", "<<:",
    "!!python/object", "\t", "\\"])


@settings(max_examples=100, deadline=None)
@given(pieces=st.lists(TEXT_PIECES, max_size=30))
def test_arbitrary_text_fails_only_with_user_errors(project, pieces):
    from doe_cli.errors import UserError

    Path(project.design_file("text")).write_text("".join(pieces))
    for strict in (False, True):
        try:
            load_suite(project, "text", strict=strict).extend(check_commands=False)
        except UserError as error:
            assert "\n" not in str(error)


@st.composite
def reference_graphs(draw):
    n = draw(st.integers(1, 6))
    return {i: draw(st.lists(st.integers(0, n - 1), max_size=3)) for i in range(n)}


def _has_cycle(graph: dict[int, list[int]]) -> bool:
    state = dict.fromkeys(graph, 0)

    def visit(node: int) -> bool:
        state[node] = 1
        for nxt in graph[node]:
            if state[nxt] == 1 or (state[nxt] == 0 and visit(nxt)):
                return True
        state[node] = 2
        return False

    return any(state[node] == 0 and visit(node) for node in graph)


@settings(max_examples=80, deadline=None)
@given(graph=reference_graphs(), nested=st.booleans())
def test_references_resolve_in_any_order_or_report_the_cycle(project, graph, nested):
    from doe_cli.errors import UserError

    def ref(i: int) -> str:
        return f"my_run.g.k{i}" if nested else f"my_run.k{i}"

    values = {f"k{i}": f"<{i}" + "".join(f"[% {ref(j)} %]" for j in targets) + ">"
              for i, targets in graph.items()}
    base = {"g": values} if nested else values
    design = {"exp": {"host_types": {"small": {"$CMD$": "echo [% " + ref(0) + " | quote %]"}},
                      "base_experiment": base}}
    Path(project.design_file("refs")).write_text(dump_yaml(design))
    if _has_cycle(graph):
        with pytest.raises(UserError, match="cycle"):
            load_suite(project, "refs").extend(check_commands=False)
        return

    def expected(i: int) -> str:
        return f"<{i}" + "".join(expected(j) for j in graph[i]) + ">"

    run = load_suite(project, "refs").extend(check_commands=False)["exp"][0]
    resolved = run["g"] if nested else run
    assert {key: resolved[key] for key in values} == {f"k{i}": expected(i) for i in graph}
