"""Hooks that a repository's conftest.py implements to feed the harness."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from harness.backends import BackendDescriptor
    from harness.case import Case
    from harness.results.document import ResultsDocument


@pytest.hookspec
def pytest_harness_cases(config: pytest.Config) -> Sequence[Case]:
    """Return the cases this repository benchmarks. Results of every implementation are joined;
    case names must be unique across them."""
    raise NotImplementedError


@pytest.hookspec
def pytest_harness_backends(config: pytest.Config) -> Mapping[str, BackendDescriptor]:
    """Return backends to add to the built-in ones (or to replace them), keyed by short id. The
    descriptor says everything the harness needs without importing the library: its device kind,
    default latency threshold, install hint and whether building and running need a GPU."""
    raise NotImplementedError


@pytest.hookspec
def pytest_harness_report(config: pytest.Config, document: ResultsDocument) -> None:
    """Make a report of the session's results: called once when the session finishes (on the xdist controller),
    after the results file and the HTML report are written, with the one typed document they were made from.
    `document.problem` is set where the session's own records fail the results file's checks. An exception is
    said in the summary and fails the session; nothing written before is lost."""
