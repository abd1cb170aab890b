"""Unit tests of harness/compare.py: error metrics, the relative-error floor, verdicts and mismatch errors."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from cases import identity, mnist
from harness.case import Precision, ShapePoint, Tolerance
from harness.compare import OutputErrors, compare_outputs, output_errors
from harness.errors import OutputMismatchError
from harness.gate import GateVerdict, LatencyComparison
from harness.matrix import Point
from harness.recorded import json_safe
from harness.results import document as results_document
from harness.results.record import ResultsLog

LOOSE = Tolerance(mean_rel=1e-3)


ArrayLike = Sequence[float] | Sequence[Sequence[float]] | np.ndarray


def errors_of(output: ArrayLike, reference: ArrayLike, tolerance: Tolerance = LOOSE) -> OutputErrors:
    """output_errors on float arrays built from plain lists."""
    return output_errors("y", np.asarray(output, dtype=np.float32), np.asarray(reference, dtype=np.float64), tolerance)


def test_identical_outputs_have_zero_error_and_pass() -> None:
    """An output equal to its reference has every error metric 0, no non-finite counts, and no failure."""
    reference = np.array([[0.0, -1.5, 2.0], [3.25, 0.0, -7.0]])
    errors = errors_of(reference, reference, Tolerance(mean_rel=1e-6))
    assert (errors.mean_abs, errors.max_abs, errors.mean_rel, errors.max_rel) == (0.0, 0.0, 0.0, 0.0)
    assert (errors.nan_count, errors.inf_count) == (0, 0)
    assert errors.failure is None
    assert errors.shape == (2, 3)


def test_known_perturbation_gives_hand_computed_errors() -> None:
    """mean/max abs and rel match a hand computation, and a zero reference element divides by the floor.

    ref = [0, 2, -4, 10], out = [0.5, 2.5, -4, 9]: |d| = [0.5, 0.5, 0, 1]; floor = 1e-3 * 10 = 0.01;
    rel = [0.5/0.01, 0.5/2, 0, 1/10] = [50, 0.25, 0, 0.1].
    """
    errors = errors_of([0.5, 2.5, -4.0, 9.0], [0.0, 2.0, -4.0, 10.0])
    assert errors.mean_abs == pytest.approx(2.0 / 4, rel=1e-12)
    assert errors.max_abs == pytest.approx(1.0, rel=1e-12)
    assert errors.mean_rel == pytest.approx((50 + 0.25 + 0 + 0.1) / 4, rel=1e-12)
    assert errors.max_rel == pytest.approx(50.0, rel=1e-12)
    assert errors.worst_index == (0,) and errors.worst_value == 0.5 and errors.worst_reference == 0.0


def test_all_zero_reference_uses_floor_one_so_relative_error_is_absolute() -> None:
    """With max|ref| = 0 the floor is 1.0: relative errors equal absolute errors (no division by zero)."""
    errors = errors_of([0.0, 0.25, -0.5, 0.0], [0.0, 0.0, 0.0, 0.0])
    assert errors.mean_rel == pytest.approx(0.75 / 4, rel=1e-12)
    assert errors.max_rel == pytest.approx(0.5, rel=1e-12)
    assert errors.mean_rel == errors.mean_abs and errors.max_rel == errors.max_abs


def test_worst_element_is_the_largest_relative_not_absolute_error() -> None:
    """The worst element is chosen by relative error: a 1.0 miss on 100 loses to a 0.5 miss on 1."""
    reference = np.array([[100.0, 1.0], [1.0, 1.0]])
    output = np.array([[101.0, 1.5], [1.0, 1.0]])
    errors = errors_of(output, reference)
    assert errors.worst_index == (0, 1)
    assert (errors.worst_value, errors.worst_reference) == (1.5, 1.0)
    assert errors.max_abs == 1.0 and errors.max_rel == pytest.approx(0.5)


def test_nan_and_inf_where_reference_is_finite_are_counted_and_fail() -> None:
    """NaN/±Inf outputs are counted, fail even a very loose tolerance, and the means use finite elements only."""
    errors = errors_of([np.nan, np.inf, -np.inf, 3.0, 4.4], [1.0, 2.0, 2.0, 3.0, 4.0], Tolerance(mean_rel=10.0))
    assert (errors.nan_count, errors.inf_count) == (1, 2)
    assert errors.failure is not None and "NaN/Inf" in errors.failure and errors.failure.startswith("3 ")
    assert all(np.isfinite([errors.mean_abs, errors.max_abs, errors.mean_rel, errors.max_rel]))
    # finite elements: |d| = [0, 0.4] (float32 rounding of 4.4), rel = [0, 0.4 / 4]
    assert errors.mean_abs == pytest.approx(0.2, rel=1e-6)
    assert errors.mean_rel == pytest.approx(0.05, rel=1e-6)
    assert errors.max_rel == pytest.approx(0.1, rel=1e-6)


def test_nan_output_is_judged_worst_element() -> None:
    """A non-finite output element outranks every finite one as the worst element."""
    errors = errors_of([1.0, 100.0, np.nan], [1.0, 1.0, 1.0])
    assert errors.worst_index == (2,)
    assert errors.worst_reference == 1.0


def test_to_json_of_a_nan_output_is_strict_json() -> None:
    """The results file (results/document.py, allow_nan=False) must be writable when an engine outputs NaN."""
    errors = errors_of([np.nan, 1.0], [1.0, 1.0])
    json.dumps(errors.to_json(), allow_nan=False)


def test_inf_in_reference_does_not_hide_errors_elsewhere() -> None:
    """A 100% error on a finite element must fail even when another reference element is +Inf."""
    errors = errors_of([np.inf, 2.0], [np.inf, 1.0])
    assert errors.failure is not None, errors


def test_nan_in_reference_does_not_pass_silently() -> None:
    """A finite output compared with a NaN reference element must not pass with NaN error metrics."""
    errors = errors_of([5.0, 1.0], [np.nan, 1.0])
    assert errors.failure is not None, errors


def test_exact_tolerance_counts_differing_elements() -> None:
    """An exact output with one differing element fails, saying how many of how many elements differ."""
    reference = np.array([1, 2, 3, 4], dtype=np.int64)
    output = np.array([1, 2, 0, 4], dtype=np.int64)
    errors = output_errors("label", output, reference, Tolerance(exact=True))
    assert errors.failure is not None
    assert errors.failure.startswith("1 of 4 elements differ") and "exactly" in errors.failure
    assert errors.worst_index == (2,)


def test_exact_tolerance_passes_identical_integers() -> None:
    """Identical integer outputs pass an exact tolerance."""
    labels = np.array([[7, 0], [3, 9]], dtype=np.int64)
    assert output_errors("label", labels, labels.copy(), Tolerance(exact=True)).failure is None


@pytest.mark.parametrize(("factor", "fails"), [(1.01, True), (0.99, False)], ids=["above", "below"])
def test_mean_rel_just_above_tolerance_fails_and_just_below_passes(factor: float, fails: bool) -> None:
    """The mean_rel verdict flips exactly around the tolerance (1% either side)."""
    tolerance = 1e-3
    reference = np.ones(4)
    output = reference.copy()
    output[1] += 4 * tolerance * factor  # mean_rel = |d| / 4 = tolerance * factor
    errors = output_errors("y", output, reference, Tolerance(mean_rel=tolerance))
    assert errors.mean_rel == pytest.approx(tolerance * factor, rel=1e-9)
    assert (errors.failure is not None) is fails
    if fails:
        assert errors.failure is not None and "> tolerance 0.001" in errors.failure


def test_compare_outputs_uses_case_tolerances_per_output() -> None:
    """compare_outputs judges mnist's int64 label exactly and its probabilities by mean_rel, in declared order."""
    probabilities = np.full((2, 10), 0.1)
    reference: dict[str, np.ndarray] = {"probabilities": probabilities, "label": np.array([3, 5], dtype=np.int64)}
    outputs: dict[str, np.ndarray] = {
        "probabilities": probabilities.astype(np.float32),
        "label": np.array([3, 6], dtype=np.int64),
    }
    errors = compare_outputs(mnist.CASE, Precision.FP16, outputs, reference)
    assert [e.output for e in errors] == ["probabilities", "label"]
    assert errors[0].failure is None and errors[0].tolerance == Tolerance(mean_rel=1e-3)
    assert errors[1].tolerance.exact and errors[1].failure is not None and "1 of 2" in errors[1].failure


