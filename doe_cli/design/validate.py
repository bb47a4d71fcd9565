"""Validation and defaults: from a parsed design to Experiment objects, one error at a time."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from doe_cli.config import TOOL_ROLES_DIR, Project
from doe_cli.design.factors import plan_factors
from doe_cli.design.includes import IncludeResolver, merge_missing
from doe_cli.design.markers import check_variables, is_marker, unknown_marker
from doe_cli.design.model import CMD, Experiment, HostType
from doe_cli.design.repetitions import check_repetitions
from doe_cli.design.source import Source, describe

SUITE_VARS = "$SUITE_VARS$"
ETL = "$ETL$"
EXPERIMENT_NAME = re.compile(r"^[A-Za-z0-9_]+$")
MAX_NAME_LENGTH = 200
RESERVED_NAMES = frozenset({
    "state", "$FACTOR$", "is_controller_yes", "is_controller_no", "check_status_yes", "check_status_no",
    "localhost", "n_repetitions", "common_roles", "host_types", "base_experiment", "factor_levels", "n",
    "init_roles", "check_status", "$CMD$",
})
EXPERIMENT_KEYS = ("n_repetitions", "common_roles", "host_types", "base_experiment", "factor_levels",
                   "except_filters", "job_timeout", "order", "seed", "repetitions")
ORDERS = ("sequential", "rmit")
HOST_TYPE_KEYS = ("n", "check_status", "init_roles", CMD)
NOT_HOST_TYPES = ("all", "ansible_controller")
# Host types and roles name folders; these names cannot step out of group_vars/ or roles/.
FOLDER_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
# `run` is the run index inside [% %] templates; doe-suite designs may not define a variable of that name.
RESERVED_VARIABLES = ("run",)


class DesignValidator:
    def __init__(self, project: Project, source: Source) -> None:
        self.project = project
        self.source = source
        self.includes = IncludeResolver(project.design_vars_dir, source)

    def error(self, path: tuple, message: str):
        return self.source.error(path, message)

    # --- suite -------------------------------------------------------------------------------------
    def experiments(self, raw: Any) -> dict[str, Experiment]:
        if raw is None:
            raise self.error((), "the design is empty; expected a mapping of experiment names to experiments")
        if type(raw) is not dict:
            raise self.error((), f"a design must be a mapping of experiment names to experiments, "
                                 f"got {type(raw).__name__}")
        suite_vars = self._suite_vars(raw.get(SUITE_VARS))
        names = [key for key in raw if key not in (SUITE_VARS, ETL)]
        if not names:
            raise self.error((), "the design defines no experiment; expected at least one top-level "
                                 "experiment name besides $SUITE_VARS$ and $ETL$")
        experiments = {}
        for name in names:
            self._check_name(name)
            experiments[name] = self.experiment(name, raw[name], suite_vars)
        return experiments

    def _suite_vars(self, value: Any) -> dict:
        if value is None:
            return {}
        if type(value) is not dict:
            raise self.error((SUITE_VARS,), f"expected a mapping of variables, got {describe(value)}")
        check_variables(value, (SUITE_VARS,), self.source)
        return self.includes.resolve(value, (SUITE_VARS,))

    def _check_name(self, name: Any) -> None:
        if is_marker(name):
            raise self.error((name,), unknown_marker(name, (SUITE_VARS, ETL)))
        if not isinstance(name, str) or not EXPERIMENT_NAME.match(name):
            raise self.error((name,), f"invalid experiment name {name!r}: expected letters, digits and "
                                      "underscores only (^[A-Za-z0-9_]+$); the only $...$ top-level keys are "
                                      "$SUITE_VARS$ and $ETL$")
        if len(name) > MAX_NAME_LENGTH:
            raise self.error((name,), f"experiment name is {len(name)} characters long; at most "
                                      f"{MAX_NAME_LENGTH} allowed")
        if name in RESERVED_NAMES:
            raise self.error((name,), f"{name!r} is a reserved word and cannot name an experiment")

    # --- experiment --------------------------------------------------------------------------------
    def experiment(self, name: str, raw: Any, suite_vars: dict) -> Experiment:
        path = (name,)
        if type(raw) is not dict:
            raise self.error(path, f"an experiment must be a mapping with keys {', '.join(EXPERIMENT_KEYS)}, "
                                   f"got {describe(raw)}")
        self._unknown_keys(raw, EXPERIMENT_KEYS, path, "experiment")
        for required in ("host_types", "base_experiment"):
            if required not in raw:
                raise self.error(path, f"missing required key {required!r}")
        n_repetitions = self._positive_int(raw.get("n_repetitions", 1), path + ("n_repetitions",))
        job_timeout = self._seconds(raw.get("job_timeout"), path + ("job_timeout",))
        order = raw.get("order", "sequential")
        if order not in ORDERS:
            raise self.error(path + ("order",), f"expected one of {', '.join(ORDERS)}, got {describe(order)}")
        seed = raw.get("seed")
        if seed is not None and (type(seed) is not int or seed < 0):
            raise self.error(path + ("seed",), f"expected a non-negative integer, got {describe(seed)}")
        repetitions = None
        if raw.get("repetitions") is not None:
            repetitions = check_repetitions(self.source, raw["repetitions"], n_repetitions,
                                            path + ("repetitions",))
        common_roles = self._roles(raw.get("common_roles", []), path + ("common_roles",))
        host_types = self._host_types(raw["host_types"], path + ("host_types",))
        base = self._base(raw["base_experiment"], suite_vars, path + ("base_experiment",))
        factor_levels = raw.get("factor_levels", [{}])
        if type(factor_levels) is not list or not factor_levels:
            raise self.error(path + ("factor_levels",), f"expected a non-empty list of mappings, "
                                                        f"got {describe(factor_levels)}")
        except_filters = raw.get("except_filters", [])
        if except_filters is None:
            except_filters = []
        if type(except_filters) is not list:
            raise self.error(path + ("except_filters",), f"expected a list of mappings, "
                                                         f"got {describe(except_filters)}")
        plan = plan_factors(base, factor_levels, except_filters, self.source, path)
        experiment = Experiment(name=name, n_repetitions=n_repetitions, common_roles=common_roles,
                                host_types=host_types, base_experiment=base, factor_levels=factor_levels,
                                except_filters=except_filters, plan=plan, job_timeout=job_timeout, order=order,
                                seed=seed, repetitions=repetitions)
        if plan.filters and experiment.n_runs() == 0:
            raise self.error(path + ("except_filters",), "every run is excluded by except_filters; "
                                                         "expected at least one run left")
        return experiment

    def _unknown_keys(self, raw: dict, allowed: tuple, path: tuple, what: str) -> None:
        for key in raw:
            if is_marker(key) and key not in allowed:
                raise self.error(path + (key,), unknown_marker(key, [k for k in allowed if is_marker(k)]))
            if key not in allowed:
                raise self.error(path + (key,), f"unknown {what} key {key!r}; expected one of "
                                                f"{', '.join(allowed)}")

    def _positive_int(self, value: Any, path: tuple) -> int:
        if type(value) is not int or value < 1:
            raise self.error(path, f"expected a positive integer, got {describe(value)}")
        return value

    def _seconds(self, value: Any, path: tuple) -> float | None:
        """An optional positive number of seconds (bool is no number here)."""
        if value is None:
            return None
        if type(value) not in (int, float) or not value > 0 or value == float("inf"):
            raise self.error(path, f"expected a positive number of seconds, got {describe(value)}")
        return value

    def _roles(self, value: Any, path: tuple) -> list[str]:
        if value is None:
            return []
        roles = [value] if isinstance(value, str) else value
        if type(roles) is not list or not all(isinstance(r, str) and r for r in roles):
            raise self.error(path, f"expected a role name or a list of role names, got {describe(value)}")
        for index, role in enumerate(roles):
            if not FOLDER_NAME.match(role) or ".." in role or \
                    not (self.project.roles_dir / role).is_dir() and not (TOOL_ROLES_DIR / role).is_dir():
                where = path + (index,) if isinstance(value, list) else path
                available = ", ".join(self._available_roles()) or "none"
                raise self.error(where, f"unknown role {role!r}: expected a folder roles/{role}/ in the "
                                        f"config dir (available: {available})")
        return list(roles)

    def _available_roles(self) -> list[str]:
        roles: set[str] = set()
        for folder in (self.project.roles_dir, TOOL_ROLES_DIR):
            if folder.is_dir():
                roles.update(p.name for p in folder.iterdir() if p.is_dir())
        return sorted(roles)

    def _available_host_types(self) -> list[str]:
        folder = self.project.group_vars_dir
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name not in NOT_HOST_TYPES)

    # --- host types --------------------------------------------------------------------------------
    def _host_types(self, raw: Any, path: tuple) -> dict[str, HostType]:
        if type(raw) is not dict or not raw:
            raise self.error(path, f"expected a non-empty mapping host type -> host-type spec, "
                                   f"got {describe(raw)}")
        return {name: self._host_type(name, spec, path + (name,)) for name, spec in raw.items()}

    def _host_type(self, name: Any, spec: Any, path: tuple) -> HostType:
        if name in NOT_HOST_TYPES:
            available = ", ".join(self._available_host_types()) or "none"
            raise self.error(path, f"unknown host type {name!r}: group_vars/{name}/ holds settings, "
                                   f"not a host type (available: {available})")
        if not isinstance(name, str) or not FOLDER_NAME.match(name) or ".." in name \
                or not (self.project.group_vars_dir / name).is_dir():
            available = ", ".join(self._available_host_types()) or "none"
            raise self.error(path, f"unknown host type {name!r}: expected a folder group_vars/{name}/ in "
                                   f"the config dir (available: {available})")
        if type(spec) is not dict:
            raise self.error(path, f"expected a mapping with keys {', '.join(HOST_TYPE_KEYS)}, "
                                   f"got {describe(spec)}")
        self._unknown_keys(spec, HOST_TYPE_KEYS, path, "host-type")
        n = self._positive_int(spec.get("n", 1), path + ("n",))
        check_status = spec.get("check_status", True)
        if type(check_status) is not bool:
            raise self.error(path + ("check_status",),
                             f"expected true or false, got {describe(check_status)}")
        init_roles = self._roles(spec.get("init_roles", []), path + ("init_roles",))
        if CMD not in spec:
            raise self.error(path, "missing required key '$CMD$' (the command each job runs)")
        cmd = self._cmd(spec[CMD], n, path + (CMD,))
        return HostType(name=name, n=n, check_status=check_status, init_roles=init_roles, cmd=cmd)

    def _cmd(self, raw: Any, n: int, path: tuple) -> list[dict]:
        if isinstance(raw, str):
            return [self._cmd_mapping({"main": raw}, path) for _ in range(n)]
        if type(raw) is dict:
            return [self._cmd_mapping(raw, path) for _ in range(n)]
        if type(raw) is list:
            if len(raw) != n:
                raise self.error(path, "a list of commands needs one entry per host: "
                                       f"expected n={n} entries, got {len(raw)}")
            return [self._cmd_mapping({"main": item} if isinstance(item, str) else item, path + (index,))
                    for index, item in enumerate(raw)]
        raise self.error(path, f"expected a command string, a mapping with 'main' and background commands, "
                               f"or a list of n of these, got {describe(raw)}")

    def _cmd_mapping(self, raw: Any, path: tuple) -> dict:
        if type(raw) is not dict:
            raise self.error(path, "expected a command string or a mapping with 'main', "
                                   f"got {describe(raw)}")
        if "main" not in raw:
            raise self.error(path, "a command mapping needs a 'main' command (other keys name background "
                                   f"commands); got keys {', '.join(str(k) for k in raw)}")
        for key, command in raw.items():
            if not isinstance(key, str) or not key:
                raise self.error(path, f"command names must be strings, got {key!r}")
            if not isinstance(command, str) or not command.strip():
                raise self.error(path + (key,),
                                 f"expected a non-empty command string, got {describe(command)}")
        return dict(raw)

    # --- base experiment ---------------------------------------------------------------------------
    def _base(self, raw: Any, suite_vars: dict, path: tuple) -> dict:
        if raw is None:
            raw = {}
        if type(raw) is not dict:
            raise self.error(path, f"expected a mapping (the run config template), got {describe(raw)}")
        check_variables(raw, path, self.source)
        base = self.includes.resolve(raw, path)
        merge_missing(base, suite_vars)
        for name in RESERVED_VARIABLES:
            if name in base:
                raise self.error(path + (name,), f"{name!r} is reserved (the run index in [% %] templates); "
                                                 "rename this variable")
        return base


def experiments_from_design(project: Project, raw: Any, source: Source) -> dict[str, Experiment]:
    return DesignValidator(project, source).experiments(raw)


def check_group_vars(project: Project, file: Path) -> None:
    all_vars = project.group_vars_dir / "all" / "main.yml"
    if not all_vars.is_file():
        raise Source(file).error((), f"group_vars/all/main.yml is missing in the config dir "
                                     f"{project.config_dir}; expected the project-wide settings there")

