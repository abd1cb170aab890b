"""The compare step: engine outputs against the case's float64 numpy reference.

Relative error is measured against the reference, with a floor so that elements whose reference
is (near) zero do not divide by ~0 (docs/checks.md, "Accuracy"):
    floor = 1e-3 * max|ref|  (1.0 if the reference is all zeros)
    rel_i = |out_i - ref_i| / max(|ref_i|, floor)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace

import numpy as np

from harness.case import Case, Precision, Tolerance
from harness.errors import OutputMismatchError
from harness.recorded import json_float

REL_FLOOR = 1e-3


@dataclass(frozen=True)
class OutputErrors:
    output: str
    shape: tuple[int, ...]
    mean_abs: float
    max_abs: float
    mean_rel: float
    max_rel: float
    worst_index: tuple[int, ...]  # element with the largest relative error
    worst_value: float
    worst_reference: float
    nan_count: int
    inf_count: int
    tolerance: Tolerance
    failure: str | None  # why this output fails its tolerance, None when it passes
    # An integer label output at reduced precision whose labels differ: how many, how many exempt and why
    # (harness/precision/labels.py's LabelExemption.to_json()); None otherwise.
    exemption: Mapping[str, object] | None = None

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["shape"] = list(self.shape)
        data["worst_index"] = list(self.worst_index)
        # Strict JSON has no NaN/Inf; the worst element is often exactly that, so it is spelled out.
        data["worst_value"] = json_float(self.worst_value)
        data["worst_reference"] = json_float(self.worst_reference)
        return data


def compare_outputs(
    case: Case,
    precision: Precision,
    outputs: Mapping[str, np.ndarray],
    reference: Mapping[str, np.ndarray],
) -> list[OutputErrors]:
    return [
        output_errors(
            name, outputs[name], _reference_for(case, name, outputs[name], reference), case.tolerance(precision, name)
        )
        for name in (spec.name for spec in case.outputs)
    ]


def _reference_for(case: Case, name: str, output: np.ndarray, reference: Mapping[str, np.ndarray]) -> np.ndarray:
    if name not in reference:
        raise OutputMismatchError(
            case.name,
            f"the reference returns no output '{name}' (it returns {sorted(reference)}); add it to the reference",
        )
    expected = np.asarray(reference[name])
    if expected.shape != output.shape:
        raise OutputMismatchError(
            case.name,
            f"output '{name}': the reference has shape {list(expected.shape)} but the model produced "
            f"{list(output.shape)}; fix the case's reference (or its model) so that both give the same shape",
        )
    return expected


def output_errors(name: str, output: np.ndarray, reference: np.ndarray, tolerance: Tolerance) -> OutputErrors:
    actual = output.astype(np.float64)
    expected = reference.astype(np.float64)
    # Metrics are computed where both sides are finite; non-finite elements are counted and judged apart,
    # so one NaN or Inf can neither poison the means nor (through the floor) hide every other error.
    both_finite = np.isfinite(actual) & np.isfinite(expected)
    abs_err = np.zeros_like(actual)
    np.subtract(actual, expected, out=abs_err, where=both_finite)
    abs_err = np.abs(abs_err)
    scale = float(np.max(np.abs(expected[np.isfinite(expected)]), initial=0.0))
    floor = REL_FLOOR * scale if scale > 0 else 1.0
    rel_err = np.zeros_like(actual)
    np.divide(abs_err, np.maximum(np.abs(expected), floor), out=rel_err, where=both_finite)
    mismatch = _nonfinite_mismatch(actual, expected)
    ranking = np.where(mismatch, np.inf, rel_err)
    worst = np.unravel_index(int(np.argmax(ranking)), actual.shape) if actual.size else ()
    errors = OutputErrors(
        output=name,
        shape=tuple(output.shape),
        mean_abs=_mean(abs_err[both_finite]),
        max_abs=_max(abs_err[both_finite]),
        mean_rel=_mean(rel_err[both_finite]),
        max_rel=_max(rel_err[both_finite]),
        worst_index=tuple(int(i) for i in worst),
        worst_value=float(actual[worst]) if actual.size else 0.0,
        worst_reference=float(expected[worst]) if actual.size else 0.0,
        nan_count=int(np.isnan(actual).sum()),
        inf_count=int(np.isinf(actual).sum()),
        tolerance=tolerance,
        failure=None,
    )
    return _judged(errors, expected, actual, mismatch)


def _nonfinite_mismatch(actual: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Elements where either side is NaN/Inf and the two are not the same non-finite value."""
    same = (np.isnan(actual) & np.isnan(expected)) | (np.isinf(actual) & (actual == expected))
    mismatch: np.ndarray = ~(np.isfinite(actual) & np.isfinite(expected)) & ~same
    return mismatch


def _judged(errors: OutputErrors, expected: np.ndarray, actual: np.ndarray, mismatch: np.ndarray) -> OutputErrors:
    bad_output = int((~np.isfinite(actual) & np.isfinite(expected)).sum())
    bad_reference = int((mismatch & ~np.isfinite(expected)).sum())
    if bad_output:
        reason = f"{bad_output} NaN/Inf elements where the reference is finite"
    elif bad_reference:
        reason = f"{bad_reference} elements where the reference is NaN/Inf and the output is not the same value"
    elif errors.tolerance.exact and not np.array_equal(actual, expected):
        reason = f"{int((actual != expected).sum())} of {actual.size} elements differ; this output must match exactly"
    elif errors.tolerance.mean_rel is not None and errors.mean_rel > errors.tolerance.mean_rel:
        reason = f"mean relative error {errors.mean_rel:.3g} > tolerance {errors.tolerance.mean_rel:.3g}"
    else:
        return errors
    return replace(errors, failure=reason)


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else 0.0


def _max(values: np.ndarray) -> float:
    return float(values.max()) if values.size else 0.0