def test_compare_outputs_raises_when_reference_lacks_an_output() -> None:
    """A reference without a declared output raises OutputMismatchError naming case, output and the fix."""
    outputs = {"y": np.zeros((1, 1, 1), dtype=np.float32)}
    with pytest.raises(OutputMismatchError) as info:
        compare_outputs(identity.CASE, Precision.FP32, outputs, {"z": np.zeros((1, 1, 1))})
    message = str(info.value)
    assert message.startswith("case 'identity':")
    assert "'y'" in message and "['z']" in message and "add it to the reference" in message
    assert info.value.case == "identity"


def test_compare_outputs_raises_on_shape_mismatch() -> None:
    """A reference of another shape raises OutputMismatchError naming both shapes and the fix."""
    outputs = {"y": np.zeros((2, 3, 4), dtype=np.float32)}
    with pytest.raises(OutputMismatchError) as info:
        compare_outputs(identity.CASE, Precision.FP32, outputs, {"y": np.zeros((2, 3, 5))})
    message = str(info.value)
    assert message.startswith("case 'identity':") and "output 'y'" in message
    assert "[2, 3, 5]" in message and "[2, 3, 4]" in message
    assert "fix the case's reference" in message


def test_compare_outputs_names_the_renamed_case() -> None:
    """The mismatch message names the case it was called with, not a hard-coded one."""
    case = dataclasses.replace(identity.CASE, name="tiny")
    with pytest.raises(OutputMismatchError, match=r"^case 'tiny':"):
        compare_outputs(case, Precision.FP32, {"y": np.zeros(3, dtype=np.float32)}, {})


