"""This repository runs the harness on its own cases, as any repository using the plugin would."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from harness.case import Case

# Loads the plugin when the package is on the path but not installed (e.g. PYTHONPATH=.); an installed
# harness registered it through its entry point under this same name, and then this is a no-op.
pytest_plugins = ("harness.plugin",)


def pytest_harness_cases(config: pytest.Config) -> Sequence[Case]:
    from cases import ALL_CASES

    return ALL_CASES
