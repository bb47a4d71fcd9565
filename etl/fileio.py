"""Atomic file writes: a reader sees the old file or the new one, never a partial one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

# mkstemp creates 0600 files; results are shared like any file the user writes (0666 minus the umask).
# The umask can only be read by setting it: once, at import, before any thread of ours runs.
_UMASK = os.umask(0o022)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK
# doe's record of a job (times, max RSS, exit code, host), next to the job's own files. Hidden: a job's
# own runtime_info.yaml (doe-suite projects write one with /usr/bin/time) is never replaced, and
# pipelines see only the job's files; RuntimeInfoExtractor reads this one.
DOE_RECORD = ".doe_runtime_info.yaml"


def write_atomic(
    path: Path | str, write: Callable[[IO], object], *, binary: bool = False, durable: bool = True
) -> None:
    """Call write(handle) on a temp file next to `path`, fsync it (if durable), then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, FILE_MODE)
        handle: IO
        if binary:
            handle = os.fdopen(fd, "wb")
        else:
            handle = os.fdopen(fd, "w", encoding="utf-8", newline="")
        with handle:
            write(handle)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path | str, text: str) -> None:
    write_atomic(path, lambda handle: handle.write(text))


def write_via_temp_path(path: Path | str, write: Callable[[str], None]) -> None:
    """For writers that want a file name (matplotlib, pyarrow): write to a temp name, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.fchmod(fd, FILE_MODE)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
