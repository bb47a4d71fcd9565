"""YAML and JSON in and out: parsing with duplicate-key detection, line lookup for errors, writers."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from doe_cli.errors import UserError
from doe_cli.fileio import write_atomic  # noqa: F401  (re-exported by doe_cli.design)

# libyaml's classes where PyYAML has them (several times faster); the type checker sees the pure-Python ones.
if TYPE_CHECKING:
    _CLoader = yaml.SafeLoader
    _CDumper = yaml.SafeDumper
else:
    _CLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    _CDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _StrictLoader(_CLoader):
    """A safe loader (libyaml when available) that rejects duplicate mapping keys."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *anchor` keys may be overridden by the mapping's own keys
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                continue  # the base constructor reports unhashable keys
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first defined on line {seen[key] + 1})",
                    key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str, file: str | Path) -> Any:
    """Parse one YAML document; a syntax error becomes a one-line UserError with the line number."""
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = " ".join(str(error.problem or error).split())
        context = f" ({' '.join(str(error.context).split())})" if error.context else ""
        raise UserError(f"invalid YAML: {problem}{context}", file=str(file), line=line) from None
    except yaml.YAMLError as error:
        raise UserError(f"invalid YAML: {' '.join(str(error).split())}", file=str(file)) from None


def line_of(text: str, path: tuple) -> int | None:
    """The 1-based line of the node at `path` (keys and list indices) in YAML `text`, or of its
    deepest existing ancestor; None if the text does not parse."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    line = None
    for step in path:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.value == str(step):
                    line = key_node.start_mark.line + 1
                    node = value_node
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and 0 <= step < len(node.value):
            node = node.value[step]
            line = node.start_mark.line + 1
        else:
            return line
    return line


class _BlockDumper(_CDumper):
    """Block style, key order kept, no anchors/aliases (shared objects are written out in full)."""

    def ignore_aliases(self, data):
        return True


def _represent_str(dumper, data: str):
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_BlockDumper.add_representer(str, _represent_str)


def _pyyaml_dump(obj: Any) -> str:
    return yaml.dump(obj, Dumper=_BlockDumper, sort_keys=False, default_flow_style=False, indent=2,
                     allow_unicode=True, width=1 << 16)


def dump_yaml(obj: Any) -> str:
    """Block YAML with indent 2 and key order kept (suite_design*.yml).

    The text is what PyYAML writes; PyYAML's representer is slow (about 5 s for 10,000 run configs), so
    plain data is written by a small emitter that asks PyYAML only once per distinct scalar.
    """
    if type(obj) in (dict, list) and obj:
        try:
            return _FastEmitter().document(obj)
        except _Unsupported:
            pass
    return _pyyaml_dump(obj)


class _Unsupported(Exception):
    """A value the fast emitter leaves to PyYAML (other types, long or multi-line keys, odd line breaks)."""


_SCALAR_TYPES = (str, int, float, bool, type(None))
_ODD_LINE_BREAKS = ("\r", "\x85", "\u2028", "\u2029")
_scalar_cache: dict[tuple, tuple[str, list[str], bool]] = {}
_key_cache: dict[tuple, str] = {}


# Strings PyYAML writes unquoted for sure: words of safe characters separated by single spaces, not
# starting like a number, and not words YAML reads as booleans or null.
_PLAIN = re.compile(r"[A-Za-z_/][A-Za-z0-9_./=+-]*(?: [A-Za-z0-9_./=+-]+)*")
_NOT_PLAIN_WORDS = frozenset(w for base in ("yes", "no", "true", "false", "on", "off", "null")
                             for w in (base, base.capitalize(), base.upper()))


def _cache_key(value: Any) -> tuple:
    # floats by their text: -0.0 == 0.0, but YAML writes them differently
    return (float, repr(value)) if type(value) is float else (type(value), value)


def _scalar(value: Any) -> tuple[str, list[str], bool]:
    """PyYAML's text for a scalar as a list item: (first line, block lines indented by 2, open-ended)."""
    if type(value) is str and _PLAIN.fullmatch(value) and value not in _NOT_PLAIN_WORDS:
        return value, [], False
    cache_key = _cache_key(value)
    found = _scalar_cache.get(cache_key)
    if found is None:
        if type(value) not in _SCALAR_TYPES:
            raise _Unsupported
        text = _pyyaml_dump([value])
        open_ended = text.endswith("\n...\n")
        if open_ended:
            text = text[:-4]
        if any(mark in text for mark in _ODD_LINE_BREAKS):
            raise _Unsupported
        first, *rest = text[2:-1].split("\n")  # blank lines at the end belong to a `|+` scalar
        if rest and not first.startswith("|"):
            raise _Unsupported
        found = _scalar_cache[cache_key] = (first, rest, open_ended)
    return found


