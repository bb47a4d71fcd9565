"""Cache files that are safe to find in a results folder someone else wrote. Standard library only: the
re-run manifest is checked before pandas is imported.

Results folders are shared, and with them `etl_results/.cache/`. A cache is therefore data only (JSON and
raw numeric buffers, never pickle), and it is signed: an HMAC-SHA256 over the file with a key of this user,
kept outside any results folder (`$XDG_CACHE_HOME/doe/cache.key`, else `~/.cache/doe/cache.key`, 0600,
made on first use). A cache written by someone else, edited, torn, or of another format or version fails
the check before anything in it is parsed; it reads as missing, and the ETL builds it again. Besides the
code-execution hole this closes, a foreign cache could otherwise make `doe etl` report rows the result
files do not hold.

File: MAGIC | tag (32 bytes) | body, body = lengths | header (UTF-8 JSON) | blobs, where lengths is
(header length, number of blobs) as two uint32 then each blob's length as uint64, all little-endian, and
tag = HMAC(key, MAGIC + kind + NUL + body). `kind` names the cache and its version: a file of another
kind or version fails the check too.
"""

from __future__ import annotations

import hmac
import json
import os
import stat
import struct
import tempfile
from collections.abc import Sequence
from pathlib import Path

from etl.fileio import write_atomic

MAGIC = b"doe-cache 1\n"
KEY_BYTES = 32
_TAG_BYTES = 32
_COUNTS = struct.Struct("<II")
_KEYS: dict[str, bytes | None] = {}  # per key file: the key is read once per process
# Compact; no check for cycles (caches hold none): a third faster on the many small containers of a cache.
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, check_circular=False).encode


def to_json(value: object) -> bytes:
    return _ENCODE(value).encode()


def key_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "doe" / "cache.key"


def cache_key() -> bytes | None:
    """This user's key, made on first use; None when it can be neither read nor made (then no cache is
    read or written: the ETL is right, only slower)."""
    path = str(key_path())
    if path not in _KEYS:
        _KEYS[path] = _read_key(path) or _make_key(path)
    return _KEYS[path]


def _read_key(path: str) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        found = os.fstat(fd)
        # Only a key nobody else could have read or planted is a secret.
        if not stat.S_ISREG(found.st_mode) or found.st_uid != os.getuid() or found.st_mode & 0o077:
            return None
        key = os.read(fd, KEY_BYTES + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    return key if len(key) == KEY_BYTES else None


def _make_key(path: str) -> bytes | None:
    folder = os.path.dirname(path)
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".cache.key.", dir=folder)  # 0600
    except OSError:
        return None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(os.urandom(KEY_BYTES))
            handle.flush()
            os.fsync(handle.fileno())
        if os.path.lexists(path):
            os.replace(tmp, path)  # an unusable key (wrong size or mode): caches made with it are rebuilt
        else:
            try:
                os.link(tmp, path)  # never over a key another process made meanwhile: both use that one
            except FileExistsError:
                pass
    except OSError:
        return None
    finally:
        Path(tmp).unlink(missing_ok=True)
    return _read_key(path)


def _mac(key: bytes, kind: str):
    return hmac.new(key, MAGIC + kind.encode() + b"\0", "sha256")


def write(path: Path | str, kind: str, header: object, blobs: Sequence[bytes | memoryview] = ()) -> bool:
    """Store `header` (JSON-able) and `blobs`, signed; False when there is no key (nothing written).

    No fsync: a torn file fails the check and the next run builds the cache again."""
    key = cache_key()
    if key is None:
        return False
    text = to_json(header)
    lengths = _COUNTS.pack(len(text), len(blobs)) + struct.pack(f"<{len(blobs)}Q", *map(len, blobs))
    mac = _mac(key, kind)
    for part in (lengths, text, *blobs):
        mac.update(part)

    def dump(handle) -> None:
        handle.write(MAGIC)
        handle.write(mac.digest())
        for part in (lengths, text, *blobs):
            handle.write(part)

    write_atomic(path, dump, binary=True, durable=False)
    return True


def read(path: Path | str, kind: str) -> tuple[memoryview, list[memoryview]] | None:
    """The header's JSON text and the blobs of a file that `write` made with this user's key for this kind;
    None for anything else (missing, torn, edited, foreign, another kind or version). Nothing is parsed
    before the check has passed."""
    key = cache_key()
    if key is None:
        return None
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    start = len(MAGIC) + _TAG_BYTES
    if len(data) < start + _COUNTS.size or not data.startswith(MAGIC):
        return None
    view = memoryview(data)
    mac = _mac(key, kind)
    mac.update(view[start:])
    if not hmac.compare_digest(mac.digest(), data[len(MAGIC) : start]):
        return None
    # From here on the file is one this user wrote: the lengths are checked all the same.
    header_length, count = _COUNTS.unpack_from(data, start)
    offset = start + _COUNTS.size + 8 * count
    if offset > len(data):
        return None
    lengths = struct.unpack_from(f"<{count}Q", data, start + _COUNTS.size)
    header = view[offset : offset + header_length]
    offset += header_length
    blobs = []
    for length in lengths:
        blobs.append(view[offset : offset + length])
        offset += length
    if offset != len(data):
        return None
    return header, blobs


def read_json(path: Path | str, kind: str) -> tuple[object, list[memoryview]] | None:
    """`read` with the header parsed as plain JSON."""
    found = read(path, kind)
    if found is None:
        return None
    try:
        return json.loads(found[0].tobytes()), found[1]
    except ValueError:
        return None


class StampsTable:
    """Stamps (etl.stamps: a names tuple, packed int64 values) of many groups, stored as a table of the
    distinct names tuples (runs of the same layout share one, as in memory) and one buffer of all values."""

    def __init__(self) -> None:
        self.names: dict[tuple, int] = {}
        self.values: list[bytes] = []
        self.size = 0

    def add(self, stamps: tuple) -> list[int]:
        """[names index, values offset]: what `StampsReader.get` takes back."""
        names, values = stamps
        index = self.names.setdefault(names, len(self.names))
        offset = self.size
        self.values.append(values)
        self.size += len(values)
        return [index, offset]

    def names_list(self) -> list[tuple]:
        return list(self.names)

    def values_blob(self) -> bytes:
        return b"".join(self.values)


class StampsReader:
    """Stamps back from a StampsTable's names and values: names as tuples (shared), values as bytes."""

    def __init__(self, names: list, values: memoryview | bytes) -> None:
        self.names = [tuple(entry) for entry in names]
        self.values = bytes(values)

    def get(self, index: int, offset: int) -> tuple:
        names = self.names[index]
        end = offset + 16 * len(names)  # a size and an mtime per name
        if end > len(self.values):
            raise ValueError("stamps beyond the values")
        return names, self.values[offset:end]
