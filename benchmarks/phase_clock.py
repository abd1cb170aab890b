"""A pytest plugin for the benchmarks: appends each test's call phase (start, end, worker) as a JSON
line to $PHASE_CLOCK_LOG, so a benchmark can time the tests themselves apart from start-up.

Use: PYTHONPATH=benchmarks PHASE_CLOCK_LOG=phases.jsonl pytest -p phase_clock ..."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Generator

import pytest


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    start = time.monotonic()  # CLOCK_MONOTONIC: one clock for every process of the machine
    try:
        return (yield)
    finally:
        line = {
            "id": item.name,
            "start": start,
            "end": time.monotonic(),
            "worker": os.environ.get("PYTEST_XDIST_WORKER"),
        }
        with open(os.environ["PHASE_CLOCK_LOG"], "a") as log:
            log.write(json.dumps(line) + "\n")
