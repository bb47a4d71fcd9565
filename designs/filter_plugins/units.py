"""A project filter for `[% %]` templates: every `FilterModule().filters()` in designs/filter_plugins/ is
available in designs (example06-vars uses this one)."""

from __future__ import annotations

import re

_FACTORS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def to_bytes(size) -> int:
    """`4k` -> 4096, `2M` -> 2097152, `512` -> 512 (binary units, case-insensitive, optional `b`/`ib`)."""
    match = re.fullmatch(r"\s*(\d+)\s*([kmgt]?)(i?b)?\s*", str(size), re.IGNORECASE)
    if match is None:
        raise ValueError(f"to_bytes: cannot read {size!r} as a size like 512, 4k or 2MiB")
    return int(match.group(1)) * _FACTORS[match.group(2).lower()]


class FilterModule:
    def filters(self):
        return {"to_bytes": to_bytes}
