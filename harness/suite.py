"""The matrix tests. A repository collects them by importing them into one of its test modules
(`from harness.suite import test_accuracy, test_latency`); the plugin parametrizes every test that
asks for the `harness_point` fixture over the matrix.

Each test reads as the pipeline: case → build (in the fixture) → run → compare / measure → report.
"""

from __future__ import annotations

import pytest

from harness.compare import compare_outputs
from harness.measure import measure
from harness.plugin import PointContext
from harness.run import run_engine


def test_accuracy(harness_point: PointContext) -> None:
    """Every output within its tolerance of the float64 numpy reference."""
    point, inputs = harness_point.point, harness_point.inputs
    outputs = run_engine(point.case, point.profile_index, harness_point.engine, inputs)
    errors = compare_outputs(point.case, point.precision, outputs, point.case.reference(inputs))
    harness_point.record.accuracy = errors
    failures = [
        f"output '{e.output}': {e.failure} (worst element {list(e.worst_index)}: "
        f"{e.worst_value!r} vs reference {e.worst_reference!r})"
        for e in errors
        if e.failure
    ]
    if failures:
        pytest.fail(f"{point.id}: " + "; ".join(failures), pytrace=False)


def test_latency(harness_point: PointContext) -> None:
    """Latency on the backend's own clock; stats and raw samples go into the results file."""
    point, inputs = harness_point.point, harness_point.inputs
    run_engine(point.case, point.profile_index, harness_point.engine, inputs)  # refuses bad shapes before timing
    harness_point.record.latency = measure(harness_point.engine.timer(inputs), harness_point.measure_policy)
