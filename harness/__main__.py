"""`python -m harness`: the upgrade-gate commands, implemented in harness/cli/."""

from __future__ import annotations

import os
import sys

# 128 + SIGPIPE, as a shell reports a command killed by a closed pipe; never 1, which means "regression".
EXIT_PIPE_CLOSED = 141


def main() -> None:
    from harness.cli import main as cli_main

    status: int | str | None
    try:
        try:
            status = cli_main()
        except SystemExit as done:  # argparse's --help, --version and usage errors: their output is flushed below
            status = done.code
        sys.stdout.flush()
    except BrokenPipeError:
        # `python -m harness compare A B | head`: the reader left. Point stdout at /dev/null so that the
        # interpreter's final flush cannot raise again, and leave without a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        status = EXIT_PIPE_CLOSED
    sys.exit(status)


if __name__ == "__main__":
    main()