def _key(key: Any) -> str:
    cache_key = _cache_key(key)
    found = _key_cache.get(cache_key)
    if found is None:
        if type(key) not in _SCALAR_TYPES:
            raise _Unsupported
        text = _pyyaml_dump({key: None})
        if not text.endswith(": null\n") or text.startswith("?") or text.count("\n") != 1:
            raise _Unsupported
        found = _key_cache[cache_key] = text[: -len(": null\n")]
    return found


class _FastEmitter:
    """Writes dicts, lists and scalars the way PyYAML's block style does (mappings indent 2, sequences
    under a key not indented, `- ` items holding mappings and sequences inline)."""

    # Parts are joined into a chunk every so many: a list of millions of small strings (100,000 run
    # configs) would cost several times the text's own size.
    CHUNK_PARTS = 50_000

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.chunks: list[str] = []
        self.open_ended = False

    def document(self, obj: Any) -> str:
        if type(obj) is dict:
            self.mapping(obj, 0, "")
        else:
            self.sequence(obj, 0, "")
        if self.open_ended:
            self.parts.append("...\n")
        self.chunks.append("".join(self.parts))
        return "".join(self.chunks)

    def scalar(self, value: Any, indent: int) -> None:
        first, rest, open_ended = _scalar(value)
        self.parts.append(first)
        self.parts.append("\n")
        pad = " " * indent
        for line in rest:
            self.parts.append(pad + line + "\n" if line else "\n")
        if first.startswith("|"):  # like libyaml: only block scalars set or clear the `...` end marker
            self.open_ended = open_ended

    def value(self, value: Any, indent: int) -> None:
        """A value after `key:` or `-` at column `indent`."""
        kind = type(value)
        if kind is dict or kind is list:
            if not value:
                self.parts.append(" {}\n" if kind is dict else " []\n")
            elif kind is dict:
                self.parts.append("\n")
                self.mapping(value, indent + 2, " " * (indent + 2))
            else:
                self.parts.append("\n")
                self.sequence(value, indent, " " * indent)
        else:
            self.parts.append(" ")
            self.scalar(value, indent)

    def mapping(self, node: dict, indent: int, first_prefix: str) -> None:
        prefix = first_prefix
        pad = " " * indent
        for key, value in node.items():
            self.parts.append(prefix + _key(key) + ":")
            prefix = pad
            self.value(value, indent)

    def sequence(self, node: list, indent: int, first_prefix: str) -> None:
        prefix = first_prefix
        pad = " " * indent
        for item in node:
            kind = type(item)
            if (kind is dict or kind is list) and item:
                self.parts.append(prefix + "- ")
                if kind is dict:
                    self.mapping(item, indent + 2, "")
                else:
                    self.sequence(item, indent + 2, "")
            else:
                self.parts.append(prefix + "-")
                self.value(item, indent)
            prefix = pad
            if len(self.parts) > self.CHUNK_PARTS:
                self.chunks.append("".join(self.parts))
                self.parts.clear()


def config_json(run_config: dict) -> str:
    """One job's config.json: 4-space indent, keys sorted recursively, separators ', ' and ': '."""
    # default=str: YAML timestamps (unquoted dates) become their ISO text instead of failing
    return json.dumps(run_config, indent=4, sort_keys=True, separators=(", ", ": "), ensure_ascii=False,
                      default=str)


