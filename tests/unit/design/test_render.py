"""The fast path for simple templates gives exactly what Jinja gives, errors included."""

from __future__ import annotations

import jinja2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from doe_cli.config import TOOL_ROOT
from doe_cli.design.filters import RuntimePlaceholder, inner_environment
from doe_cli.design.render import Renderer, RenderError

ENV = inner_environment(TOOL_ROOT / "designs" / "filter_plugins")
MY_RUN = {"a": 1, "s": "it's \"q\"", "none": None, "flag": True, "f": 2.5, "items": "key named items",
          "nested": {"list": [10, {"deep": "x"}], "values": [1, 2]}, "big": 2**70,
          "escaped": '{\\"k\\": 1} \\d \\u00e9'}
TEMPLATES = [
    "[% my_run.a %]", "x[% my_run.s %]y", "[% my_run.none %]", "[% my_run.flag %]", "[% my_run.f %]",
    "[% my_run.items %]", "[% my_run['items'] %]", "[% my_run.nested.values %]",
    "[% my_run.nested['values'] %]", "[% my_run.nested.list[1].deep %]", "[% my_run.nested.list[-1] %]",
    "[% my_run.nested.list[5] %]", "[% my_run.missing %]", "[% my_run.a.b %]", "[% my_run.s | quote %]",
    "[% my_run.s | upper %]", "[% my_run.missing | default('d') %]", "[% my_run.a | default('d') %]",
    "[% 'maybe' | bool %]", "[% my_run.nested | to_json %]", "[% run %]-[% run %]", "[% my_run.big %]",
    "[% my_run.nested.list[0] %]", "[% exp_host_lst | to_private_dns_name('server') %]",
    "[% exp_host_lst | length %]", "[% 3 %]", "\n[% 'x' %]\n", "[% my_run.nested.list | join(',') %]",
    "[% my_run.nested.list[True] %]", "[% my_run.s | replace('q', 'Q') %]", "[% my_run.escaped %]",
    "[% my_run.escaped | upper %]",
]


def jinja_result(source: str, variables: dict):
    try:
        return ENV.from_string(source).render(**variables)
    except Exception as error:  # noqa: BLE001 - the test compares failures too
        return type(error)


def renderer_result(source: str, variables: dict):
    run = {"value": source}
    try:
        Renderer(ENV).render_run(variables["my_run"], [], [(run, "value", ("x",))], variables["run"],
                                 variables["exp_host_lst"])
    except RenderError:
        return "error"
    return run["value"]


@pytest.mark.parametrize("source", TEMPLATES)
@pytest.mark.parametrize("hosts", [RuntimePlaceholder(name="exp_host_lst"),
                                   [{"host_type": "server", "host_type_idx": 0, "private_dns_name": "srv"}]],
                         ids=["design-time", "run-time"])
def test_renderer_matches_jinja(source, hosts):
    variables = {"my_run": MY_RUN, "run": 7, "exp_host_lst": hosts}
    expected = jinja_result(source, variables)
    got = renderer_result(source, variables)
    if isinstance(expected, type):
        assert got == "error", (source, got)
    else:
        assert got == expected


@settings(max_examples=60, deadline=None)
@given(value=st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                                    st.text(max_size=5)),
                          lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                  st.dictionaries(st.sampled_from(["k", "keys", "v"]), inner,
                                                                  max_size=3)), max_leaves=6),
       path=st.lists(st.sampled_from([".k", ".keys", "['k']", "[0]", "[-1]", ".v"]), max_size=3))
def test_renderer_matches_jinja_on_any_value(value, path):
    source = "<[% my_run.x" + "".join(path) + " %]>"
    variables = {"my_run": {"x": value}, "run": 0, "exp_host_lst": RuntimePlaceholder(name="exp_host_lst")}
    expected = jinja_result(source, variables)
    got = renderer_result(source, variables)
    assert got == ("error" if isinstance(expected, type) else expected)


def test_strict_undefined_is_used():
    assert isinstance(ENV.undefined, type) and issubclass(ENV.undefined, jinja2.StrictUndefined)
