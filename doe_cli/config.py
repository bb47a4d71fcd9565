"""Where the project's configuration and results live.

The config dir holds designs/, group_vars/, roles/, inventory/ and super_etl/. It is found in this
order: --config-dir, $DOE_CONFIG_DIR, $DOES_PROJECT_DIR/doe-suite-config (the layout of existing
doe-suite projects), else the doe repository itself, whose folders are the shipped example config.
doe-suite's other environment variables are read here too: $DOES_CLOUD, $DOES_SUPERETL_OUT.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from doe_cli.errors import UserError

TOOL_ROOT = Path(__file__).resolve().parent.parent
PLAYBOOKS_DIR = TOOL_ROOT / "playbooks"
TOOL_ROLES_DIR = TOOL_ROOT / "roles"
ANSIBLE_CFG = TOOL_ROOT / "ansible.cfg"
COLLECTIONS_DIR = TOOL_ROOT / ".collections"
DEFAULT_CLOUD = "local"


@dataclass(frozen=True)
class Project:
    config_dir: Path
    results_dir: Path

    @property
    def designs_dir(self) -> Path:
        return self.config_dir / "designs"

    @property
    def design_vars_dir(self) -> Path:
        return self.designs_dir / "design_vars"

    @property
    def etl_templates_dir(self) -> Path:
        return self.designs_dir / "etl_templates"

    @property
    def filter_plugins_dir(self) -> Path:
        return self.designs_dir / "filter_plugins"

    @property
    def group_vars_dir(self) -> Path:
        return self.config_dir / "group_vars"

    @property
    def roles_dir(self) -> Path:
        return self.config_dir / "roles"

    @property
    def inventory_dir(self) -> Path:
        return self.config_dir / "inventory"

    @property
    def super_etl_dir(self) -> Path:
        return self.config_dir / "super_etl"

    def design_file(self, suite: str) -> Path:
        return self.designs_dir / f"{suite}.yml"

    def suites(self) -> list[str]:
        if not self.designs_dir.is_dir():
            return []
        return sorted(p.stem for p in self.designs_dir.glob("*.yml"))


def _default_results_dir(config_dir: Path) -> Path:
    # doe-suite projects keep doe-suite-config/ and doe-suite-results/ side by side.
    if config_dir.name == "doe-suite-config":
        return config_dir.parent / "doe-suite-results"
    return config_dir / "doe-suite-results"


def discover(config_dir: Path | str | None = None, results_dir: Path | str | None = None) -> Project:
    """Resolve the config dir and results dir from options, then the environment, then defaults."""
    if config_dir is not None:
        chosen, source = Path(config_dir), "--config-dir"
    elif os.environ.get("DOE_CONFIG_DIR"):
        chosen, source = Path(os.environ["DOE_CONFIG_DIR"]), "$DOE_CONFIG_DIR"
    elif os.environ.get("DOES_PROJECT_DIR"):
        chosen, source = Path(os.environ["DOES_PROJECT_DIR"]) / "doe-suite-config", "$DOES_PROJECT_DIR"
    else:
        chosen, source = TOOL_ROOT, "default"
    chosen = chosen.expanduser().resolve()
    if not (chosen / "designs").is_dir():
        raise UserError(f"config dir {chosen} (from {source}) has no designs/ folder; "
                        "expected a doe config dir with designs/, group_vars/ and roles/")
    if results_dir is not None:
        results = Path(results_dir)
    elif os.environ.get("DOES_RESULTS_DIR"):
        results = Path(os.environ["DOES_RESULTS_DIR"])
    else:
        results = _default_results_dir(chosen)
    return Project(config_dir=chosen, results_dir=results.expanduser().resolve())


def default_cloud() -> str:
    """The cloud of a new suite run without --cloud: $DOES_CLOUD (as in doe-suite), else this machine."""
    return os.environ.get("DOES_CLOUD") or DEFAULT_CLOUD


def clean_cloud(option: str | None) -> tuple[str, str]:
    """(cloud, where it came from) for `doe clean`: --cloud, else $DOES_CLOUD. Never a default of its own:
    cleaning deletes, so the cloud is always named."""
    if option:
        return option, "--cloud"
    from_env = os.environ.get("DOES_CLOUD")
    if from_env:
        return from_env, "$DOES_CLOUD"
    raise UserError("expected the cloud to clean: give --cloud (aws, local or an inventory name) or set "
                    "DOES_CLOUD", path="--cloud")


def super_etl_out_dir(option: Path | None) -> Path | None:
    """--out, else $DOES_SUPERETL_OUT; None leaves the default (<results folder>-super) to the ETL."""
    if option is not None:
        return option
    from_env = os.environ.get("DOES_SUPERETL_OUT")
    return Path(from_env).expanduser() if from_env else None


@dataclass(frozen=True)
class GroupVars:
    """A group's group_vars as written (no templates rendered), with the file each key came from."""

    values: dict[str, Any]
    files: dict[str, str]       # key -> its file, relative to the config dir (errors name it)
    default_file: str           # the file that would hold a key no file sets: group_vars/<group>/main.yml

    def file_of(self, key: str | None) -> str:
        return self.files.get(key, self.default_file) if key is not None else self.default_file

    def over(self, base: GroupVars) -> GroupVars:
        """These values over `base`'s, as Ansible layers a host type's group_vars over all's."""
        return GroupVars(values={**base.values, **self.values}, files={**base.files, **self.files},
                         default_file=self.default_file)


