"""The step registry: built-in steps plus the project's custom steps, keyed by class name.

Custom steps live in the config dir's ETL package (doe-suite projects use `does_etl_custom`): every module of
each top-level package whose name contains "does" or is `doe_etl_custom` is imported, and every concrete
Extractor/Transformer/Loader class found in them is registered by its class name. A name used by two different
classes is an error naming both; a module that merely imports a built-in step is fine.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from etl.errors import EtlConfigError
from etl.steps import extractors, loaders, plots, stats, transformers  # noqa: F401  (they register built-ins)
from etl.steps.base import BUILTIN_STEPS, Step, is_concrete_step, step_kind


@dataclass(frozen=True)
class Registry:
    steps: dict[str, type[Step]] = field(default_factory=dict)

    def names(self, kind: str) -> list[str]:
        return sorted(name for name, cls in self.steps.items() if step_kind(cls) == kind)


def _is_custom_package(path: Path) -> bool:
    return (
        path.is_dir()
        and (path / "__init__.py").is_file()
        and ("does" in path.name or path.name == "doe_etl_custom")
    )


def custom_packages(config_dir: Path) -> list[Path]:
    if not config_dir.is_dir():
        return []
    return sorted(path for path in config_dir.iterdir() if _is_custom_package(path))


def _forget_foreign_modules(package: str, root: Path) -> None:
    """Another config dir may have imported a package of the same name: drop it so ours is imported."""
    for name in [n for n in sys.modules if n == package or n.startswith(package + ".")]:
        file = getattr(sys.modules[name], "__file__", None) or ""
        paths = list(getattr(sys.modules[name], "__path__", []) or [])
        located = [Path(p) for p in ([file] if file else []) + paths]
        if not any(root in p.resolve().parents or p.resolve() == root for p in located):
            del sys.modules[name]


def _provide_doespy_names() -> None:
    """doe-suite projects' custom steps import their bases from `doespy.etl.steps.*`: offer doe's under those
    names (unless a real doespy is installed)."""
    if "doespy" in sys.modules or importlib.util.find_spec("doespy") is not None:
        return
    from etl.steps import base as base_module
    from etl.steps import plots as plots_module

    sources = {
        "doespy.etl.steps.extractors": (extractors, base_module),
        "doespy.etl.steps.transformers": (transformers, base_module),
        "doespy.etl.steps.loaders": (loaders, plots_module, base_module),
    }
    for name in ("doespy", "doespy.etl", "doespy.etl.steps"):
        module = ModuleType(name)
        module.__path__ = []  # a package, so that submodules resolve
        sys.modules[name] = module
    for name, originals in sources.items():
        module = ModuleType(name)
        for original in reversed(originals):
            module.__dict__.update({k: v for k, v in vars(original).items() if not k.startswith("__")})
        sys.modules[name] = module
        setattr(sys.modules[name.rpartition(".")[0]], name.rpartition(".")[2], module)


def _import_package(package_dir: Path) -> list[ModuleType]:
    config_dir = str(package_dir.parent)
    package = package_dir.name
    _forget_foreign_modules(package, package_dir.resolve())
    _provide_doespy_names()
    added = config_dir not in sys.path
    if added:
        sys.path.insert(0, config_dir)
    modules: list[ModuleType] = []
    current = package
    try:
        root = importlib.import_module(package)
        modules.append(root)
        for info in sorted(pkgutil.walk_packages(root.__path__, package + "."), key=lambda i: i.name):
            current = info.name
            modules.append(importlib.import_module(info.name))
    except Exception as error:  # noqa: BLE001 - any failure in user code is reported as one line
        raise EtlConfigError(
            f"custom ETL module {current} failed to import: {type(error).__name__}: {error}",
            file=str(package_dir),
        ) from None
    finally:
        if added:
            sys.path.remove(config_dir)
    return modules


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


_CACHE: dict[Path, Registry] = {}


def load_registry(config_dir: Path | str | None) -> Registry:
    """Built-in steps plus the custom steps of `config_dir` (imported once per process and config dir)."""
    if config_dir is None:
        return Registry(dict(BUILTIN_STEPS))
    key = Path(config_dir).resolve()
    if key in _CACHE:
        return _CACHE[key]
    steps: dict[str, type[Step]] = dict(BUILTIN_STEPS)
    for package_dir in custom_packages(key):
        for module in _import_package(package_dir):
            for obj in vars(module).values():
                if not is_concrete_step(obj):
                    continue
                known = steps.get(obj.__name__)
                if known is not None and known is not obj:
                    raise EtlConfigError(
                        f"step name {obj.__name__} is defined twice: {_qualified(known)} and "
                        f"{_qualified(obj)}; rename one",
                        file=str(package_dir),
                    )
                steps[obj.__name__] = obj
    registry = Registry(steps)
    _CACHE[key] = registry
    return registry
