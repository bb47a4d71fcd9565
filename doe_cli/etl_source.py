"""Which `$ETL$` `doe etl` runs: the one stored with the results (suite_design.yml) unless --from-design takes
the config dir's. An edited design would otherwise have no effect without a word."""

from __future__ import annotations

import re
from pathlib import Path

from doe_cli.config import Project
from doe_cli.errors import UserError


def edited_etl_note(project: Project, suite: str, suite_dir: Path) -> str | None:
    """One line if designs/<suite>.yml's `$ETL$` is not the one stored with `suite_dir`, saying how to run it."""
    from doe_cli.design import load_suite
    from etl.errors import EtlConfigError
    from etl.suite import ETL_KEY, SUITE_DESIGN, experiment_names, read_design

    if not project.design_file(suite).is_file():
        return None  # nothing to compare with (results copied from elsewhere, a renamed design)
    try:
        stored = read_design(suite_dir / SUITE_DESIGN)
        current = load_suite(project, suite, strict=False)
    except EtlConfigError:
        return None  # the ETL itself reports a stored design it cannot read
    except UserError as error:
        return f"note: this ETL runs the $ETL$ stored with {suite_dir.name}; the current design has an error: {error}"
    # A run of some experiments (--expfilter) stored the pipelines of those only.
    ran = [name for name in experiment_names(stored) if name in current.experiments]
    if ran and len(ran) < len(current.experiments):
        current = current.filter("(?:" + "|".join(map(re.escape, ran)) + r")\Z")
    if current.etl == (stored.get(ETL_KEY) or {}):
        return None
    suite_id = suite_dir.name.rpartition("_")[2]  # the folder doe named <suite>_<id>
    return (
        f"note: the $ETL$ of {current.source.file.name} differs from the one stored with {suite_dir.name}, "
        f"which this ETL runs; for the edited one: doe etl --suite {suite} --id {suite_id} --from-design "
        f"(make etl suite={suite} id={suite_id} from_design=1)"
    )
