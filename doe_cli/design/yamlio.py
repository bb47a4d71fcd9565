"""YAML and JSON in and out: parsing with duplicate-key detection, line lookup for errors, writers."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from doe_cli.errors import UserError

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


def dump_yaml(obj: Any) -> str:
    """Block YAML with indent 2 and key order kept (suite_design*.yml)."""
    return yaml.dump(obj, Dumper=_BlockDumper, sort_keys=False, default_flow_style=False, indent=2,
                     allow_unicode=True, width=1 << 16)


def config_json(run_config: dict) -> str:
    """One job's config.json: 4-space indent, keys sorted recursively, separators ', ' and ': '."""
    # default=str: YAML timestamps (unquoted dates) become their ISO text instead of failing
    return json.dumps(run_config, indent=4, sort_keys=True, separators=(", ", ": "), ensure_ascii=False,
                      default=str)


def write_atomic(path: str | Path, text: str) -> None:
    """Write `text` to `path` via a temporary file in the same folder, fsync and rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
