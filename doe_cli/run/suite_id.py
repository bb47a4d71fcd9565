"""Suite ids: `new` (the Unix epoch at creation), `last` (the newest results folder) or a number."""

from __future__ import annotations

import re
import time
from pathlib import Path

from doe_cli.errors import UserError
from etl.layout import last_suite_id, suite_folder, suite_runs


def resolve_suite_id(results_dir: Path, suite: str, id_option: str, *, allow_new: bool = True) \
        -> tuple[int, bool]:
    """(suite_id, is_new). A new id is the current epoch, bumped past any folder that exists.

    Commands that read a run (`status`) pass allow_new=False: their errors then point to the command
    that starts one instead of to an id they reject.
    """
    value = str(id_option).strip()
    expected = "'new', 'last' or a positive integer" if allow_new else "'last' or the id of an existing run"
    if value == "new" and allow_new:
        suite_id = int(time.time())
        existing = {run.suite_id for run in suite_runs(results_dir, suite)}
        while suite_id in existing:
            suite_id += 1
        return suite_id, True
    if value == "last":
        last = last_suite_id(results_dir, suite)
        if last is None:
            raise UserError(f"no run of suite {suite!r} in {results_dir} yet; start one with: "
                            f"doe run --suite {suite} --id new", path="id")
        return last, False
    if re.fullmatch(r"[0-9]+", value) and int(value) > 0:
        suite_id = int(value)
        if not suite_folder(results_dir, suite, suite_id).is_dir():
            raise UserError(f"no results folder {suite}_{suite_id} in {results_dir}; expected {expected}",
                            path="id")
        return suite_id, False
    if value == "new":
        raise UserError(f"there is no run to read with id 'new': expected {expected}; start one with: "
                        f"doe run --suite {suite} --id new", path="id")
    raise UserError(f"invalid id {value!r}: expected {expected}", path="id")
