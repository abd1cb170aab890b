"""The int8 recipe on nine real architectures: accuracy, precision proof, Q/DQ placement, and TensorRT's verdict.

Each of the nine `light_*` models ONNX ships (benchmarks/real_models.py: seeded random weights, opset 9) goes
through the harness's own pipeline: derive (harness/precision/derive.py: opset upgrade to 13, Q/DQ int8
calibrated on the case's own generator; fp16 by onnxconverter-common) -> run on ONNX Runtime's CPU provider ->
compare with the float32 ONNX Runtime reference (harness/compare.py's mean relative error) -> precision proof
(harness/precision/proof.py, from the derived model's types). Then TensorRT for RTX builds the int8 model
(build only: no GPU needed), the NVIDIA evidence that the placement is one TensorRT accepts.

ONNX Runtime runs the int8 model with `session.disable_quant_qdq = 1`: Q/DQ pairs are then executed as
written (quantize, dequantize, float kernel) instead of being fused into QLinearConv/QGemm kernels whose
results depend on the CPU (VNNI or not), so these numbers are the same on every x86 machine.

Usage: python benchmarks/real_architectures.py [--models a,b] [--calibrator max|percentile] [--old-recipe] [--no-rtx]
                                              [--json OUT]
  --old-recipe      also quantizes with the recipe before issue 17 (every op ONNX Runtime quantizes by default,
                    inputs and outputs, Softmax included) for comparison.
  --dump DIR        writes each float32 model at opset 13 and its calibration data for benchmarks/modelopt_quantize.py
  --modelopt DIR    also measures the ModelOpt-quantized models found there (<name>.mo.onnx)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from real_models import NAMES, case

from harness.backends import BuildRequest
from harness.case import Case, Precision
from harness.compare import output_errors
from harness.precision.derive import DerivedModel, PrecisionOptions, calibration_inputs, derive
from harness.precision.proof import prove
from harness.precision.quantize import CALIBRATORS

QDQ = ("QuantizeLinear", "DequantizeLinear")
FEEDS = 4  # test images per model (seeds 100-103; calibration uses seeds of its own)


def session(model_bytes: bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.add_session_config_entry("session.disable_quant_qdq", "1")
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def errors(
    target: Case, model_bytes: bytes, feeds: list[dict[str, np.ndarray]], precision: Precision
) -> dict[str, float]:
    """Over the feeds: the worst mean relative error (harness/compare.py's, the one the tolerances bound), the
    worst mean absolute error relative to the output's RMS (logits near 0 inflate the first: DenseNet's output
    is logits, not probabilities), and the share of feeds whose top-1 class agrees with the reference."""
    run = session(model_bytes)
    spec = target.outputs[0]
    worst, worst_rms, agree = 0.0, 0.0, 0
    for feed in feeds:
        expected = np.asarray(target.reference_outputs(feed)[spec.name])
        (actual,) = run.run(None, feed)
        found = output_errors(spec.name, actual, expected, target.tolerance(precision, spec.name))
        worst = max(worst, found.mean_rel)
        worst_rms = max(worst_rms, float(np.mean(np.abs(actual - expected)) / np.sqrt(np.mean(expected**2))))
        agree += int(np.argmax(actual) == np.argmax(expected))
    return {
        "mean_rel": float(f"{worst:.3g}"),
        "mean_abs_over_rms": float(f"{worst_rms:.3g}"),
        "top1_agreement": agree / len(feeds),
    }


def placement(model_bytes: bytes) -> dict[str, Any]:
    """How many Q/DQ nodes, on the inputs of which op types, and whether any touches Softmax or a graph output."""
    graph = onnx.load_from_string(model_bytes).graph
    dequantized = {node.output[0] for node in graph.node if node.op_type == "DequantizeLinear"}
    quantized_by = {node.output[0]: node.input[0] for node in graph.node if node.op_type == "QuantizeLinear"}
    readers: dict[str, int] = {}
    for node in graph.node:
        if node.op_type not in QDQ and any(name in dequantized for name in node.input):
            readers[node.op_type] = readers.get(node.op_type, 0) + 1
    softmax_inputs = {name for node in graph.node if node.op_type == "Softmax" for name in node.input}
    softmax_outputs = {name for node in graph.node if node.op_type == "Softmax" for name in node.output}
    outputs = {value.name for value in graph.output}
    return {
        "qdq_nodes": sum(node.op_type in QDQ for node in graph.node),
        "layers_reading_dq": readers,
        "qdq_on_softmax": bool((softmax_inputs & dequantized) or (set(quantized_by.values()) & softmax_outputs)),
        "qdq_on_graph_output": bool(outputs & (dequantized | set(quantized_by.values()))),
    }


def old_recipe(target: Case, model: onnx.ModelProto) -> bytes:
    """The recipe before issue 17: quantize_static's default op set, inputs and outputs quantized."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    data = iter(calibration_inputs(target))

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(data, None)

    with tempfile.TemporaryDirectory() as scratch:
        source, result = Path(scratch) / "f.onnx", Path(scratch) / "q.onnx"
        source.write_bytes(model.SerializeToString())
        quantize_static(
            source,
            result,
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            extra_options={
                "ActivationSymmetric": True,
                "WeightSymmetric": True,
                "CalibTensorRangeSymmetric": True,
                "QuantizeBias": False,
            },
        )
        return result.read_bytes()


