"""The validated suite: experiments, host types, and the extension into run configs."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from doe_cli.design.factors import FactorPlan, Slot
from doe_cli.design.filters import RuntimePlaceholder
from doe_cli.design.includes import copy_data
from doe_cli.design.render import Renderer, RenderError
from doe_cli.design.repetitions import Repetitions
from doe_cli.design.source import Source
from doe_cli.design.yamlio import dump_yaml, write_atomic
from doe_cli.errors import UserError

CMD = "$CMD$"
ETL = "$ETL$"


@dataclass
class HostType:
    name: str
    n: int
    check_status: bool
    init_roles: list[str]
    cmd: list[dict]          # n mappings, each with "main" and optional background commands

    def resolved(self) -> dict:
        return {"n": self.n, "check_status": self.check_status, "init_roles": list(self.init_roles),
                CMD: [dict(c) for c in self.cmd]}


@dataclass
class Experiment:
    name: str
    n_repetitions: int
    common_roles: list[str]
    host_types: dict[str, HostType]
    base_experiment: dict
    factor_levels: list
    except_filters: list
    plan: FactorPlan = field(repr=False)
    job_timeout: float | None = None  # seconds a job may run before it is killed (None: no limit here)
    order: str = "sequential"         # or "rmit": rounds of one rep per run, a seeded permutation each
    seed: int | None = None           # of the order and the bootstrap (None: drawn when the suite starts)
    repetitions: Repetitions | None = None  # adaptive: n_repetitions is the minimum

    def resolved(self) -> dict:
        resolved = {
            "n_repetitions": self.n_repetitions,
            "common_roles": list(self.common_roles),
            "host_types": {name: ht.resolved() for name, ht in self.host_types.items()},
            "base_experiment": self.base_experiment,
            "factor_levels": self.factor_levels,
            "except_filters": self.except_filters,
        }
        if self.job_timeout is not None:
            resolved["job_timeout"] = self.job_timeout
        if self.order != "sequential":
            resolved["order"] = self.order
        if self.seed is not None:
            resolved["seed"] = self.seed
        if self.repetitions is not None:
            resolved["repetitions"] = self.repetitions.resolved()
        return resolved

    def n_runs(self) -> int:
        """Runs after except_filters, counted without building run configs."""
        if not self.plan.filters:
            return self.plan.count_before_filters()
        return sum(1 for _ in self.plan.assignments())

    def max_jobs(self) -> int:
        """Jobs at most: with adaptive repetitions every run may reach `repetitions.max` reps."""
        return self.n_runs() * (self.repetitions.max if self.repetitions else self.n_repetitions)


class _Builder:
    """Builds one run config from an experiment's skeleton (slots filled with the run's levels) and
    collects the strings that are templates as (container, key, path)."""

    __slots__ = ("templates", "values")

    def __init__(self, values: tuple) -> None:
        self.values = values
        self.templates: list = []

    def build_dict(self, node: dict, path: tuple) -> dict:
        out = {}
        for key, value in node.items():
            if type(value) is Slot:
                value = self.values[value.index]
            kind = type(value)
            if kind is str:
                out[key] = value
                if "[%" in value:
                    self.templates.append((out, key, path + (key,)))
            elif kind is dict:
                out[key] = self.build_dict(value, path + (key,))
            elif kind is list:
                out[key] = self.build_list(value, path + (key,))
            else:
                out[key] = value
        return out

    def build_list(self, node: list, path: tuple) -> list:
        out: list = []
        for index, value in enumerate(node):
            kind = type(value)
            if kind is str:
                out.append(value)
                if "[%" in value:
                    self.templates.append((out, index, path + (index,)))
            elif kind is dict:
                out.append(self.build_dict(value, path + (index,)))
            elif kind is list:
                out.append(self.build_list(value, path + (index,)))
            else:
                out.append(value)
        return out


@dataclass
class Suite:
    name: str
    experiments: dict[str, Experiment]
    etl: dict
    source: Source
    renderer: Renderer = field(repr=False)

    @property
    def resolved(self) -> dict:
        """Content of suite_design.yml (a fresh copy: callers may change it)."""
        content: dict[str, Any] = {name: exp.resolved() for name, exp in self.experiments.items()}
        content[ETL] = self.etl
        return copy_data(content)

    def filter(self, regex: str) -> Suite:
        """Only the experiments whose name matches `regex` (re.match); pipelines keep only those."""
        try:
            pattern = re.compile(regex)
        except re.error as error:
            raise UserError(f"invalid regular expression {regex!r}: {error}", path="expfilter") from None
        kept = {name: exp for name, exp in self.experiments.items() if pattern.match(name)}
        if not kept:
            raise UserError(f"no experiment matches {regex!r}; experiments: {', '.join(self.experiments)}",
                            file=str(self.source.file), path="expfilter")
        etl = {}
        for pipeline, spec in self.etl.items():
            selected = [e for e in spec.get("experiments", []) if e in kept] \
                if isinstance(spec.get("experiments"), list) else spec.get("experiments")
            if selected:
                etl[pipeline] = {**spec, "experiments": selected}
        return replace(self, experiments=kept, etl=etl)

    def extend(self, exp_host_lst: dict[str, list[dict]] | None = None, *,
               check_commands: bool | None = None) -> dict[str, list[dict]]:
        """Experiment -> list of run configs (suite_design_ext.yml); run index = list index.

        `check_commands` (default: when hosts are given, i.e. for a run) checks each distinct command's
        shell syntax without executing it.
        """
        extended = {name: self._extend_experiment(exp, exp_host_lst)
                    for name, exp in self.experiments.items()}
        if check_commands if check_commands is not None else exp_host_lst is not None:
            from doe_cli.design.cmdcheck import check_extended_commands

            check_extended_commands(extended, self.source.file, hosts_known=exp_host_lst is not None)
        return extended

    def _extend_experiment(self, exp: Experiment, exp_host_lst: dict | None) -> list[dict]:
        if exp_host_lst is None:
            hosts: Any = RuntimePlaceholder(name="exp_host_lst")
        else:
            hosts = exp_host_lst.get(exp.name)
            if hosts is None:
                raise UserError(f"no hosts given for experiment {exp.name!r}", file=str(self.source.file),
                                path=f"experiments.{exp.name}")
        skeleton = exp.plan.skeleton
        # $CMD$ holds only strings and never a factor: its shape and template positions are fixed
        cmd_skeleton = {name: ht.cmd for name, ht in exp.host_types.items()}
        cmd_templates = [(host_type, idx, key, (CMD, host_type, idx, key))
                         for host_type, commands in cmd_skeleton.items()
                         for idx, command in enumerate(commands)
                         for key, text in command.items() if "[%" in text]
        renderer = self.renderer
        runs = []
        for run_index, values in enumerate(exp.plan.assignments()):
            builder = _Builder(values)
            run_config = builder.build_dict(skeleton, ())
            cmd = {host_type: [dict(command) for command in commands]
                   for host_type, commands in cmd_skeleton.items()}
            templates = [(cmd[host_type][idx], key, path) for host_type, idx, key, path in cmd_templates]
            try:
                renderer.render_run(run_config, builder.templates, templates, run_index, hosts)
            except RenderError as error:
                raise self._render_error(exp, run_index, error) from None
            run_config[CMD] = cmd
            runs.append(run_config)
        return runs

    def _render_error(self, exp: Experiment, run_index: int, error: RenderError) -> UserError:
        if error.path and error.path[0] == CMD:
            where = (exp.name, "host_types", error.path[1], CMD)
        else:
            where = (exp.name, "base_experiment") + error.path
        return self.source.error(where, f"run {run_index}: {error.message}")

    def write_resolved(self, path: str | Path) -> None:
        """Atomically write suite_design.yml."""
        write_atomic(path, dump_yaml(self.resolved))
