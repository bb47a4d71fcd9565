"""The outer `{{ }}` / `{% %}` Jinja pass over a design's raw text, before YAML parsing.

With strict=True (a run) an undefined name is an error. With strict=False (design, validate, info, ETL)
every `{{ ... }}` expression that names an undefined variable is left exactly as written.
"""

from __future__ import annotations

import re
from pathlib import Path

import jinja2
from jinja2 import meta

from doe_cli.design.filters import outer_environment
from doe_cli.design.source import one_line
from doe_cli.errors import UserError

_EXPRESSION = re.compile(r"\{\{.*?\}\}", re.DOTALL)
# The pass repeats while a rendering produces new `{{ }}`; a bound keeps self-producing text from looping.
MAX_PASSES = 10


def outer_pass(text: str, variables: dict, *, strict: bool, file: Path, plugins_dir: Path) -> str:
    if "{{" not in text and "{%" not in text:
        return text
    env = outer_environment(plugins_dir, strict)
    known = set(variables) | set(env.globals)
    for _ in range(MAX_PASSES):
        rendered = _render_once(env, text, variables, known, strict=strict, file=file)
        if rendered == text or "{{" not in rendered or "}}" not in rendered:
            return rendered
        text = rendered
    return text


def _render_once(env: jinja2.Environment, text: str, variables: dict, known: set[str], *,
                 strict: bool, file: Path) -> str:
    kept: list[str] = []
    if not strict:
        try:
            # names read anywhere in the text but set nowhere ({% set %} and loops define names too)
            undefined = meta.find_undeclared_variables(env.parse(text)) - known
        except jinja2.TemplateSyntaxError:
            undefined = set()  # reported by the full render below
        if undefined:
            checker = outer_environment_strict(env)

            def protect(match: re.Match) -> str:
                expression = match.group(0)
                try:
                    names = meta.find_undeclared_variables(env.parse(expression))
                except jinja2.TemplateSyntaxError:
                    return expression
                if not names & undefined:
                    return expression
                try:  # `{{ x | default(1) }}` renders even though x is undefined
                    checker.from_string(expression).render(variables)
                    return expression
                except Exception:  # noqa: BLE001 - any failure keeps the expression as written
                    kept.append(expression)
                    return f"\x00doe-kept-{len(kept) - 1}\x00"

            text = _EXPRESSION.sub(protect, text)
    try:
        rendered = env.from_string(text).render(variables)
    except jinja2.TemplateSyntaxError as error:
        raise UserError(one_line(f"{{{{ }}}} template syntax error: {error.message}"), file=str(file),
                        line=error.lineno) from None
    except jinja2.UndefinedError as error:
        message = f"{{{{ }}}} template: {error.message} (pass it with the command's variables or " \
                  "define it in group_vars/all)"
        raise UserError(one_line(message), file=str(file), line=_error_line(error)) from None
    except Exception as error:  # noqa: BLE001 - errors of filters and expressions in user templates
        message = f"{{{{ }}}} template failed: {type(error).__name__}: {error}"
        raise UserError(one_line(message), file=str(file), line=_error_line(error)) from None
    if kept:
        rendered = re.sub("\x00doe-kept-(\\d+)\x00", lambda m: kept[int(m.group(1))], rendered)
    return rendered


def outer_environment_strict(env: jinja2.Environment) -> jinja2.Environment:
    """A copy of `env` where undefined names raise, to test single expressions."""
    return env.overlay(undefined=jinja2.StrictUndefined)


def _error_line(error: BaseException) -> int | None:
    """The template line of a render error, from the traceback frame Jinja maps to the template."""
    traceback = error.__traceback__
    line = None
    while traceback is not None:
        if traceback.tb_frame.f_code.co_filename == "<template>":
            line = traceback.tb_lineno
        traceback = traceback.tb_next
    return line
