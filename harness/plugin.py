"""The module pytest loads (the `pytest11` entry point and the root conftest's `pytest_plugins` name it): it only
gathers the hooks and fixtures of harness/pytest_plugin, one job a module, so that pytest finds them on one plugin,
as before the split (xdist's hooks stay optional hooks: they are found here only where xdist is installed).

Importing it has no side effects and imports no inference library; session state lives in `config.stash`.
"""

from __future__ import annotations

from harness.pytest_plugin.collect import (
    pytest_collect_file,
    pytest_collection_modifyitems,
    pytest_generate_tests,
    pytest_itemcollected,
)
from harness.pytest_plugin.finish import (
    pytest_benchmark_update_machine_info,
    pytest_runtest_makereport,
    pytest_sessionfinish,
    pytest_terminal_summary,
)
from harness.pytest_plugin.fixtures import (
    harness_build,
    harness_fuzz,
    harness_pair,
    harness_point,
    pytest_runtest_setup,
)
from harness.pytest_plugin.session import (
    pytest_addhooks,
    pytest_addoption,
    pytest_configure,
    pytest_configure_node,
    pytest_runtest_protocol,
    pytest_testnodedown,
    pytest_unconfigure,
)

__all__ = [
    "harness_build",
    "harness_fuzz",
    "harness_pair",
    "harness_point",
    "pytest_addhooks",
    "pytest_addoption",
    "pytest_benchmark_update_machine_info",
    "pytest_collect_file",
    "pytest_collection_modifyitems",
    "pytest_configure",
    "pytest_configure_node",
    "pytest_generate_tests",
    "pytest_itemcollected",
    "pytest_runtest_makereport",
    "pytest_runtest_protocol",
    "pytest_runtest_setup",
    "pytest_sessionfinish",
    "pytest_terminal_summary",
    "pytest_testnodedown",
    "pytest_unconfigure",
]
