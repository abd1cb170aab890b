"""`python -m harness`: the upgrade-gate commands, implemented in harness/cli.py."""

from __future__ import annotations

import sys


def main() -> None:
    from harness.cli import main as cli_main

    sys.exit(cli_main())


if __name__ == "__main__":
    main()
