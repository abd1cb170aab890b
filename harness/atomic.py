"""Writing files so that an interrupted write never leaves a half-written file behind.

The data goes to a temporary file beside the target, then a rename replaces the target: readers see
all or nothing. Temporary files are named `.<target>.<pid>@<host>.<random>.harness-tmp` (git-ignored),
so that one left behind by a killed writer is recognisable: the next write to the same folder removes
those whose writer (same host, that pid) is gone. A new file gets the mode 0666 less the umask, like
any file a program creates; a replaced file keeps its mode. Only a regular file is ever replaced: a device, a
FIFO or a directory at the target is refused (as root, replacing `/dev/null` would break the machine).

`unwritable` is the start-up check of every output option (`--results`, `--harness-html`, `-o` of the command
line): it says why a file could not be written there before any work is done, and leaves nothing behind.
Scratch folders (`scratch_folder`) and lock files (`lock_removed`) are named and removed so that what a killed
process leaves is recognised and swept by the next session (`sweep`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
import socket
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import filelock

TEMP_SUFFIX = ".harness-tmp"
_TEMP_NAME = re.compile(r"^\..+\.(?P<pid>\d+)@(?P<host>[^.]*)\.[0-9a-f]+" + re.escape(TEMP_SUFFIX) + "$")


class NotARegularFileError(OSError):
    """The target exists and is not a regular file (a device, a FIFO, a directory): never replaced."""


def write_atomically(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same directory, then rename: readers see all or nothing."""
    if (kind := _not_regular(path)) is not None:
        raise NotARegularFileError(errno.EEXIST, f"{path} is {kind}, not a regular file; it is never replaced")
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


def unwritable(path: Path) -> str | None:
    """Why a file could not be written at `path`, or None; checked by doing: a file is created and removed in the
    folder (or, where the folder does not exist yet, in the nearest folder above it, which will hold it). Nothing
    is left behind, and no folder is created."""
    if (kind := _not_regular(path)) is not None:
        return f"{path} is {kind}, not a regular file"
    folder = path.parent
    while not folder.exists():
        if folder == folder.parent:
            return f"no folder above {path} exists"
        folder = folder.parent
    if not folder.is_dir():
        return f"{folder}, above {path}, is not a directory"
    try:
        descriptor, probe = tempfile.mkstemp(dir=folder, prefix=".harness-probe-", suffix=TEMP_SUFFIX)
    except OSError as error:
        return f"cannot create a file in {folder} ({error.strerror or error})"
    os.close(descriptor)
    os.unlink(probe)
    return None


def _not_regular(path: Path) -> str | None:
    """What `path` is, where it exists and is not a regular file (a link is followed: its target counts)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None  # absent (or unreadable: the write itself will say why)
    return file_kind(mode)


_KINDS = {
    stat.S_ISDIR: "a directory",
    stat.S_ISCHR: "a character device",
    stat.S_ISBLK: "a block device",
    stat.S_ISFIFO: "a FIFO",
    stat.S_ISSOCK: "a socket",
}


def file_kind(mode: int) -> str | None:
    """What a path of this stat mode is, in words ("a directory", "a FIFO", ...); None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    return next((kind for test, kind in _KINDS.items() if test(mode)), "not a regular file")


# Scratch folders in the temporary directory: harness-<kind>-<pid>@<host>-<random>, so that a killed owner is known.
_SCRATCH = re.compile(r"^harness-[a-z]+-(?P<pid>\d+)@(?P<host>[A-Za-z0-9-]*)-")
LOCK_SUFFIX = ".lock"


def scratch_folder(kind: str) -> tempfile.TemporaryDirectory[str]:
    """A temporary folder named for this process: removed on exit, and by `sweep` when its owner was killed."""
    return tempfile.TemporaryDirectory(prefix=f"harness-{kind}-{os.getpid()}@{_host()}-")


@contextlib.contextmanager
def lock_removed(path: Path, timeout: float = -1) -> Iterator[None]:
    """Hold the file lock `path` (waiting up to `timeout` seconds for it, -1: as long as it takes; filelock.Timeout
    beyond) and remove its file on release (`release_removed`)."""
    lock = filelock.FileLock(path, timeout=timeout)
    lock.acquire()
    try:
        yield
    finally:
        release_removed(lock)


def release_removed(lock: filelock.BaseFileLock) -> None:
    """Release `lock`, its file removed first, while still held, so that no lock file stays behind. Safe with
    filelock's FileLock: a waiter that opened the removed file finds it unlinked once it holds it, and retries on a
    new one. A lock held more than once (re-entered) keeps its file until its last release."""
    if lock.lock_counter == 1:
        with contextlib.suppress(OSError):
            Path(lock.lock_file).unlink()
    lock.release()


def sweep(folders: Iterable[Path]) -> None:
    """What killed sessions left: scratch folders of this host's dead processes in the temporary directory, and
    lock files under `folders` that no process holds (each taken, removed, released: never one that is held)."""
    _sweep_scratch(Path(tempfile.gettempdir()))
    for folder in folders:
        for lock_file in _lock_files(folder):
            lock = filelock.FileLock(lock_file, timeout=0)
            with contextlib.suppress(filelock.Timeout, OSError), lock:
                lock_file.unlink()


def _lock_files(folder: Path) -> list[Path]:
    return [Path(root) / name for root, _, names in os.walk(folder) for name in names if name.endswith(LOCK_SUFFIX)]


def _sweep_scratch(temporary: Path) -> None:
    host = _host()
    try:
        names = [entry.name for entry in os.scandir(temporary) if entry.name.startswith("harness-")]
    except OSError:
        return
    for name in names:
        match = _SCRATCH.match(name)
        if match is None or match["host"] != host or _running(int(match["pid"])):
            continue  # another host's, a live owner's, or not named by scratch_folder: not ours to judge
        shutil.rmtree(temporary / name, ignore_errors=True)


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
