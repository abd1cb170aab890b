"""The matrix tests. A repository collects them by importing them into one of its test modules
(`from harness.suite import test_accuracy, test_agreement, test_latency`); the plugin parametrizes
every test that asks for `harness_point` (or `harness_pair`) over the matrix.

Each test reads as the pipeline: case → build (in the fixture) → run → compare / measure → report.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from harness.compare import OutputErrors, compare_outputs
from harness.matrix import Point
from harness.measure import measure
from harness.plugin import PairContext, PointContext
from harness.run import run_engine


def test_accuracy(harness_point: PointContext) -> None:
    """Every output within its tolerance of the float64 numpy reference."""
    point, inputs = harness_point.point, harness_point.inputs
    outputs = run_engine(point.case, point.profile_index, harness_point.engine, inputs)
    errors = compare_outputs(point.case, point.precision, outputs, point.case.reference(inputs))
    harness_point.record.accuracy = errors
    _fail_outside_tolerance(point, errors, "the numpy reference")


def test_agreement(harness_pair: PairContext) -> None:
    """Two workflows of one backend (e.g. TensorRT's network API and its ONNX parser) agree within the
    precision's tolerance on the same inputs."""
    context = harness_pair.context
    point, inputs = context.point, context.inputs
    outputs = run_engine(point.case, point.profile_index, context.engine, inputs)
    twin_outputs = run_engine(point.case, point.profile_index, harness_pair.twin, inputs)
    errors = compare_outputs(point.case, point.precision, outputs, twin_outputs)
    context.record.accuracy = errors
    _fail_outside_tolerance(point, errors, f"backend '{harness_pair.twin_backend}'")


def test_latency(harness_point: PointContext) -> None:
    """Latency on the backend's own clock, and the caller's host latency where that differs; stats and
    raw samples go into the results file."""
    point, inputs, engine = harness_point.point, harness_point.inputs, harness_point.engine
    run_engine(point.case, point.profile_index, engine, inputs)  # refuses bad shapes before timing
    harness_point.record.latency = measure(engine.timer(inputs), harness_point.measure_policy)
    host_timer = engine.host_timer(inputs)
    if host_timer is not None:
        harness_point.record.host_latency = measure(host_timer, harness_point.measure_policy)
    harness_point.record.engine_facts = engine.facts()


def _fail_outside_tolerance(point: Point, errors: Sequence[OutputErrors], against: str) -> None:
    failures = [
        f"output '{e.output}': {e.failure} (worst element {list(e.worst_index)}: "
        f"{e.worst_value!r} vs {e.worst_reference!r})"
        for e in errors
        if e.failure
    ]
    if failures:
        pytest.fail(f"{point.id} against {against}: " + "; ".join(failures), pytrace=False)
