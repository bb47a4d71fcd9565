"""The step registry: built-in steps plus the project's custom steps, keyed by class name.

Custom steps live in the config dir's ETL package (doe-suite projects use `does_etl_custom`): the modules of
each top-level package whose name contains "does" or is `doe_etl_custom`. They are imported lazily, one
module at a time, when a pipeline names a step: the module whose source defines a class of that name is
imported, so a module that cannot be imported (it needs a package doe lacks, say) is an error only for the
pipelines that name one of its steps. A name no source defines makes every module importable be searched
(classes made at import time); the error for a name still unknown lists the modules that cannot be imported.
A name used by two different classes is an error naming both; a module that merely imports a step is fine.
"""

from __future__ import annotations

import ast
import importlib
import re
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from etl.errors import EtlConfigError
from etl.steps import extractors, loaders, plots, stats, transformers  # noqa: F401  (they register built-ins)
from etl.steps.base import BUILTIN_STEPS, Step, is_concrete_step, step_kind

# Built-in steps whose modules cost import time (many pydantic models): imported when a pipeline names them.
LAZY_BUILTINS = {"ColumnCrossPlotLoader": "etl.steps.colcross.colcross"}


@dataclass(frozen=True)
class CustomModule:
    """One module of a custom ETL package, known from its source without importing it."""

    name: str
    file: Path
    package_dir: Path
    # Class names its source defines; None when the source does not parse (the import error tells why).
    classes: frozenset[str] | None


def _is_package_dir(path: Path) -> bool:
    """A folder Python imports as a package: with an __init__.py, or a namespace package holding Python
    files (a checkout may lack the empty __init__.py files, which Python 3 does not need)."""
    return (path.is_dir() and path.name.isidentifier()
            and ((path / "__init__.py").is_file() or any(path.glob("**/*.py"))))


def _is_custom_package(path: Path) -> bool:
    return ("does" in path.name or path.name == "doe_etl_custom") and _is_package_dir(path)


def custom_packages(config_dir: Path) -> list[Path]:
    if not config_dir.is_dir():
        return []
    return sorted(path for path in config_dir.iterdir() if _is_custom_package(path))


def _defined_classes(file: Path) -> frozenset[str] | None:
    try:
        tree = ast.parse(file.read_bytes(), filename=str(file))
    except (SyntaxError, ValueError, OSError):
        return None
    return frozenset(node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef))


def custom_modules(package_dir: Path) -> list[CustomModule]:
    """The package's modules and subpackages, in name order."""
    found = []

    def walk(folder: Path, prefix: str) -> None:
        for file in sorted(folder.glob("*.py")):
            name = prefix if file.name == "__init__.py" else f"{prefix}.{file.stem}"
            found.append(CustomModule(name, file, package_dir, _defined_classes(file)))
        for sub in sorted(folder.iterdir()):
            if _is_package_dir(sub):
                walk(sub, f"{prefix}.{sub.name}")

    walk(package_dir, package_dir.name)
    return sorted(found, key=lambda module: module.name)


def _forget_foreign_modules(package: str, root: Path) -> None:
    """Another config dir may have imported a package of the same name: drop it so ours is imported.
    Where each module lives is read before any is dropped: a namespace package's path is looked up
    through its parent's."""
    names = [n for n in sys.modules if n == package or n.startswith(package + ".")]
    foreign = [name for name in names if not _lives_under(sys.modules[name], root)]
    for name in names if package in foreign else foreign:
        del sys.modules[name]


def _lives_under(module: ModuleType, root: Path) -> bool:
    file = getattr(module, "__file__", None) or ""
    paths = list(getattr(module, "__path__", []) or [])
    located = [Path(p) for p in ([file] if file else []) + paths]
    return any(root in p.resolve().parents or p.resolve() == root for p in located)


