"""Factors of an experiment and the enumeration of its runs.

Cross factors (`key: {$FACTOR$: [levels]}`) are combined by Cartesian product in the order a
depth-first walk of `base_experiment` meets them, the last varying fastest. Level-list factors
(`key: $FACTOR$`) take their values from the `factor_levels` entries. The `factor_levels` list is the
outer loop, the cross product the inner one; runs matching an `except_filters` entry are skipped and
take no run index.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from doe_cli.design.source import Source

FACTOR = "$FACTOR$"


class Slot:
    """Marks where a factor's level goes in the base skeleton; `index` points into a run's level tuple."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index

    def __repr__(self) -> str:
        return f"Slot({self.index})"


@dataclass
class FactorPlan:
    """What run enumeration needs, computed once per experiment."""

    skeleton: dict
    cross: list[tuple[tuple, list]] = field(default_factory=list)    # (path, levels) in walk order
    level_paths: list[tuple] = field(default_factory=list)          # level-list factor paths, walk order
    level_rows: list[tuple] = field(default_factory=list)           # one values tuple per factor_levels entry
    filters: list[list[tuple[int, Any]]] = field(default_factory=list)  # (slot index, value) per filter

    @property
    def paths(self) -> list[tuple]:
        return [p for p, _ in self.cross] + self.level_paths

    def count_before_filters(self) -> int:
        total = len(self.level_rows)
        for _, levels in self.cross:
            total *= len(levels)
        return total

    def assignments(self) -> Iterator[tuple]:
        """Level tuples (cross levels, then level-list levels) of the runs in run order."""
        cross_levels = [levels for _, levels in self.cross]
        filters = self.filters
        for row in self.level_rows:
            for combo in itertools.product(*cross_levels):
                values = combo + row
                if filters and any(all(_matches(want, values[i]) for i, want in f) for f in filters):
                    continue
                yield values


def _matches(want: Any, have: Any) -> bool:
    """A filter value matches a level if equal, or for mappings if every filter key matches."""
    if type(want) is dict:
        return type(have) is dict and all(k in have and _matches(v, have[k]) for k, v in want.items())
    return want == have


def plan_factors(base: dict, factor_levels: list, except_filters: list, source: Source, exp_path: tuple) \
        -> FactorPlan:
    """Find the factors of `base`, check `factor_levels` and `except_filters` against them."""
    cross: list[tuple[tuple, list]] = []
    level_paths: list[tuple] = []
    base_path = exp_path + ("base_experiment",)

    def walk(node: dict, path: tuple) -> dict:
        out: dict[Any, Any] = {}
        for key, value in node.items():
            here = path + (key,)
            if key == FACTOR:
                raise source.error(base_path + here, "$FACTOR$ must be the value of a factor "
                                   "(`key: $FACTOR$`) or the only key under it (`key: {$FACTOR$: [levels]}`)")
            if type(value) is dict and FACTOR in value:
                if len(value) != 1:
                    others = ", ".join(str(k) for k in value if k != FACTOR)
                    raise source.error(base_path + here, "a cross factor is `{$FACTOR$: [levels]}` with no "
                                       f"other keys; found also {others}")
                levels = value[FACTOR]
                if type(levels) is not list or not levels:
                    raise source.error(base_path + here + (FACTOR,),
                                       f"expected a non-empty list of levels, got {levels!r}")
                out[key] = Slot(len(cross))
                cross.append((here, levels))
            elif value == FACTOR:
                out[key] = value  # slot index assigned below, after all cross factors are known
                level_paths.append(here)
            elif type(value) is dict:
                out[key] = walk(value, here)
            else:
                out[key] = value
        return out

    skeleton = walk(base, ())
    for offset, path in enumerate(level_paths):
        node = skeleton
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = Slot(len(cross) + offset)

    plan = FactorPlan(skeleton=skeleton, cross=cross, level_paths=level_paths)
    plan.level_rows = _level_rows(plan, factor_levels, source, exp_path)
    plan.filters = _filters(plan, except_filters, source, exp_path)
    return plan


def _leaf_paths(node: dict, path: tuple = ()) -> list[tuple]:
    paths = []
    for key, value in node.items():
        if type(value) is dict and value:
            paths.extend(_leaf_paths(value, path + (key,)))
        else:
            paths.append(path + (key,))
    return paths


def _dotted(paths) -> str:
    return ", ".join(".".join(str(k) for k in p) for p in sorted(paths, key=lambda p: [str(k) for k in p])) \
        or "none"


def _level_rows(plan: FactorPlan, factor_levels: list, source: Source, exp_path: tuple) -> list[tuple]:
    expected = set(plan.level_paths)
    rows = []
    for index, entry in enumerate(factor_levels):
        where = exp_path + ("factor_levels", index)
        if type(entry) is not dict:
            raise source.error(where, f"expected a mapping of level-list factor values, got {entry!r}")
        found = set(_leaf_paths(entry))
        if found != expected:
            raise source.error(where, f"factor_levels entry sets {_dotted(found)}; expected exactly the "
                                      "level-list factors ($FACTOR$ in base_experiment): "
                                      f"{_dotted(expected)}")
        row = []
        for path in plan.level_paths:
            node = entry
            for key in path:
                node = node[key]
            row.append(node)
        rows.append(tuple(row))
    return rows


def _filters(plan: FactorPlan, except_filters: list, source: Source, exp_path: tuple) \
        -> list[list[tuple[int, Any]]]:
    slot_of = {path: index for index, path in enumerate(plan.paths)}
    filters = []
    for index, entry in enumerate(except_filters):
        where = exp_path + ("except_filters", index)
        if type(entry) is not dict or not entry:
            raise source.error(where, f"expected a non-empty mapping of factor values, got {entry!r}")
        conditions: list[tuple[int, Any]] = []
        _flatten_filter(entry, (), slot_of, conditions, source, where)
        filters.append(conditions)
    return filters


def _flatten_filter(node: dict, path: tuple, slot_of: dict, conditions: list, source: Source, where: tuple) \
        -> None:
    for key, value in node.items():
        here = path + (key,)
        if here in slot_of:
            conditions.append((slot_of[here], value))
        elif type(value) is dict and value:
            _flatten_filter(value, here, slot_of, conditions, source, where)
        else:
            raise source.error(where + here, f"{'.'.join(str(k) for k in here)} is not a factor; "
                                             f"factors: {_dotted(slot_of)}")
