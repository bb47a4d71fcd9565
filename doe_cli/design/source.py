"""A design file's text and the one-line errors that point into it (file, line, YAML path)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from doe_cli.design.yamlio import line_of
from doe_cli.errors import UserError

SPECIAL_TOP_KEYS = ("$SUITE_VARS$", "$ETL$")


def one_line(message: str) -> str:
    """Errors are one line: line breaks in quoted user text become spaces."""
    return " ".join(message.splitlines())


def format_path(path: tuple, experiments_prefix: bool = True) -> str:
    """`("exp1", "host_types", "client", "$CMD$")` -> `experiments.exp1.host_types.client.$CMD$`.

    Experiments are top-level keys of a design; the `experiments.` prefix makes the path say so.
    """
    text = ""
    for step in path:
        if isinstance(step, int):
            text += f"[{step}]"
        else:
            text += f".{step}" if text else str(step)
    if experiments_prefix and path and path[0] not in SPECIAL_TOP_KEYS:
        text = f"experiments.{text}"
    return text


_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)


def _without_jinja(text: str) -> str:
    """The design text with `{{ }}` replaced by a plain scalar and `{% %}`/`{# #}` removed, newlines kept,
    so that it parses as YAML with the line numbers of the file."""

    def blank(match: re.Match) -> str:
        newlines = "\n" * match.group(0).count("\n")
        return ("_" if match.group(0).startswith("{{") else "") + newlines

    return _JINJA.sub(blank, text)


def describe(value: Any) -> str:
    """A value as an error message shows it: its repr, shortened."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass
class Source:
    """Where design data came from: errors name this file, the key path and its line."""

    file: Path
    text: str | None = None
    experiments_prefix: bool = True
    # the text before the outer {{ }} pass: its line numbers are the ones the user sees, when it parses
    original_text: str | None = None

    def error(self, path: tuple, message: str, line: int | None = None) -> UserError:
        if line is None and path:
            if self.original_text is not None and self.original_text != self.text:
                line = line_of(_without_jinja(self.original_text), path)
            if line is None and self.text is not None:
                line = line_of(self.text, path)
        return UserError(one_line(message), file=str(self.file),
                         path=format_path(path, self.experiments_prefix) or None, line=line)
