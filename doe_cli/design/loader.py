"""Loading a suite: design file -> outer `{{ }}` pass -> YAML -> validation -> Suite."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from doe_cli.config import Project
from doe_cli.design.filters import inner_environment
from doe_cli.design.includes import copy_data
from doe_cli.design.model import ETL, Suite
from doe_cli.design.outer import outer_pass
from doe_cli.design.render import Renderer
from doe_cli.design.source import Source
from doe_cli.design.validate import check_group_vars, experiments_from_design
from doe_cli.design.yamlio import parse_yaml
from doe_cli.errors import UserError

_SUITE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def group_vars_all(project: Project) -> dict:
    """The variables of group_vars/all/ (main.yml first, then the other YAML files by name)."""
    folder = project.group_vars_dir / "all"
    files = sorted(folder.glob("*.y*ml"), key=lambda f: (f.name != "main.yml", f.name)) \
        if folder.is_dir() else []
    variables: dict = {}
    for file in files:
        content = parse_yaml(file.read_text(encoding="utf-8"), file)
        if content is None:
            continue
        if type(content) is not dict:
            raise UserError(f"expected a mapping of variables, got {type(content).__name__}", file=str(file))
        variables.update(content)
    return variables


def design_path(project: Project, suite: str) -> Path:
    if not isinstance(suite, str) or not _SUITE_NAME.match(suite):
        raise UserError(f"invalid suite name {suite!r}: expected the name of a file designs/<suite>.yml",
                        path="suite")
    file = project.design_file(suite)
    if not file.is_file():
        raise UserError(f"no design {suite!r}: expected {file.name} in {project.designs_dir} "
                        f"(suites: {', '.join(project.suites()) or 'none'})", path="suite")
    return file


def load_raw_design(project: Project, suite: str, variables: dict | None = None,
                    strict: bool = False) -> tuple[Any, Source]:
    """The design after the outer pass and YAML parsing, and its Source for error messages."""
    file = design_path(project, suite)
    original = file.read_text(encoding="utf-8")
    context = {**group_vars_all(project), **(variables or {})}
    text = outer_pass(original, context, strict=strict, file=file, plugins_dir=project.filter_plugins_dir)
    return parse_yaml(text, file), Source(file, text, original_text=original)


def design_loader(project: Project):
    """For ETL sources `{suite: X, pipeline: P}`: suite name -> raw design mapping."""

    def load(suite: str) -> dict:
        raw, _ = load_raw_design(project, suite)
        return raw

    return load


def _etl_path_tuple(path: str | None) -> tuple:
    """`$ETL$.timing.transformers[0]` -> ("$ETL$", "timing", "transformers", 0) for the line lookup."""
    if not path:
        return (ETL,)
    steps: list = []
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        steps.append(int(part[1:-1]) if part.startswith("[") else part)
    return tuple(steps)


def expand_etl(project: Project, section: Any, experiment_names: list[str], source: Source) -> dict:
    if section is None:
        return {}
    try:
        from etl.design_section import expand_etl_section
        from etl.errors import EtlConfigError
    except ModuleNotFoundError as missing:  # without the ETL package the section is kept as written
        if missing.name not in ("etl", "etl.design_section", "etl.errors"):
            raise
        return copy_data(section)
    try:
        return expand_etl_section(section, experiment_names, config_dir=project.config_dir,
                                  design_loader=design_loader(project))
    except EtlConfigError as error:
        if error.file and Path(error.file) != source.file:
            raise UserError(error.detail, file=error.file, path=error.path) from None
        path = _etl_path_tuple(error.path)
        raise UserError(error.detail, file=str(source.file), path=error.path or ETL,
                        line=source.error(path, "").line) from None


def _suite(project: Project, name: str, raw: Any, source: Source, etl_expanded: bool) -> Suite:
    experiments = experiments_from_design(project, raw, source)
    section = raw.get(ETL) if type(raw) is dict else None
    if etl_expanded:
        etl = copy_data(section) if section is not None else {}
        if type(etl) is not dict:
            raise source.error((ETL,), "expected a mapping pipeline name -> pipeline")
    else:
        etl = expand_etl(project, section, list(experiments), source)
    renderer = Renderer(inner_environment(project.filter_plugins_dir))
    return Suite(name=name, experiments=experiments, etl=etl, source=source, renderer=renderer)


def load_suite(project: Project, suite: str, variables: dict | None = None, strict: bool = False) -> Suite:
    """Read designs/<suite>.yml, run the outer pass, validate; raise UserError on the first problem."""
    file = design_path(project, suite)
    check_group_vars(project, file)
    raw, source = load_raw_design(project, suite, variables, strict)
    return _suite(project, suite, raw, source, etl_expanded=False)


def load_stored_suite(project: Project, path: str | Path, suite_name: str) -> Suite:
    """A suite from a stored suite_design.yml (resume): already resolved, validated again."""
    path = Path(path)
    if not path.is_file():
        raise UserError("stored design not found; expected suite_design.yml in the suite's results folder",
                        file=str(path))
    text = path.read_text(encoding="utf-8")
    return _suite(project, suite_name, parse_yaml(text, path), Source(path, text), etl_expanded=True)