def _project_dependencies(config_dir: Path) -> set[str]:
    """Normalized names of the packages the config dir's pyproject.toml lists (Poetry or PEP 621)."""
    import tomllib

    try:
        document = tomllib.loads((config_dir / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return set()
    poetry = document.get("tool", {}).get("poetry", {}).get("dependencies", {})
    pep621 = document.get("project", {}).get("dependencies", [])
    names = list(poetry) + [re.split(r"[ <>=!~;\[(]", item, maxsplit=1)[0] for item in pep621]
    return {_normalized(name) for name in names}


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def _install_hint(config_dir: Path) -> str:
    if config_dir.name == "doe-suite-config":
        return f"run make install with DOES_PROJECT_DIR={config_dir.parent}"
    return f"run make install with DOE_CONFIG_DIR={config_dir}"


def _import_problem(error: BaseException, package: str, config_dir: Path) -> str:
    """One line saying why a custom module cannot be imported and, for a missing package, what to do."""
    text = f"{type(error).__name__}: {' '.join(str(error).split())}"
    missing = getattr(error, "name", None) if isinstance(error, ModuleNotFoundError) else None
    top = (missing or "").split(".")[0]
    if not top or top in (package, "doespy", "etl"):
        return text
    if _normalized(top) in _project_dependencies(config_dir):
        return f"it needs package {top} ({text}): {_install_hint(config_dir)}"
    return (
        f"it needs package {top} ({text}): add it to [tool.poetry.dependencies] of "
        f"{config_dir / 'pyproject.toml'} and {_install_hint(config_dir)}"
    )


def _lazy_builtin(name: str) -> type[Step] | None:
    module = LAZY_BUILTINS.get(name)
    return None if module is None else _imported_step(module, name)


def _imported_step(module: str, name: str) -> type[Step]:
    step = getattr(importlib.import_module(module), name)
    if not is_concrete_step(step):
        raise TypeError(f"{module}.{name} is no step")
    return step


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


@dataclass
class Registry:
    """Built-in steps and the custom modules of one config dir (None: built-ins only)."""

    config_dir: Path | None = None
    modules: tuple[CustomModule, ...] = ()
    _imported: dict[str, ModuleType | str] = field(default_factory=dict)
    _found: dict[str, type[Step]] = field(default_factory=dict)

    def names(self, kind: str) -> list[str]:
        """Step names of a kind: the built-ins and the steps of every custom module that imports."""
        steps, _ = self.all_steps()
        return sorted(name for name, cls in steps.items() if step_kind(cls) == kind)

    def all_steps(self) -> tuple[dict[str, type[Step]], dict[str, str]]:
        """Every step by name, the built-ins and those of each custom module (all imported now), and per custom
        module that cannot be imported, why."""
        lazy = {name: _imported_step(module, name) for name, module in LAZY_BUILTINS.items()}
        steps = {**BUILTIN_STEPS, **lazy}
        broken = {}
        for module in self.modules:
            loaded = self._import(module)
            if isinstance(loaded, ModuleType):
                steps.update({obj.__name__: obj for obj in vars(loaded).values() if is_concrete_step(obj)})
            else:
                broken[module.name] = loaded
        return steps, broken

    def step(self, name: str, kind: str, path: str | None = None) -> type[Step]:
        """The step class called `name`, which must be a `kind`; an EtlConfigError (naming `path`) if there is
        none, two, or its module cannot be imported."""
        cls = self._found.get(name)
        if cls is None:
            cls = self._resolve(name, kind, path)
            self._found[name] = cls
        if step_kind(cls) != kind:
            raise EtlConfigError(f"{name} is a {step_kind(cls)}, not a {kind}", path=path)
        return cls

    def _resolve(self, name: str, kind: str, path: str | None) -> type[Step]:
        defining = [m for m in self.modules if m.classes is not None and name in m.classes]
        candidates = self._steps_named(name, defining, path, must_import=True)
        builtin = BUILTIN_STEPS.get(name) or _lazy_builtin(name)
        if builtin is not None and builtin not in candidates:
            candidates.insert(0, builtin)
        if not candidates:
            # Made at import time or imported from elsewhere: look through every module that imports.
            others = [m for m in self.modules if m not in defining]
            candidates = self._steps_named(name, others, path, must_import=False)
        if len(candidates) > 1:
            raise EtlConfigError(
                f"step name {name} is defined twice: {_qualified(candidates[0])} and "
                f"{_qualified(candidates[1])}; rename one",
                path=path,
            )
        if not candidates:
            raise EtlConfigError(self._unknown(name, kind), path=path)
        return candidates[0]

    def _steps_named(
        self, name: str, modules: list[CustomModule], path: str | None, must_import: bool
    ) -> list[type[Step]]:
        """The distinct step classes called `name` in `modules`; if `must_import` (their source defines the
        name), a module that cannot be imported is an error."""
        found: list[type[Step]] = []
        for module in modules:
            loaded = self._import(module)
            if isinstance(loaded, str):
                if must_import:
                    raise EtlConfigError(
                        f"step {name} is defined in custom ETL module {module.name}, which cannot be "
                        f"imported: {loaded}",
                        path=path,
                    )
                continue
            obj = getattr(loaded, name, None)
            if is_concrete_step(obj) and obj not in found:
                found.append(obj)
        return found

    def _unknown(self, name: str, kind: str) -> str:
        message = f"unknown {kind} {name}; known: {', '.join(self.names(kind))}"
        broken = [f"{m.name} ({self._imported[m.name]})" for m in self.modules if self._imports_not(m)]
        if broken:
            message += "; custom ETL modules that cannot be imported: " + "; ".join(broken)
        return message

    def _imports_not(self, module: CustomModule) -> bool:
        return isinstance(self._import(module), str)

    def _import(self, module: CustomModule) -> ModuleType | str:
        """The imported module, or why it cannot be imported (one line); each module is tried once."""
        if module.name not in self._imported:
            self._imported[module.name] = self._import_now(module)
        return self._imported[module.name]

    def _import_now(self, module: CustomModule) -> ModuleType | str:
        from pydantic.warnings import PydanticDeprecationWarning

        root = str(module.package_dir.parent)
        _forget_foreign_modules(module.package_dir.name, module.package_dir.resolve())
        added = root not in sys.path
        if added:
            sys.path.insert(0, root)
        try:
            # Steps written for pydantic 1 (`class Config`, `@validator`) work under pydantic 2; its notes
            # about them are for their authors, not for whoever runs the ETL.
            warnings.filterwarnings("ignore", category=PydanticDeprecationWarning)
            return importlib.import_module(module.name)
        except Exception as error:  # noqa: BLE001 - any failure in user code is reported as one line
            return _import_problem(error, module.package_dir.name, module.package_dir.parent)
        finally:
            if added:
                sys.path.remove(root)


_CACHE: dict[Path, Registry] = {}


def load_registry(config_dir: Path | str | None) -> Registry:
    """Built-in steps plus the custom steps of `config_dir` (found once per process and config dir; a custom
    module is imported when a step it defines is first asked for)."""
    if config_dir is None:
        return Registry()
    key = Path(config_dir).resolve()
    if key not in _CACHE:
        modules = tuple(module for package in custom_packages(key) for module in custom_modules(package))
        _CACHE[key] = Registry(key, modules)
    return _CACHE[key]
