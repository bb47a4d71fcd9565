"""`$INCLUDE_VARS$` and `$SUITE_VARS$`: merging variables into `base_experiment` without overwriting.

Precedence: explicit base > its includes > suite vars. Merged keys are appended after existing ones,
so the key order is base keys, then included keys, then suite-var keys (it drives run enumeration).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from doe_cli.design.markers import check_variables
from doe_cli.design.source import Source
from doe_cli.design.yamlio import parse_yaml

INCLUDE_KEY = "$INCLUDE_VARS$"
FACTOR = "$FACTOR$"


def copy_data(value: Any) -> Any:
    """A copy of plain YAML data (dicts, lists, scalars); much cheaper than copy.deepcopy."""
    kind = type(value)
    if kind is dict:
        return {k: copy_data(v) for k, v in value.items()}
    if kind is list:
        return [copy_data(v) for v in value]
    return value


def merge_missing(target: dict, extra: dict) -> None:
    """Add the keys of `extra` that `target` lacks (recursively into mappings both have), in order.

    A cross factor (`{$FACTOR$: [...]}`) is a value, not a mapping to merge into: the existing one wins.
    """
    for key, value in extra.items():
        if key not in target:
            target[key] = copy_data(value)
        elif type(target[key]) is dict and type(value) is dict \
                and FACTOR not in target[key] and FACTOR not in value:
            merge_missing(target[key], value)


class IncludeResolver:
    """Loads files from designs/design_vars/ once each and merges them where `$INCLUDE_VARS$` appears."""

    def __init__(self, design_vars_dir: Path, source: Source) -> None:
        self.design_vars_dir = design_vars_dir
        self.source = source
        self._cache: dict[str, dict] = {}

    def resolve(self, node: Any, path: tuple) -> Any:
        """A copy of `node` with every `$INCLUDE_VARS$` (at any depth of nested mappings) merged in."""
        if type(node) is not dict:
            return copy_data(node)
        merged = {key: self.resolve(value, path + (key,))
                  for key, value in node.items() if key != INCLUDE_KEY}
        if INCLUDE_KEY in node:
            for name in self._file_names(node[INCLUDE_KEY], path + (INCLUDE_KEY,)):
                merge_missing(merged, self._load(name, path + (INCLUDE_KEY,)))
        return merged

    def _file_names(self, value: Any, path: tuple) -> list[str]:
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
            raise self.source.error(path, "expected a file name or a list of file names in "
                                          f"designs/design_vars/, got {value!r}")
        return names

    def _load(self, name: str, path: tuple) -> dict:
        if name in self._cache:
            return self._cache[name]
        file = (self.design_vars_dir / name)
        if not file.is_file() or not file.resolve().is_relative_to(self.design_vars_dir.resolve()):
            available = sorted(p.name for p in self.design_vars_dir.glob("*.y*ml")) \
                if self.design_vars_dir.is_dir() else []
            raise self.source.error(path, f"include file {name!r} not found in designs/design_vars/ "
                                          f"(available: {', '.join(available) or 'none'})")
        text = file.read_text(encoding="utf-8")
        content = parse_yaml(text, file)
        if content is None:
            content = {}
        include_source = Source(file, text, experiments_prefix=False)
        if type(content) is not dict:
            raise include_source.error((), "an include file must hold a mapping, "
                                           f"got {type(content).__name__}")
        nested = _find_key(content, INCLUDE_KEY, ())
        if nested is not None:
            raise include_source.error(nested, "$INCLUDE_VARS$ inside an included file is not allowed; "
                                               "include both files from the design")
        check_variables(content, (), include_source)
        self._cache[name] = content
        return content


def _find_key(node: Any, wanted: str, path: tuple) -> tuple | None:
    if type(node) is dict:
        for key, value in node.items():
            if key == wanted:
                return path + (key,)
            found = _find_key(value, wanted, path + (key,))
            if found is not None:
                return found
    return None
