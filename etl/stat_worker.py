"""Checks of file stamps: what helper processes run (see etl.stamps). Run as a script, with only built-in modules
to import so that a helper starts in a few milliseconds: it reads a marshalled list of groups on stdin and
writes one byte per group, 1 when all its stamps hold.

Stamps are (names, values): names relative to a folder (an empty name: the folder itself), values each name's
size and mtime in nanoseconds as packed native int64 pairs. A few objects per group instead of three per file
keep them quick to store, to load and to send to a helper.
"""

import marshal
import os
import sys

Stamps = tuple  # (tuple of names, bytes of int64 (size, mtime) pairs)
Group = tuple  # (folder path, Stamps)


def values_of(stamps: Stamps) -> memoryview:
    """The sizes and mtimes: size of entry i at 2i, its mtime at 2i + 1."""
    return memoryview(stamps[1]).cast("q")


def stamps_match(folder: int, stamps: Stamps, prefix: str = "") -> bool:
    """Whether every entry still holds, each path being prefix + name relative to the open folder `folder`."""
    stat = os.stat
    values = iter(values_of(stamps))
    try:
        for name, size, mtime in zip(stamps[0], values, values):
            found = stat(prefix + name or ".", dir_fd=folder)
            if found.st_mtime_ns != mtime or found.st_size != size:
                return False
    except OSError:
        return False
    return True


def group_unchanged(group: Group) -> bool:
    try:
        folder = os.open(group[0], os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return False
    try:
        # Relative to the open folder: one path lookup per stat instead of one per path component.
        return stamps_match(folder, group[1])
    finally:
        os.close(folder)


def serve() -> None:
    # marshal is safe here: its only input is this helper's stdin, a pipe from the ETL process that started
    # it (etl.stamps, same user), never a file; stamps that came from a cache file were verified there first
    # (etl.safecache). Built in, it keeps the helper's start quick.
    groups = marshal.loads(sys.stdin.buffer.read())
    sys.stdout.buffer.write(bytes(group_unchanged(group) for group in groups))


if __name__ == "__main__":
    serve()
