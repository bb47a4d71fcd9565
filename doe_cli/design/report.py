"""What the design commands print: the run listing, the extended design as JSON, the suite overview."""

from __future__ import annotations

import json
from dataclasses import dataclass

from doe_cli.config import Project
from doe_cli.design.loader import load_suite
from doe_cli.design.model import CMD, Suite
from doe_cli.errors import UserError


def extended_json(extended: dict) -> str:
    """The extended design (experiment -> run configs) as JSON, key order kept."""
    return json.dumps(extended, indent=2, ensure_ascii=False)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _command_lines(prefix: str, name: str | None, command: str, width: int) -> list[str]:
    label = f"{name}: " if name else ""
    first, *rest = command.splitlines() or [""]
    lines = [f"{prefix:<{width}}{label}{first}"]
    lines.extend(f"{'':<{width + len(label)}}{line}" for line in rest)
    return lines


def design_listing(suite: Suite, extended: dict) -> str:
    """Per experiment and run `run=000 host=<type>-<idx>: <command>`, background commands aligned under
    main; then one summary line per ETL pipeline."""
    lines: list[str] = []
    for name, runs in extended.items():
        exp = suite.experiments[name]
        hosts = ", ".join(f"{ht.name} x{ht.n}" for ht in exp.host_types.values())
        lines.append(f"experiment {name}: {_count(len(runs), 'run')} x "
                     f"{_count(exp.n_repetitions, 'repetition')} = "
                     f"{_count(len(runs) * exp.n_repetitions, 'job')}; hosts: {hosts}")
        digits = max(3, len(str(len(runs) - 1)))
        for index, run_config in enumerate(runs):
            for host_type, commands in run_config[CMD].items():
                for host_idx, host_commands in enumerate(commands):
                    prefix = f"  run={index:0{digits}d} host={host_type}-{host_idx}: "
                    lines.extend(_command_lines(prefix, None, host_commands["main"], len(prefix)))
                    for bg_name, command in host_commands.items():
                        if bg_name != "main":
                            lines.extend(_command_lines("", bg_name, command, len(prefix)))
    for pipeline, spec in suite.etl.items():
        lines.append(_pipeline_summary(pipeline, spec))
    return "\n".join(lines)


def _pipeline_summary(pipeline: str, spec: dict) -> str:
    experiments = spec.get("experiments", [])
    experiments = ", ".join(experiments) if isinstance(experiments, list) else str(experiments)

    def names(key: str) -> str:
        steps = spec.get(key) or []
        if isinstance(steps, dict):
            return ", ".join(steps) or "-"
        # a transformer item is {name: Step, ...} or {df.<method>: {kwargs}}
        return ", ".join(str(s.get("name", next(iter(s), "?"))) if isinstance(s, dict) else str(s)
                         for s in steps) or "-"

    return (f"etl {pipeline}: experiments {experiments or '-'}; extractors {names('extractors')}; "
            f"transformers {names('transformers')}; loaders {names('loaders')}")


@dataclass
class SuiteInfo:
    suite: str
    experiments: list[tuple[str, int, int]]   # name, runs, repetitions
    pipelines: list[str]
    error: str | None = None


def suites_info(project: Project) -> list[SuiteInfo]:
    """Every suite of the config dir with experiments and run counts; an invalid design gets its error."""
    infos = []
    for name in project.suites():
        try:
            suite = load_suite(project, name)
            counts = [(exp.name, exp.n_runs(), exp.n_repetitions) for exp in suite.experiments.values()]
            infos.append(SuiteInfo(name, counts, list(suite.etl)))
        except UserError as error:
            infos.append(SuiteInfo(name, [], [], str(error)))
    return infos


def info_listing(infos: list[SuiteInfo]) -> str:
    lines = []
    for info in infos:
        if info.error:
            lines.append(f"{info.suite}: invalid")
            continue
        jobs = sum(runs * reps for _, runs, reps in info.experiments)
        lines.append(f"{info.suite}: {_count(len(info.experiments), 'experiment')}, {_count(jobs, 'job')}"
                     + (f"; etl: {', '.join(info.pipelines)}" if info.pipelines else ""))
        for name, runs, reps in info.experiments:
            lines.append(f"  {name}: {_count(runs, 'run')} x {_count(reps, 'repetition')} = "
                         f"{_count(runs * reps, 'job')}")
    return "\n".join(lines)