def read_group_vars(project: Project, group: str) -> GroupVars:
    """The files of group_vars/<group>/ (main.yml first, then by name), else group_vars/<group>.yml."""
    import yaml  # not at every `doe` start

    from doe_cli.fileio import load_yaml  # `doe` starts without etl's modules

    folder = project.group_vars_dir / group
    files = sorted(folder.glob("*.y*ml"), key=lambda f: (f.name != "main.yml", f.name)) if folder.is_dir() \
        else [p for p in (project.group_vars_dir / f"{group}.yml",) if p.is_file()]
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for file in files:
        name = file.relative_to(project.config_dir).as_posix()
        try:
            content = load_yaml(file.read_text(encoding="utf-8"))
        except yaml.YAMLError as error:
            raise UserError(f"not valid YAML ({' '.join(str(error).split())})", file=name) from None
        if content is None:
            continue
        if not isinstance(content, dict):
            raise UserError("expected a mapping of settings", file=name)
        values.update(content)
        origins.update(dict.fromkeys(map(str, content), name))
    single = not folder.is_dir() and bool(files)  # the group_vars/<group>.yml layout
    return GroupVars(values=values, files=origins,
                     default_file=f"group_vars/{group}.yml" if single else f"group_vars/{group}/main.yml")


# Read once per command: the controller asks at every poll, `doe` commands run one after another in tests.
_GROUP_VARS: dict[tuple[Path, str], GroupVars] = {}


def group_vars(project: Project, group: str) -> GroupVars:
    """group_vars/<group>, read once per command (`forget_group_vars` starts over)."""
    key = (project.group_vars_dir, group)
    if key not in _GROUP_VARS:
        _GROUP_VARS[key] = read_group_vars(project, group)
    return _GROUP_VARS[key]


def forget_group_vars() -> None:
    _GROUP_VARS.clear()


def load_group_vars(project: Project, group: str) -> dict:
    """The project's group_vars of `group` as written (no templates rendered); a copy, read once per command."""
    return dict(group_vars(project, group).values)


def group_var_true(value: object) -> bool:
    """A group_vars flag: YAML booleans, or the strings Ansible's `bool` reads as true."""
    return value is True or str(value).strip().lower() in ("true", "yes", "on", "1", "y", "t")


def holds_template(value: object) -> bool:
    """Whether a group var's value (a string, or strings inside mappings and lists) has Jinja in it."""
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, dict):
        return any(holds_template(item) for item in value.values())
    if isinstance(value, list):
        return any(holds_template(item) for item in value)
    return False
