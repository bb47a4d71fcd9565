"""File stamps (size, mtime) that the ETL cache and the re-run manifest trust. Standard library only."""

from __future__ import annotations

import os

# A file or directory changed less than this long before it was looked at may change again within the same
# timestamp tick; such a stamp is not trusted.
RACY_NS = 1_000_000_000


def stamps_match(folder: int, stamps: tuple, prefix: str = "") -> bool:
    """Whether every (name, size, mtime, name, size, mtime, ...) entry still holds, each path being prefix + name
    relative to the open folder `folder` (an empty path: the folder itself)."""
    stat = os.stat
    names = iter(stamps)
    try:
        for name, size, mtime in zip(names, names, names):
            found = stat(prefix + name or ".", dir_fd=folder)
            if found.st_mtime_ns != mtime or found.st_size != size:
                return False
    except OSError:
        return False
    return True