def rtx_build(target: Case, model_bytes: bytes) -> tuple[str, float]:
    start = time.perf_counter()
    try:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from tests.trt_support import adapter_backend, rtx_library

        library = rtx_library()
        if library is None:
            return "TensorRT for RTX not installed", 0.0
        artifact = adapter_backend(library).build(
            BuildRequest(target, Precision.FP32, 0, DerivedModel(Precision.FP32, model_bytes))
        )
        return f"built ({len(artifact.data) / 1e6:.1f} MB engine)", time.perf_counter() - start
    except Exception as error:  # noqa: BLE001  # the verdict is the point: report it, go on with the next model
        return f"FAILED: {str(error).splitlines()[0][:300]}", time.perf_counter() - start


def dump(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        target = case(name)
        model = derive(target, Precision.FP32, PrecisionOptions(min_opset=13)).model_bytes
        (folder / f"{name}.onnx").write_bytes(model)
        key = target.inputs[0].name
        np.savez(folder / f"{name}.npz", **{key: np.concatenate([feed[key] for feed in calibration_inputs(target)])})


def modelopt_row(target: Case, model_bytes: bytes, feeds: list[dict[str, np.ndarray]], args: Any) -> dict[str, Any]:
    """ModelOpt's int8 model held to the same measures: error, the harness's proof, placement, RTX build."""
    derived = DerivedModel(Precision.INT8, model_bytes, (), "max", None)
    proof = prove(derived, None)
    entry: dict[str, Any] = {
        **errors(target, model_bytes, feeds, Precision.INT8),
        "proof": "proven" if not proof.problems else f"FAILED ({len(proof.problems)}): {proof.problems[0]}",
        **placement(model_bytes),
    }
    if not args.no_rtx:
        entry["rtx_build"], seconds = rtx_build(target, model_bytes)
        entry["rtx_build_s"] = round(seconds, 1)
    return entry


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(NAMES))
    parser.add_argument("--old-recipe", action="store_true")
    parser.add_argument("--no-rtx", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--calibrator", choices=CALIBRATORS, default="max")
    parser.add_argument("--dump", type=Path)
    parser.add_argument("--modelopt", type=Path)
    args = parser.parse_args()
    if args.dump:
        dump(args.dump, args.models.split(","))
        return 0
    start = time.perf_counter()
    rows: dict[str, dict[str, Any]] = {}
    for name in args.models.split(","):
        target = case(name)
        feeds = [target.make_inputs(target.profiles[0].opt, np.random.default_rng(100 + seed)) for seed in range(FEEDS)]
        row: dict[str, Any] = {}
        for precision in (Precision.FP16, Precision.INT8):
            began = time.perf_counter()
            derived = derive(target, precision, PrecisionOptions(calibrator=args.calibrator))
            derive_s = time.perf_counter() - began
            proof = prove(derived, None)
            entry: dict[str, Any] = {
                **errors(target, derived.model_bytes, feeds, precision),
                "proof": "proven" if not proof.problems else f"FAILED: {proof.problems[0]}",
                "derive_s": round(derive_s, 2),
                "opset": derived.to_json()["opset"],
            }
            if precision is Precision.INT8:
                entry.update(placement(derived.model_bytes))
                if not args.no_rtx:
                    entry["rtx_build"], entry["rtx_build_s"] = rtx_build(target, derived.model_bytes)
                    entry["rtx_build_s"] = round(entry["rtx_build_s"], 1)
                if args.old_recipe:
                    model = derive(target, Precision.FP32, PrecisionOptions(min_opset=13)).model_bytes
                    old = old_recipe(target, onnx.load_from_string(model))
                    entry["old_recipe"] = {
                        **errors(target, old, feeds, precision),
                        **placement(old),
                    }
            row[precision.value] = entry
        if args.modelopt and (args.modelopt / f"{name}.mo.onnx").exists():
            row["int8 modelopt"] = modelopt_row(target, (args.modelopt / f"{name}.mo.onnx").read_bytes(), feeds, args)
        rows[name] = row
        print(json.dumps({name: row}), flush=True)
    wall = time.perf_counter() - start
    print(f"wall time {wall:.0f} s", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"models": rows, "wall_s": round(wall, 1)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