def test_to_json_is_strict_json_for_finite_results() -> None:
    """to_json round-trips through json.dumps(allow_nan=False), with tuples turned into lists."""
    errors = errors_of([[0.5, 2.5], [-4.0, 9.0]], [[0.0, 2.0], [-4.0, 10.0]])
    data = json.loads(json.dumps(errors.to_json(), allow_nan=False))
    assert data["shape"] == [2, 2] and data["worst_index"] == [0, 0]
    assert data["output"] == "y" and data["failure"] == errors.failure
    assert data["tolerance"] == {"mean_rel": 1e-3, "exact": False, "justification": ""}
    assert data["mean_rel"] == pytest.approx(errors.mean_rel)


def test_json_safe_spells_every_non_finite_number() -> None:
    document = {"a": [1.0, float("nan"), (float("inf"), -np.inf)], "b": np.float32("nan"), "c": np.arange(2), "d": "x"}
    assert json_safe(document) == {"a": [1.0, "nan", ["inf", "-inf"]], "b": "nan", "c": [0, 1], "d": "x"}


def test_a_non_finite_number_anywhere_never_costs_the_results_file(tmp_path: Path) -> None:
    """A NaN in a record (here an engine fact and a gate ratio) used to raise `Out of range float values are
    not JSON compliant` at session end, and no results file was written."""
    log = ResultsLog()
    point = Point(identity.CASE, Precision.FP32, 0, ShapePoint.OPT, "ort")
    record = log.open("test_latency[identity-fp32-opt-ort]", "t.py::test_latency[identity-fp32-opt-ort]", point)
    record.engine_facts = {"gpu_telemetry": {"temperature_c": float("nan"), "power_w": np.float64("inf")}}
    record.gate = GateVerdict("pass", "", None, latency=LatencyComparison.from_json({"ratio": float("inf")}))
    path = tmp_path / "results.json"
    results_document.write(path, results_document.assemble(log.tests(), {}, {}))
    test = json.loads(path.read_text())["tests"][0]
    assert test["engine"]["gpu_telemetry"] == {"temperature_c": "nan", "power_w": "inf"}
    assert test["gate"]["latency"]["ratio"] == "inf"
