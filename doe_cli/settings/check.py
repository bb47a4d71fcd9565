"""group_vars into a typed model: one check whose message names the file, the key and what was expected.

A field may say in words what it expects (`expects(...)`): then the message is those words, for the key
as the user wrote it (an alias such as doe-suite's `euler_cpu_cores` included). Otherwise pydantic's own
words are used, with the field's description.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import AliasChoices, BaseModel, ValidationError
from pydantic.fields import FieldInfo

from doe_cli.config import GroupVars
from doe_cli.errors import UserError

Model = TypeVar("Model", bound=BaseModel)
EXPECTED = "doe_expected"
SECRET = "doe_secret"


def expects(words: str, *, secret: bool = False) -> dict[str, Any]:
    """`Field(json_schema_extra=expects(...))`: what a wrong value is told it should have been.

    A secret value (a webhook URL carries its token) is never repeated in the message.
    """
    return {EXPECTED: words, SECRET: secret}


def check(model: type[Model], group_vars: GroupVars) -> Model:
    """The model of these group_vars; a bad value is a UserError naming its file and key."""
    try:
        return model.model_validate(group_vars.values)
    except ValidationError as error:
        raise _user_error(model, error.errors()[0], group_vars) from None


def keys_of(model: type[BaseModel]) -> set[str]:
    """The group_vars keys a model reads: its field names and their aliases."""
    return {key for name, field in model.model_fields.items() for key in (name, *_aliases(field))}


def _user_error(model: type[BaseModel], error: Any, group_vars: GroupVars) -> UserError:
    location = error["loc"]
    key = str(location[0]) if location else None
    field = _field_of(model, key)
    words = _expected_words(field)
    if words is not None:  # the words describe the key's whole value
        got = group_vars.values.get(key) if key is not None else error.get("input")
        shown = "" if _is_secret(field) else f", got {got!r}"
        return UserError(f"expected {words}{shown}", file=group_vars.file_of(key), path=key)
    return UserError(f"{_pydantic_words(error, field)}, got {error.get('input')!r}", file=group_vars.file_of(key),
                     path=_yaml_path(location))


def _expected_words(field: FieldInfo | None) -> str | None:
    extra = field.json_schema_extra if field is not None else None
    return str(extra[EXPECTED]) if isinstance(extra, dict) and EXPECTED in extra else None


def _is_secret(field: FieldInfo | None) -> bool:
    extra = field.json_schema_extra if field is not None else None
    return isinstance(extra, dict) and bool(extra.get(SECRET))


def _field_of(model: type[BaseModel], key: str | None) -> FieldInfo | None:
    for name, field in model.model_fields.items():
        if key == name or key in _aliases(field):
            return field
    return None


def _aliases(field: FieldInfo) -> list[str]:
    alias = field.validation_alias
    if isinstance(alias, str):
        return [alias]
    if isinstance(alias, AliasChoices):
        return [choice for choice in alias.choices if isinstance(choice, str)]
    return []


def _pydantic_words(error: Any, field: FieldInfo | None) -> str:
    what = f" ({field.description})" if field is not None and field.description else ""
    message = str(error.get("msg", "invalid value")).replace("Input should be", "expected")
    return f"{message[0].lower()}{message[1:]}{what}"


def _yaml_path(location: tuple) -> str | None:
    """("notify", 0, "webhook") -> notify[0].webhook, as the design's errors write paths."""
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or None
