"""Moving fetched job results from the staging dir into the results tree, safely.

rsync lands a host's newly finished job dirs in a staging folder; from there each file is moved to
`<exp>/run_<i>/rep_<j>/<host_type>/host_<k>/` with a hard link, which fails instead of overwriting
an existing file. Symlinks and special files are refused (never followed), names are checked, and
every destination is checked to lie inside the job's folder: nothing escapes the results folder.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class PlaceReport:
    placed: list[str] = field(default_factory=list)
    kept_existing: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


def _safe_name(name: str) -> bool:
    return name not in ("", ".", "..") and "/" not in name and "\0" not in name


def _move_no_overwrite(src: str, dest: str) -> bool:
    """Move a regular file; False if dest exists (it is kept)."""
    try:
        os.link(src, dest)
    except FileExistsError:
        return False
    except OSError as error:
        if error.errno != errno.EXDEV:
            raise
        tmp = f"{dest}.doe-partial"
        shutil.copy2(src, tmp)
        try:
            os.link(tmp, dest)
        except FileExistsError:
            return False
        finally:
            os.unlink(tmp)
    os.unlink(src)
    return True


def _plain_tree(source: Path) -> list[str] | None:
    """Relative names of the regular files under source, or None if anything else is there."""
    names: list[str] = []
    for current, dirs, files in os.walk(source, followlinks=False):
        for name in dirs + files:
            path = os.path.join(current, name)
            mode = os.lstat(path).st_mode
            if not _safe_name(name) or not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                return None
        rel = os.path.relpath(current, source)
        names.extend(os.path.normpath(os.path.join(rel, name)) for name in files)
    return names


def place_results(source: Path, target: Path) -> PlaceReport:
    """Move everything under `source` into `target` without overwriting; then remove `source`."""
    report = PlaceReport()
    if not source.exists():
        return report
    if not os.path.lexists(target):
        # First fetch of this job dir and only plain files: one rename moves it all.
        names = _plain_tree(source)
        if names is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.parent.resolve() == target.parent.absolute():
                os.rename(source, target)
                report.placed.extend(sorted(names))
                return report
    target.mkdir(parents=True, exist_ok=True)
    root = target.resolve()
    for current, dirs, files in os.walk(source, followlinks=False):
        rel = os.path.relpath(current, source)
        dest_dir = root if rel == "." else root / rel
        kept_dirs = []
        for name in dirs:
            path = os.path.join(current, name)
            if not _safe_name(name) or os.path.islink(path):
                report.refused.append(os.path.normpath(os.path.join(rel, name)))
                continue
            kept_dirs.append(name)
        dirs[:] = kept_dirs
        dest_dir.mkdir(parents=True, exist_ok=True)
        if not dest_dir.resolve().is_relative_to(root):
            report.refused.append(rel)
            dirs[:] = []
            continue
        for name in files:
            src = os.path.join(current, name)
            rel_name = os.path.normpath(os.path.join(rel, name))
            mode = os.lstat(src).st_mode
            if not _safe_name(name) or not stat.S_ISREG(mode):
                report.refused.append(rel_name)
                continue
            if _move_no_overwrite(src, str(dest_dir / name)):
                report.placed.append(rel_name)
            else:
                report.kept_existing.append(rel_name)
    shutil.rmtree(source, ignore_errors=True)
    return report
