"""What every command shares about its output file: refused before any work where it cannot be written, and a
write that fails said as a CliError naming the file and the fix. Its own module, so that the commands import it
without importing the command line (harness/cli/__init__.py) that dispatches to them."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from harness.errors import HarnessError


class CliError(HarnessError):
    """A command cannot do its job; the message names the file or command and the fix (exit status 2)."""


def write_output(described: str, write: Callable[[], None]) -> None:
    """Run a command's `write` of its output file; an OSError (a read-only disk, a parent that is a file) becomes
    CliError naming the file (`described`, e.g. "the HTML report r.html") and the fix."""
    try:
        write()
    except OSError as error:
        raise CliError(f"cannot write {described} ({error}); pass -o a writable path") from None


def check_output(args: argparse.Namespace) -> None:
    """A command's -o is refused before any work: a device, FIFO or folder there, or a folder it cannot go in
    (init's `-o -` is standard output)."""
    from harness.atomic import unwritable

    output = getattr(args, "output", None)
    if isinstance(output, Path) and str(output) != "-" and (reason := unwritable(output)) is not None:
        raise CliError(f"cannot write {output}: {reason}; pass -o a writable file path")
