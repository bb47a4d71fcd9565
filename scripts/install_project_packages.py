"""Install the packages a doe-suite project's custom ETL steps need into this venv: those its config dir's
pyproject.toml lists under [tool.poetry.dependencies] (or [project].dependencies), except `python` and path or
git dependencies (doe-suite's own `doespy` is one: doe brings its own). Only packages not yet installed in a
matching version are handed to pip.

Usage: python install_project_packages.py CONFIG_DIR"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement


def poetry_specifier(constraint: str) -> str:
    """Poetry's version constraint (`^1.2`, `~1.2.3`, `*`, `>=1,<2`, `1.2`) as a pip specifier."""
    constraint = constraint.strip()
    if constraint in ("", "*"):
        return ""
    if constraint[0] in "^~":
        parts = [int(p) for p in constraint[1:].split(".") if p.isdigit()]
        if constraint[0] == "^":
            # The leftmost non-zero part may not change.
            first = next((i for i, p in enumerate(parts) if p != 0), len(parts) - 1)
        else:
            first = 0 if len(parts) == 1 else 1
        upper = [*parts[:first], parts[first] + 1]
        return f">={constraint[1:]},<{'.'.join(map(str, upper))}"
    if constraint[0].isdigit():
        return f"=={constraint}"
    return constraint


def requirements(pyproject: Path) -> list[str]:
    document = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    found = list(document.get("project", {}).get("dependencies", []))
    for name, spec in document.get("tool", {}).get("poetry", {}).get("dependencies", {}).items():
        if name.lower() == "python":
            continue
        if isinstance(spec, dict):
            if "path" in spec or "git" in spec or "url" in spec:
                continue
            extras = f"[{','.join(spec['extras'])}]" if spec.get("extras") else ""
            found.append(f"{name}{extras}{poetry_specifier(spec.get('version', '*'))}")
        else:
            found.append(f"{name}{poetry_specifier(str(spec))}")
    return found


def missing(requirement: str) -> bool:
    parsed = Requirement(requirement)
    try:
        return not parsed.specifier.contains(metadata.version(parsed.name), prereleases=True)
    except metadata.PackageNotFoundError:
        return True


def main(config_dir: str) -> int:
    pyproject = Path(config_dir) / "pyproject.toml"
    if not pyproject.is_file():
        print(f"{pyproject} does not exist: no project packages to install")
        return 0
    needed = [r for r in requirements(pyproject) if missing(r)]
    if not needed:
        return 0
    print(f"installing the packages {pyproject} lists: {' '.join(needed)}")
    return subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *needed], check=False).returncode


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__.rsplit("\n\n", 1)[1])
    sys.exit(main(sys.argv[1]))
