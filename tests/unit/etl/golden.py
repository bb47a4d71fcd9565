"""Golden files: expected ETL outputs checked in under tests/golden/etl/.

Regenerate after an intended change with `DOE_REGEN_GOLDEN=1 .venv/bin/pytest -q tests/unit/etl`, then
review the diff of tests/golden/etl/ before committing it.
"""

from __future__ import annotations

import os
from pathlib import Path

GOLDEN_DIR = Path(__file__).resolve().parents[2] / "golden" / "etl"


def assert_golden(name: str, text: str) -> None:
    path = GOLDEN_DIR / name
    if os.environ.get("DOE_REGEN_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return
    assert path.is_file(), f"golden file {path.name} missing; run with DOE_REGEN_GOLDEN=1 to create it"
    assert text == path.read_text(), f"output differs from golden file {path.name}"
