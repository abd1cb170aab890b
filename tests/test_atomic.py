"""harness/atomic.py, the one writer of results, baselines and cache entries: all or nothing, recognisable
temporary files cleaned up after a killed writer, and the modes any program's files get."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from harness import atomic
from harness.atomic import TEMP_SUFFIX, write_atomically

REPOSITORY = Path(__file__).resolve().parent.parent


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def killed_writer(folder: Path) -> Path:
    """What kill -9 during a write leaves: the temporary file of a writer that no longer runs."""
    process = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True)
    dead = int(process.stdout)
    left = folder / f".engine.bin.{dead}@{atomic._host()}.0123abcd{TEMP_SUFFIX}"
    left.write_bytes(b"half an engine")
    return left


def test_writes_and_replaces(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "file.json"
    write_atomically(path, b"one")
    write_atomically(path, b"two")
    assert path.read_bytes() == b"two"
    assert [entry.name for entry in path.parent.iterdir()] == ["file.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "file.json"
    write_atomically(path, b"old")

    def full_disk(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        write_atomically(path, b"new")
    assert path.read_bytes() == b"old"
    assert [entry.name for entry in tmp_path.iterdir()] == ["file.json"]


def test_temporaries_of_a_killed_writer_are_removed_by_the_next_write(tmp_path: Path) -> None:
    left = killed_writer(tmp_path)
    alive = tmp_path / f".other.bin.{os.getppid()}@{atomic._host()}.00ff{TEMP_SUFFIX}"  # a live writer's
    remote = tmp_path / f".other.bin.1@another-host.00ff{TEMP_SUFFIX}"  # another host's: not ours to judge
    unrelated = tmp_path / ".notes.tmp"
    for path in (alive, remote, unrelated):
        path.write_bytes(b"x")
    write_atomically(tmp_path / "engine.bin", b"whole engine")
    assert not left.exists()
    assert alive.exists() and remote.exists() and unrelated.exists()
    assert (tmp_path / "engine.bin").read_bytes() == b"whole engine"


def test_temporary_files_are_git_ignored(tmp_path: Path) -> None:
    name = f"baselines/dev/.ort-1.0.json.123@host.00ff{TEMP_SUFFIX}"
    ignored = subprocess.run(["git", "check-ignore", "--no-index", "-q", name], cwd=REPOSITORY, check=False)
    assert ignored.returncode == 0, f"{name} is not git-ignored: add *{TEMP_SUFFIX} to .gitignore"


def test_new_files_get_0666_less_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        write_atomically(tmp_path / "a.json", b"{}")
        os.umask(0o002)
        write_atomically(tmp_path / "b.json", b"{}")
    finally:
        os.umask(previous)
    assert mode_of(tmp_path / "a.json") == 0o644
    assert mode_of(tmp_path / "b.json") == 0o664


def test_replacing_a_file_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    path.write_bytes(b"old")
    for mode in (0o644, 0o640):
        path.chmod(mode)
        write_atomically(path, b"new")
        assert mode_of(path) == mode
