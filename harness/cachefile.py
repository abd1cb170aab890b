"""A cache entry on disk: a file and a JSON sidecar (`<file>.json`) holding its key and SHA-256.

The engine, reference and calibration caches all keep their entries this way. An entry is read once into
memory and the SHA-256 is checked on those very bytes, which are the bytes the caller then uses: a file
rewritten after the check is never used unchecked. Writing is atomic (harness/atomic.py), the file first and
the sidecar last, so a reader that finds a sidecar finds the whole file it vouches for.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from harness.atomic import NotARegularFileError, file_kind, write_atomically


@dataclass(frozen=True)
class Entry:
    data: bytes  # the checked bytes: use these, never read the file again
    sidecar: dict[str, object]


@dataclass(frozen=True)
class Unusable:
    problem: str  # what is wrong with the entry, for a warning that names the file


def sidecar_path(path: Path) -> Path:
    return path.with_suffix(".json")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_entry(path: Path, key: str) -> Entry | Unusable | None:
    """The entry at `path` if it is intact; Unusable (why) when something is there but cannot be used; None
    when there is nothing. A directory, FIFO or device where the file should be is Unusable, never opened."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return None
    except OSError as error:
        return Unusable(f"it cannot be examined: {error}")
    if (kind := file_kind(mode)) is not None:
        return Unusable(f"it is {kind}, not a file; remove it so that the cache can store the file there")
    try:
        data = path.read_bytes()
    except OSError as error:
        return Unusable(f"it cannot be read: {error}")
    return _checked(path, key, data)


def _checked(path: Path, key: str, data: bytes) -> Entry | Unusable:
    sidecar = sidecar_path(path)
    try:
        record = json.loads(sidecar.read_bytes())
    except (OSError, ValueError) as error:  # ValueError: invalid JSON, or not UTF-8
        return Unusable(f"its checksum file is missing or unreadable: {error}")
    if not isinstance(record, dict):
        return Unusable(f"its checksum file {sidecar} holds {type(record).__name__}, not a JSON object")
    if record.get("key") != key:
        return Unusable("its checksum file belongs to another key")
    if record.get("sha256") != sha256(data):
        return Unusable("its SHA-256 does not match the one recorded when it was written (truncated or corrupted)")
    return Entry(data, record)


def write_entry(path: Path, key: str, data: bytes, fields: Mapping[str, object]) -> None:
    """Store `data` at `path` with its sidecar (key, SHA-256, size and `fields`); raises OSError (a full disk)."""
    record = {"key": key, "sha256": sha256(data), "bytes": len(data), **fields}
    write_atomically(path, data)
    write_atomically(sidecar_path(path), json.dumps(record, indent=1).encode())


def warn_unwritable(category: type[Warning], case_name: str, what: str, path: Path, error: OSError, made: str) -> None:
    """A cache entry (`what`: "engine cache entry") that could not be written is a warning, not an error: what was
    `made` ("the engine was built") is used from memory this session. stacklevel 4 points the warning at the caller
    of the stage that cached."""
    warnings.warn(
        category(
            f"case '{case_name}': the {what} {path} cannot be written ({error}); {made} and is used from memory this "
            f"session; {unwritable_fix(error)}"
        ),
        stacklevel=4,
    )


def unwritable_fix(error: OSError) -> str:
    """What to do about a cache entry that cannot be written: a folder or device in its place is removed; anything
    else is a full or read-only disk."""
    if isinstance(error, (IsADirectoryError, NotARegularFileError)):
        return "remove what is in its place so that the cache can store the file there"
    return "free disk space or pass --engine-cache a writable directory (or off)"
