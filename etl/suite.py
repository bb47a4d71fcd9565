"""Reading a suite result folder: its name and id, its stored design, experiments and factor columns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from etl.errors import EtlConfigError
from etl.layout import parse_result_folder

SUITE_DESIGN = "suite_design.yml"
ETL_KEY = "$ETL$"
FACTOR = "$FACTOR$"
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def split_suite_dir(name: str) -> tuple[str, Any]:
    """`<suite>_<id>` split at the last `_`; a numeric id becomes an int."""
    parsed = parse_result_folder(name)
    if parsed is None:
        raise EtlConfigError(f"result folder {name!r} is not named <suite>_<id>")
    return parsed


def read_design(path: Path) -> dict:
    return parse_design(read_design_text(path), path)


def read_design_text(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise EtlConfigError(
            "does not exist; expected the stored design of the suite", file=str(path)
        ) from None


def parse_design(text: bytes, path: Path) -> dict:
    try:
        design = yaml.load(text, Loader=_YAML_LOADER)
    except yaml.YAMLError as error:
        raise EtlConfigError(f"is not valid YAML: {' '.join(str(error).split())}", file=str(path)) from None
    if not isinstance(design, dict):
        raise EtlConfigError("expected a mapping of experiments", file=str(path))
    return design


def experiment_names(design: dict) -> list[str]:
    return [name for name in design if not str(name).startswith("$")]


def factor_columns(base_experiment: Any, prefix: str = "") -> list[str]:
    """Dotted factor paths in base_experiment order; both syntaxes (`x: $FACTOR$`, `x: {$FACTOR$: [...]}`)."""
    found: list[str] = []
    if not isinstance(base_experiment, dict):
        return found
    for key, value in base_experiment.items():
        path = f"{prefix}{key}"
        if value == FACTOR or isinstance(value, dict) and FACTOR in value:
            found.append(path)
        elif isinstance(value, dict):
            found.extend(factor_columns(value, path + "."))
    return found


def experiment_factors(design: dict) -> dict[str, tuple[str, ...]]:
    return {
        name: tuple(factor_columns((design.get(name) or {}).get("base_experiment")))
        for name in experiment_names(design)
        if isinstance(design.get(name), dict)
    }


def factor_values(config: Any, factors: tuple[str, ...]) -> dict[str, Any]:
    """A run config's value of each dotted factor path (None where the config lacks it)."""
    values = {}
    for path in factors:
        value: Any = config
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        values[path] = value
    return values


def experiment_host_types(design: dict) -> dict[str, tuple[tuple[str, int], ...]]:
    """Per experiment: (host type, n) in design order; n defaults to 1 as in the design format."""
    found: dict[str, tuple[tuple[str, int], ...]] = {}
    for name in experiment_names(design):
        host_types = (
            (design.get(name) or {}).get("host_types") if isinstance(design.get(name), dict) else None
        )
        if not isinstance(host_types, dict):
            continue
        pairs = []
        for host_type, spec in host_types.items():
            n = spec.get("n", 1) if isinstance(spec, dict) else 1
            if isinstance(n, int) and not isinstance(n, bool) and n >= 0:
                pairs.append((str(host_type), n))
        found[name] = tuple(pairs)
    return found
