"""Files written so that readers never see a partial one and a crash never loses a finished one."""

from __future__ import annotations

import os
from pathlib import Path

from etl.fileio import write_atomic as write_file_atomic


def write_atomic(path: str | Path, text: str, durable: bool = True) -> None:
    """etl.fileio.write_atomic of a text, plus an fsync of the folder so the rename survives a crash.
    Files that can be written again from the design (config.json) skip the fsyncs: readers still never
    see a partial file."""
    path = Path(path)

    def write(handle) -> None:
        handle.write(text)

    write_file_atomic(path, write, durable=durable)
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
