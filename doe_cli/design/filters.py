"""Jinja environments for designs: built-in filters, host helpers and the project's filter plugins.

Host helpers accept the `exp_host_lst` of a run (a list of hosts, each with host_type, host_type_idx,
host_type_n, public_dns_name, private_dns_name and hostvars). At design time there are no hosts: the
list is a `RuntimePlaceholder` and every lookup returns a visible, shell-safe placeholder such as
`@server[0].public_dns_name@`.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
import jmespath
import yaml

from doe_cli.errors import UserError

_UNSAFE_IN_PLACEHOLDER = re.compile(r"[^\w.,:=?|\[\]-]")


class RuntimePlaceholder(jinja2.Undefined):
    """Stands for a value only known at run time; renders as `@<expression>@` and chains lookups."""

    __slots__ = ()

    def __str__(self) -> str:
        # shell-safe: commands with placeholders still pass the syntax check at design time
        return "@" + _UNSAFE_IN_PLACEHOLDER.sub("", str(self._undefined_name)) + "@"

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return RuntimePlaceholder(name=f"{self._undefined_name}.{name}")

    # Jinja's Undefined fails on any item; a placeholder stands for a value known only at runtime.
    def __getitem__(self, key: Any) -> RuntimePlaceholder:  # type: ignore[override]
        return RuntimePlaceholder(name=f"{self._undefined_name}[{key}]")

    # It acts as a list of one unknown element, so `| first`, `| map(...) | list`, loops and tests on it
    # give placeholders instead of errors or silently empty text.
    def __iter__(self):
        yield RuntimePlaceholder(name=f"{self._undefined_name}[0]")

    def __reversed__(self):
        return iter(self)

    def __len__(self) -> int:
        return 1

    def __bool__(self) -> bool:
        return True

    def __repr__(self) -> str:
        return str(self)


_MISSING = object()


def _placeholder(what: str) -> RuntimePlaceholder:
    return RuntimePlaceholder(name=what)


def _hosts_of_type(exp_host_lst: list, host_type: str) -> list[dict]:
    return sorted((h for h in exp_host_lst if h.get("host_type") == host_type),
                  key=lambda h: h.get("host_type_idx", 0))


def _host(exp_host_lst: list, host_type: str, host_type_idx: int) -> dict:
    hosts = _hosts_of_type(exp_host_lst, host_type)
    if not 0 <= int(host_type_idx) < len(hosts):
        raise ValueError(f"the experiment has {len(hosts)} host(s) of type {host_type!r}; "
                         f"no index {host_type_idx}")
    return hosts[int(host_type_idx)]


def to_public_dns_name(exp_host_lst: Any, host_type: str, host_type_idx: int = 0,
                       default: Any = None) -> Any:
    """The public DNS name of host `host_type_idx` of `host_type`."""
    if isinstance(exp_host_lst, jinja2.Undefined):
        if default is not None:
            return default
        return _placeholder(f"{host_type}[{host_type_idx}].public_dns_name")
    return _host(exp_host_lst, host_type, host_type_idx)["public_dns_name"]


def to_private_dns_name(exp_host_lst: Any, host_type: str, host_type_idx: int = 0,
                        default: Any = None) -> Any:
    """The private DNS name of host `host_type_idx` of `host_type` (what the suite's hosts connect to)."""
    if isinstance(exp_host_lst, jinja2.Undefined):
        if default is not None:
            return default
        return _placeholder(f"{host_type}[{host_type_idx}].private_dns_name")
    return _host(exp_host_lst, host_type, host_type_idx)["private_dns_name"]


def to_ipv4(exp_host_lst: Any, host_type: str, host_type_idx: int = 0,
            default: Any = None) -> Any:
    """The IPv4 address of host `host_type_idx` of `host_type`: the gathered default address if known,
    else the cloud's private IP, else the inventory address."""
    if isinstance(exp_host_lst, jinja2.Undefined):
        return default if default is not None else _placeholder(f"{host_type}[{host_type_idx}].ipv4")
    host = _host(exp_host_lst, host_type, host_type_idx)
    hostvars = host.get("hostvars") or {}
    gathered = (hostvars.get("ansible_default_ipv4") or {}).get("address")
    return (gathered or hostvars.get("private_ip_address") or hostvars.get("ansible_host")
            or host.get("private_dns_name"))


def at_runtime(var: str, exp_host_lst: Any, host_type: str | None = None, host_type_idx: int = 0) -> Any:
    """The value of host variable `var`: on host `host_type_idx` of `host_type`, or, without a host type,
    the value all hosts of the experiment agree on."""
    if isinstance(exp_host_lst, jinja2.Undefined):
        return _placeholder(f"at_runtime:{var}")
    hosts = [_host(exp_host_lst, host_type, host_type_idx)] if host_type is not None else list(exp_host_lst)
    values = [(h.get("hostvars") or {}).get(var, _MISSING) for h in hosts]
    if not values or _MISSING in values:
        raise ValueError(f"at_runtime({var!r}): not a variable of every host")
    if any(v != values[0] for v in values):
        raise ValueError(f"at_runtime({var!r}): the hosts disagree: {values}")
    return values[0]


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("y", "yes", "t", "true", "on", "1"):
        return True
    if text in ("n", "no", "f", "false", "off", "0", ""):
        return False
    raise ValueError(f"bool: cannot read {value!r} as a boolean")


def _json_query(data: Any, expression: str) -> Any:
    if isinstance(data, jinja2.Undefined):
        return _placeholder(f"{data._undefined_name}|json_query({expression})")
    return jmespath.search(expression, data)


def _quote(value: Any) -> str:
    return shlex.quote(str(value))


def _regex_replace(value: Any, pattern: str, replacement: str = "", ignorecase: bool = False) -> str:
    return re.sub(pattern, replacement, str(value), flags=re.IGNORECASE if ignorecase else 0)


def _lookup(kind: str, *names: str, default: str = "") -> str:
    if kind != "env":
        raise ValueError(f"lookup({kind!r}): only lookup('env', NAME) is supported in designs")
    return ",".join(os.environ.get(name, default) for name in names)


BUILTIN_FILTERS: dict[str, Callable] = {
    "bool": _to_bool,
    "ceil": lambda x: math.ceil(float(x)),
    "floor": lambda x: math.floor(float(x)),
    "json_query": _json_query,
    "quote": _quote,
    "to_json": lambda x: json.dumps(x, sort_keys=False),
    "to_nice_json": lambda x: json.dumps(x, indent=4, sort_keys=True),
    "from_json": json.loads,
    "to_yaml": lambda x: yaml.safe_dump(x, default_flow_style=True, sort_keys=False).strip(),
    "regex_replace": _regex_replace,
    "basename": os.path.basename,
    "dirname": os.path.dirname,
    "to_public_dns_name": to_public_dns_name,
    "to_private_dns_name": to_private_dns_name,
    "to_ipv4": to_ipv4,
    "at_runtime": at_runtime,
}

_plugin_cache: dict[tuple, dict[str, Callable]] = {}


def load_filter_plugins(plugins_dir: Path) -> dict[str, Callable]:
    """Filters from every `FilterModule().filters()` in `plugins_dir/*.py`; an import error is a UserError."""
    if not plugins_dir.is_dir():
        return {}
    files = sorted(plugins_dir.glob("*.py"))
    key = tuple((str(f), f.stat().st_mtime_ns) for f in files)
    if key in _plugin_cache:
        return _plugin_cache[key]
    filters: dict[str, Callable] = {}
    for index, file in enumerate(files):
        module_name = f"doe_design_filter_plugin_{index}_" + re.sub(r"\W", "_", file.stem)
        try:
            spec = importlib.util.spec_from_file_location(module_name, file)
            if spec is None or spec.loader is None:
                raise ImportError("not a Python module")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            found = module.FilterModule().filters() if hasattr(module, "FilterModule") else {}
        except Exception as error:  # noqa: BLE001 - any failure of user code is reported, not raised
            reason = " ".join(f"{type(error).__name__}: {error}".splitlines())
            raise UserError(f"filter plugin failed to load: {reason}", file=str(file)) from None
        if not isinstance(found, dict):
            raise UserError("FilterModule().filters() must return a mapping name -> function", file=str(file))
        filters.update(found)
    _plugin_cache[key] = filters
    return filters


# A JSON escape sequence: \" \\ \/ \b \f \n \r \t or \uXXXX.
_JSON_ESCAPE = re.compile(r'\\(["\\/bfnrt]|u[0-9a-fA-F]{4})')
_JSON_UNESCAPED = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def doe_suite_inserted(value: Any) -> Any:
    """A `[% %]` output as doe-suite inserts it: doe-suite renders the run config's JSON text and parses it
    again, so JSON escapes in an inserted string are read once (designs write `\\"` for a quote that
    survives). Other backslashes and bare quotes, which break doe-suite's parse, stay as they are."""
    if not isinstance(value, str) or "\\" not in value:
        return value
    return _JSON_ESCAPE.sub(
        lambda m: _JSON_UNESCAPED.get(m.group(1)) or chr(int(m.group(1)[1:], 16)), value
    )


def _environment(plugins: dict[str, Callable], undefined: type, **delimiters: Any) -> jinja2.Environment:
    env = jinja2.Environment(undefined=undefined, keep_trailing_newline=True, autoescape=False,
                             **delimiters)
    env.filters.update(BUILTIN_FILTERS)
    env.filters.update(plugins)
    env.globals["lookup"] = _lookup
    return env


def inner_environment(plugins_dir: Path) -> jinja2.Environment:
    """The per-run `[% %]` environment; an undefined name is an error."""
    return _environment(load_filter_plugins(plugins_dir), jinja2.StrictUndefined,
                        variable_start_string="[%", variable_end_string="%]", finalize=doe_suite_inserted)


def outer_environment(plugins_dir: Path, strict: bool) -> jinja2.Environment:
    """The `{{ }}` environment over the design text."""
    return _environment(load_filter_plugins(plugins_dir),
                        jinja2.StrictUndefined if strict else jinja2.Undefined)
