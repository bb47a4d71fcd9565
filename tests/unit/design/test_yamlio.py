"""dump_yaml writes exactly what PyYAML's block style writes, only faster; the text loads back unchanged."""

from __future__ import annotations

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from doe_cli.design.yamlio import _pyyaml_dump, dump_yaml

TEXT = st.one_of(st.text(alphabet=list("ab :#-'\"\\\n\t{}[]|>&*!%@`,?1é\r\u2028"), max_size=8),
                 st.sampled_from(["yes", "null", "1.5", "~", "$CMD$", "a\n\n", "  x\n  y", "- z", "No",
                                  "OFF", "./app --out a/b.json", "run-3 x=1", "a  b", "a ", "_x", "/p", "e3",
                                  "x:y"]),
                 st.from_regex(r"[A-Za-z_/.0-9][A-Za-z0-9_./=+ :#-]{0,6}", fullmatch=True))
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), TEXT)
KEYS = st.one_of(TEXT, st.integers(), st.sampled_from(["$CMD$", "$FACTOR$", "k" * 130]))
DATA = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                     st.dictionaries(KEYS, inner, max_size=4)), max_leaves=25)


DOCUMENTS = st.one_of(st.dictionaries(KEYS, DATA, min_size=1, max_size=4),
                      st.lists(DATA, min_size=1, max_size=4))


@settings(max_examples=120, deadline=None)
@given(data=DOCUMENTS)
def test_fast_emitter_writes_what_pyyaml_writes(data):
    text = dump_yaml(data)
    assert text == _pyyaml_dump(data)
    assert yaml.safe_load(text) == data


def test_block_scalars_keep_their_indentation_when_nested():
    data = {"exp": [{"$CMD$": {"client": [{"main": "line1\n  indented\n\nlast\n"}]}}], "tail": "x\n\n"}
    text = dump_yaml(data)
    assert text == _pyyaml_dump(data)
    assert text.endswith("...\n")
    assert yaml.safe_load(text) == data
