"""Writing files so that an interrupted write never leaves a half-written file behind.

The data goes to a temporary file beside the target, then a rename replaces the target: readers see
all or nothing. Temporary files are named `.<target>.<pid>@<host>.<random>.harness-tmp` (git-ignored),
so that one left behind by a killed writer is recognisable: the next write to the same folder removes
those whose writer (same host, that pid) is gone. A new file gets the mode 0666 less the umask, like
any file a program creates; a replaced file keeps its mode.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import stat
from pathlib import Path

TEMP_SUFFIX = ".harness-tmp"
_TEMP_NAME = re.compile(r"^\..+\.(?P<pid>\d+)@(?P<host>[^.]*)\.[0-9a-f]+" + re.escape(TEMP_SUFFIX) + "$")


def write_atomically(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same directory, then rename: readers see all or nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path.parent)
    temporary = path.parent / f".{path.name}.{os.getpid()}@{_host()}.{secrets.token_hex(4)}{TEMP_SUFFIX}"
    # O_EXCL: never follow or reuse someone else's file; 0o666 is reduced by the umask, as for any new file.
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            mode = _existing_mode(path)
            if mode is not None:
                os.chmod(temporary, mode)  # replacing a file keeps its mode (a 0644 baseline stays 0644)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def remove_stale_temporaries(folder: Path) -> None:
    """Remove temporary files of writers on this host that no longer run (killed mid-write)."""
    try:
        names = [entry.name for entry in os.scandir(folder) if entry.name.endswith(TEMP_SUFFIX)]
    except OSError:
        return
    host = _host()
    for name in names:
        match = _TEMP_NAME.match(name)
        if match is None or match["host"] != host or _running(int(match["pid"])):
            continue  # another host's writer, or a live one: not ours to judge
        try:
            (folder / name).unlink()
        except OSError:
            pass  # removed by another writer meanwhile, or not ours to remove


def _existing_mode(path: Path) -> int | None:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None


def _running(pid: int) -> bool:
    if pid == os.getpid() or os.name == "nt":  # Windows' os.kill would terminate the process: never ask
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else (PermissionError), or cannot tell: keep its file
    return True


def _host() -> str:
    """This machine's name, made safe for a file name (no dots: they separate the name's fields)."""
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"
