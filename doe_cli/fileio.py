"""Files written so that readers never see a partial one and a crash never loses a finished one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from etl.fileio import FILE_MODE  # mkstemp's 0600 -> the mode of any file the user writes


def write_atomic(path: str | Path, text: str, durable: bool = True) -> None:
    """temp file in the same folder + fsync + rename + fsync of the folder. Files that can be written
    again from the design (config.json) skip the fsyncs: readers still never see a partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    if not durable:
        return
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load_yaml(text: str):
    """Safe YAML, parsed by libyaml where PyYAML has it (several times faster than the pure-Python parser)."""
    import yaml  # not every user of this module needs YAML

    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
