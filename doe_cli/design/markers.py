"""The `$KEY$` words of the design format: a `$...$` key doe does not know is a typo, never data.

doe-suite read any other `$...$` key as a plain variable, so `$FACTORS$: [1, 5, 9]` ran its list as a
constant; doe names the closest word it knows instead.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import Any

from doe_cli.design.source import Source

SUITE_VARS = "$SUITE_VARS$"
ETL = "$ETL$"
CMD = "$CMD$"
FACTOR = "$FACTOR$"
INCLUDE_VARS = "$INCLUDE_VARS$"
# Run-config keys with the job's Slurm time limit (doe-suite's name on Euler, and doe's); other clouds
# ignore them.
EULER_JOB_MINUTES = "$euler_job_minutes$"
SLURM_JOB_MINUTES = "$slurm_job_minutes$"

# Where each word belongs, for a hint when one is used in the wrong place.
KNOWN = {
    SUITE_VARS: "a top-level key",
    ETL: "a top-level key",
    CMD: "a key of a host type under host_types",
    FACTOR: "a factor in base_experiment (`key: $FACTOR$` or `key: {$FACTOR$: [levels]}`)",
    INCLUDE_VARS: "a key in base_experiment or $SUITE_VARS$",
    EULER_JOB_MINUTES: "a key in base_experiment",
    SLURM_JOB_MINUTES: "a key in base_experiment",
    "$INCLUDE_PIPELINE$": "a key of an $ETL$ pipeline",
    "$ETL_VARS$": "a key of an $ETL$ pipeline",
    "$INCLUDE_STEPS$": "a key under an $ETL$ pipeline's extractors, transformers or loaders",
}
# The words run variables (base_experiment, $SUITE_VARS$, include files) may hold as keys.
VARIABLE_KEYS = (FACTOR, INCLUDE_VARS, EULER_JOB_MINUTES, SLURM_JOB_MINUTES)

_MARKER = re.compile(r"^\$[^$\s]+\$$")


def is_marker(value: Any) -> bool:
    return isinstance(value, str) and bool(_MARKER.match(value))


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate most like `word`, ignoring case (`$factor$` is `$FACTOR$`), if any is close."""
    by_lower = {candidate.lower(): candidate for candidate in candidates}
    found = difflib.get_close_matches(word.lower(), by_lower, n=1, cutoff=0.6)
    return by_lower[found[0]] if found else None


def unknown_marker(word: str, allowed_here: Iterable[str], what: str = "key") -> str:
    """`unknown key $FACTORS$: did you mean $FACTOR$?`, saying where the suggestion belongs if not here."""
    allowed_here = tuple(allowed_here)
    suggestion = closest(word, allowed_here)
    if suggestion is not None:
        return f"unknown {what} {word}: did you mean {suggestion}?"
    suggestion = word if word in KNOWN else closest(word, KNOWN)
    if suggestion is not None:
        hint = "" if suggestion == word else f"did you mean {suggestion}? "
        return f"unexpected {what} {word} here: {hint}{suggestion} is {KNOWN[suggestion]}"
    expected = ", ".join(allowed_here) if allowed_here else "none"
    return f"unknown {what} {word}: doe knows no such $...$ word (expected here: {expected})"


def check_variables(node: Any, path: tuple, source: Source) -> None:
    """Every `$...$` key in run variables (base_experiment, $SUITE_VARS$, an include file), at any depth,
    is one doe knows; so is a `$...$` value (the level-list marker `key: $FACTOR$`)."""
    if type(node) is dict:
        for key, value in node.items():
            here = path + (key,)
            if is_marker(key) and key not in VARIABLE_KEYS:
                raise source.error(here, unknown_marker(key, VARIABLE_KEYS))
            if is_marker(value) and value != FACTOR:
                raise source.error(here, unknown_marker(value, (FACTOR,), what="value"))
            check_variables(value, here, source)
    elif type(node) is list:
        for index, item in enumerate(node):
            if type(item) in (dict, list):
                check_variables(item, path + (index,), source)
