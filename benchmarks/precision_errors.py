"""The errors each derived precision really makes, measured, so that tolerances are not guessed.

For every case and reduced precision, the mean relative error (harness/compare.py's metric) against the
case's float64 reference at the first profile's three corners and at 30 random shapes inside it:
  - fp16 on ONNX Runtime: its CPU provider has no float16 kernels for most ops and runs them in float32
    (optimized or not, the errors are the same), so it understates a GPU's fp16 error;
  - fp16 and bf16 on the TensorRT double 11.4, which rounds every layer's output to the type: per-op half
    precision emulation, the CPU proxy for a GPU;
  - int8 on ONNX Runtime with the Q/DQ fusion off (int8 products without saturation, what the
    harness judges on every CPU) with the max and the percentile calibrators;
  - mnist int8: top-1 agreement with the float64 reference's label over a fixed set of 1024 images from the
    case's generator (top-2 logit gap >= LABEL_MARGIN).
Prints a JSON table; no targets (the tolerances in cases/*.py and harness/case.py cite these numbers).

Usage: python benchmarks/precision_errors.py [--shapes N]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import numpy as np
from foundation import REPO

sys.path.insert(0, str(REPO))

from cases import ALL_CASES, mnist
from harness.backends import BackendOptions
from harness.backends.ort import OnnxRuntimeBackend
from harness.case import Case, Precision, ShapePoint
from harness.compare import output_errors
from harness.fuzz import dim_ranges, shapes_from_dims
from harness.precision.derive import PrecisionOptions, derive

Runner = Callable[[Mapping[str, np.ndarray]], Mapping[str, np.ndarray]]


def ort_runner(model: bytes) -> Runner:
    """The session the harness judges by: the exact int8 one for a Q/DQ model (harness/backends/ort.py)."""
    session = OnnxRuntimeBackend(BackendOptions()).exact_int8_session(model)  # no effect on a float model
    names = [output.name for output in session.get_outputs()]
    return lambda inputs: dict(zip(names, session.run(None, dict(inputs)), strict=True))


def double_runner(case: Case, precision: Precision) -> Runner:
    from harness.build import EngineStore
    from harness.run import run_engine
    from tests.trt_support import adapter_backend, double_library

    engine = EngineStore(None).get(adapter_backend(double_library("11.4")), case, precision, 0).engine
    return lambda inputs: run_engine(case, 0, engine, inputs)


def worst_errors(case: Case, precision: Precision, run: Runner, shapes: list[dict[str, Any]]) -> dict[str, float]:
    worst: dict[str, float] = {}
    for index, shape in enumerate(shapes):
        inputs = case.make_inputs(shape, np.random.default_rng(1000 + index))
        reference, outputs = case.reference_outputs(inputs), run(inputs)
        for spec in case.outputs:
            if spec.is_float:
                errors = output_errors(
                    spec.name,
                    outputs[spec.name],
                    np.asarray(reference[spec.name]),
                    case.tolerance(precision, spec.name),
                )
                worst[spec.name] = max(worst.get(spec.name, 0.0), errors.mean_rel)
    return {name: float(f"{value:.3g}") for name, value in worst.items()}


def label_agreement(run: Runner, images: int = 1024) -> float:
    inputs = mnist.CASE.make_inputs({"x": (images, 1, 28, 28)}, np.random.default_rng(7))
    expected = np.asarray(mnist.CASE.reference_outputs(inputs)["label"])
    return float(np.mean(np.asarray(run(inputs)["label"]) == expected))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", type=int, default=30, help="random shapes inside the profile per case")
    args = parser.parse_args()
    table: dict[str, dict[str, object]] = {}
    for case in ALL_CASES:
        corners = [case.profiles[0].shapes(point) for point in ShapePoint]
        ranges, rng = dim_ranges(case, 0), np.random.default_rng(5)
        drawn = [
            {dim: int(rng.integers(low, high + 1)) for dim, (low, high) in ranges.items()} for _ in range(args.shapes)
        ]
        shapes = corners + [shapes_from_dims(case, dims) for dims in drawn]
        row: dict[str, object] = {}
        if Precision.FP16 in case.precisions:
            fp16 = derive(case, Precision.FP16, PrecisionOptions()).model_bytes
            row["fp16 onnxruntime (float32 inside)"] = worst_errors(case, Precision.FP16, ort_runner(fp16), shapes)
            row["fp16 double 11.4"] = worst_errors(case, Precision.FP16, double_runner(case, Precision.FP16), shapes)
        if Precision.BF16 in case.precisions:
            row["bf16 double 11.4"] = worst_errors(case, Precision.BF16, double_runner(case, Precision.BF16), shapes)
        if Precision.INT8 in case.precisions:
            for calibrator in ("max", "percentile"):
                int8 = derive(case, Precision.INT8, replace(PrecisionOptions(), calibrator=calibrator)).model_bytes
                run = ort_runner(int8)
                row[f"int8 {calibrator} onnxruntime"] = worst_errors(case, Precision.INT8, run, shapes)
                if case is mnist.CASE:
                    row[f"int8 {calibrator} onnxruntime label agreement (1024 generated images)"] = label_agreement(run)
        table[case.name] = row
    print(json.dumps(table, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
