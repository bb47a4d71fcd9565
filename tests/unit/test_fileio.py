"""Atomic writes of doe and of the ETL: whole files, and the permissions of any file the user writes."""

from __future__ import annotations

import os
import stat

import pytest

from doe_cli.fileio import write_atomic
from etl.fileio import write_text_atomic, write_via_temp_path


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@pytest.mark.parametrize("writer", ["doe", "etl", "etl-path"])
def test_atomic_writes_leave_the_umask_mode_and_no_temp_file(tmp_path, writer):
    target = tmp_path / "sub" / "out.csv"
    if writer == "doe":
        write_atomic(target, "a,b\n")
    elif writer == "etl":
        write_text_atomic(target, "a,b\n")
    else:
        write_via_temp_path(target, lambda name: open(name, "w").write("a,b\n"))  # noqa: SIM115
    assert target.read_text() == "a,b\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~_umask()
    assert [p.name for p in target.parent.iterdir()] == ["out.csv"]
