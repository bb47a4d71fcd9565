"""Inventories with Jinja, as doe-suite renders them: `inventory/<cloud>.yml` may loop over the suite's
host types and use group_vars, environment lookups and Ansible's `mandatory` and `bool` filters. doe-suite's
own `euler.yml` does all of these:

    # {{ ('True' if is_single_host_per_host_type | bool) | mandatory('only single-host experiments') }}
    {% for ht, exps in host_types.items() %} ... ansible_user: {{ euler_user }} ...

The variables: `suite`, `cloud`, `host_types` ({host type: {experiment: {n, check_status, init_roles}}}),
`is_single_host_per_host_type`, `is_single_host_type_per_exp`, group_vars/all's keys (their own templates
rendered when read, as Ansible does), doe-suite's environment defaults (`euler_user` from
$DOES_EULER_USER, `does_project_id_suffix`, ...). Only the names a template uses are computed: the
suite's design is loaded only for an inventory that reads `host_types` or its flags.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import jinja2
import jinja2.meta
import jinja2.nativetypes

from doe_cli.config import Project, group_var_true, holds_template, load_group_vars
from doe_cli.errors import UserError

# {host type: {experiment: {"n": ..., "check_status": ..., "init_roles": [...]}}}, doe-suite's shape
HostTypes = dict[str, dict[str, dict[str, Any]]]
_DESIGN_NAMES = ("host_types", "is_single_host_per_host_type", "is_single_host_type_per_exp")
GROUP_VARS_FILE = "group_vars/all/main.yml"


class InventoryVars:
    """The variables an inventory template may read, each computed when first read."""

    def __init__(self, *, suite: str | None, cloud: str, group_vars: dict[str, Any],
                 defaults: dict[str, Any], host_types: Callable[[], HostTypes] | None,
                 files: dict[str, str] | None = None) -> None:
        self._fixed: dict[str, Any] = {"cloud": cloud, **({"suite": suite} if suite else {})}
        self._group_vars = group_vars
        self._files = files or {}  # a group var -> the file that sets it (default group_vars/all/main.yml)
        self._defaults = defaults
        self._host_types = host_types
        self._rendered: dict[str, Any] = {}
        self._resolving: set[str] = set()

    def names(self) -> set[str]:
        design = set(_DESIGN_NAMES) if self._host_types is not None else set()
        return {*self._fixed, *self._group_vars, *self._defaults, *design}

    def get(self, name: str, file: str) -> Any:
        """The variable's value; a template inside a group var is rendered first (with these variables)."""
        if name in self._fixed:
            return self._fixed[name]
        if name in _DESIGN_NAMES and self._host_types is not None:
            return self._design_value(name)
        if name in self._rendered:
            return self._rendered[name]
        group_var_file = self._files.get(name, GROUP_VARS_FILE)
        if name in self._resolving:
            raise UserError("template error: the value is defined in terms of itself", file=group_var_file,
                            path=name)
        raw = self._group_vars[name] if name in self._group_vars else self._defaults[name]
        self._resolving.add(name)
        try:
            value = self._render_value(raw, group_var_file if name in self._group_vars else file)
        finally:
            self._resolving.discard(name)
        self._rendered[name] = value
        return value

    def _design_value(self, name: str) -> Any:
        assert self._host_types is not None
        host_types = self._host_types()
        if name == "host_types":
            return host_types
        if name == "is_single_host_per_host_type":
            return all(spec["n"] == 1 for exps in host_types.values() for spec in exps.values())
        per_exp: dict[str, int] = {}
        for exps in host_types.values():
            for exp in exps:
                per_exp[exp] = per_exp.get(exp, 0) + 1
        return all(count == 1 for count in per_exp.values())

    def _render_value(self, value: Any, file: str) -> Any:
        if isinstance(value, str) and holds_template(value):
            return render(value, file, self, native=True)
        if isinstance(value, dict):
            return {key: self._render_value(item, file) for key, item in value.items()}
        if isinstance(value, list):
            return [self._render_value(item, file) for item in value]
        return value


def inventory_vars(project: Project, *, suite: str | None, cloud: str,
                   host_types: Callable[[], HostTypes] | None = None) -> InventoryVars:
    """The variables of `project`'s inventory templates; `host_types` loads the suite's (when it has one)."""
    return InventoryVars(suite=suite, cloud=cloud, group_vars=load_group_vars(project, "all"),
                         defaults=environment_defaults(project), host_types=host_types)


def suite_host_types(suite: Any) -> HostTypes:
    """A design's host types in doe-suite's shape: {host type: {experiment: {n, check_status, init_roles}}}."""
    found: HostTypes = {}
    for exp in suite.experiments.values():
        for name, host_type in exp.host_types.items():
            found.setdefault(name, {})[exp.name] = {"n": host_type.n, "check_status": host_type.check_status,
                                                    "init_roles": list(host_type.init_roles)}
    return found


def environment_defaults(project: Project) -> dict[str, Any]:
    """doe-suite's variables from its environment (its tool defaults), lowest precedence."""
    found: dict[str, Any] = {
        "does_project_id_suffix": os.environ.get("DOES_PROJECT_ID_SUFFIX", ""),
        "does_project_dir": os.environ.get("DOES_PROJECT_DIR") or str(project.config_dir.parent),
        "does_config_dir": str(project.config_dir),
    }
    if os.environ.get("DOES_EULER_USER"):
        found["euler_user"] = os.environ["DOES_EULER_USER"]
    return found


def render(text: str, file: str, variables: InventoryVars, *, native: bool = False) -> Any:
    """The template with the variables it reads; a problem is a UserError naming the file (and line)."""
    environment = _environment(file, native)
    try:
        parsed = environment.parse(text)
        used = jinja2.meta.find_undeclared_variables(parsed)
        known = variables.names()
        context = {name: variables.get(name, file) for name in sorted(used) if name in known}
        return environment.from_string(parsed).render(**context)
    except jinja2.TemplateSyntaxError as error:
        raise UserError(f"template error: {error.message}", file=file, line=error.lineno) from None
    except jinja2.UndefinedError as error:
        raise UserError(f"template error: {error.message}", file=file) from None
    except (TypeError, ValueError, AttributeError) as error:
        raise UserError(f"template error: {error}", file=file) from None


def _environment(file: str, native: bool) -> jinja2.Environment:
    kind = jinja2.nativetypes.NativeEnvironment if native else jinja2.Environment
    environment = kind(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)

    def lookup(kind: str, name: str, default: str | None = None) -> str:
        if kind not in ("env", "ansible.builtin.env"):
            raise UserError(f"only lookup('env', ...) is supported in inventories, not {kind!r}", file=file)
        value = os.environ.get(name, default)
        if value is None:
            raise UserError(f"environment variable {name} is not set", file=file)
        return value

    def mandatory(value: Any, msg: str | None = None) -> Any:
        # Ansible's filter: a value that is not defined stops with the template's own message.
        if isinstance(value, jinja2.Undefined):
            raise UserError(msg or f"mandatory variable {value._undefined_name or ''} is not defined".strip(),
                            file=file)
        return value

    environment.globals["lookup"] = lookup
    environment.filters["mandatory"] = mandatory
    environment.filters["ansible.builtin.mandatory"] = mandatory
    environment.filters["bool"] = group_var_true
    environment.filters["ansible.builtin.bool"] = group_var_true
    return environment
