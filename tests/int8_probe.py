"""A Q/DQ model whose int8 products overflow 16-bit pair sums, run through the harness's ONNX Runtime backend.

Run as a script (`python -m tests.int8_probe`, also under qemu-x86_64 -cpu MODEL to be another CPU) it prints,
as JSON, what the harness's int8 engine computes and what ONNX Runtime's default (fused) session computes: the
test (tests/test_int8_any_cpu.py) holds the harness's engine to the exact int32 result on every CPU.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

if TYPE_CHECKING:
    from harness.backends.ort import OnnxRuntimeEngine

CHANNELS, FILTERS, SIDE = 64, 8, 4
# Powers of two: every product and sum of the dequantized values is exact in float32 (|sum| < 2^24), so a
# session that accumulates without saturation gives the int32 result bit for bit, on any CPU.
INPUT_SCALE, WEIGHT_SCALE, OUTPUT_SCALE = 2.0**-6, 2.0**-7, 1.0


def weights() -> np.ndarray:
    """int8 weights near ±127: pairs of u8 x s8 products then exceed what 16 bits hold (2 * 255 * 127 > 32767)."""
    rng = np.random.default_rng(0)
    return rng.choice(np.array([-127, -120, 120, 127], np.int8), size=(FILTERS, CHANNELS, 1, 1))


def model_bytes(*, output_quantized: bool = True) -> bytes:
    """x -> Q/DQ -> Conv 1x1 (int8 per-channel weights behind a DequantizeLinear) -> Q/DQ -> y, opset 13; without
    `output_quantized`, the Conv's output is y itself (TensorRT's placement, which the harness's recipe makes)."""
    initializers = [
        numpy_helper.from_array(np.array(INPUT_SCALE, np.float32), "x_scale"),
        numpy_helper.from_array(np.array(0, np.int8), "zero"),
        numpy_helper.from_array(weights(), "w_int8"),
        numpy_helper.from_array(np.full(FILTERS, WEIGHT_SCALE, np.float32), "w_scale"),
        numpy_helper.from_array(np.zeros(FILTERS, np.int8), "w_zero"),
        numpy_helper.from_array(np.array(OUTPUT_SCALE, np.float32), "y_scale"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "x_scale", "zero"], ["x_q"], name="x_q"),
        helper.make_node("DequantizeLinear", ["x_q", "x_scale", "zero"], ["x_dq"], name="x_dq"),
        helper.make_node("DequantizeLinear", ["w_int8", "w_scale", "w_zero"], ["w"], name="w_dq", axis=0),
        helper.make_node("Conv", ["x_dq", "w"], ["conv"], name="conv"),
        helper.make_node("QuantizeLinear", ["conv", "y_scale", "zero"], ["y_q"], name="y_q"),
        helper.make_node("DequantizeLinear", ["y_q", "y_scale", "zero"], ["y"], name="y_dq"),
    ]
    if not output_quantized:
        nodes[3].output[0] = "y"
        del nodes[4:]
    graph = helper.make_graph(
        nodes,
        "saturating_conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, CHANNELS, SIDE, SIDE])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, FILTERS, SIDE, SIDE])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def inputs() -> np.ndarray:
    """Activations at ±127 steps, signed like the first filter's weights: its products all add up."""
    rng = np.random.default_rng(1)
    signs = np.where(weights()[0, :, 0, 0] > 0, 1.0, -1.0)[None, :, None, None]
    noise = rng.integers(120, 128, size=(1, CHANNELS, SIDE, SIDE))
    return (signs * noise * INPUT_SCALE).astype(np.float32)


def exact_int32() -> np.ndarray:
    """What TensorRT computes: int8 products summed in int32, scaled, quantized at the output's scale."""
    x_q = np.clip(np.round(inputs() / INPUT_SCALE), -128, 127).astype(np.int64)
    accumulated = np.einsum("nchw,kc->nkhw", x_q, weights()[:, :, 0, 0].astype(np.int64))
    y = accumulated * (INPUT_SCALE * WEIGHT_SCALE)
    return np.clip(np.round(y / OUTPUT_SCALE), -128, 127) * OUTPUT_SCALE  # numpy rounds half to even, as ONNX


def engine_of(model: bytes) -> OnnxRuntimeEngine:
    """The int8 engine of `model` as the harness's ONNX Runtime backend builds and loads it."""
    from harness.backends import BackendOptions, BuildRequest
    from harness.backends.ort import OnnxRuntimeBackend
    from harness.case import Precision
    from harness.precision.derive import DerivedModel

    backend = OnnxRuntimeBackend(BackendOptions())
    request = BuildRequest(None, Precision.INT8, 0, DerivedModel(Precision.INT8, model))  # type: ignore[arg-type]  # build and load read no case
    return backend.load(backend.build(request).data, request)


def sessions() -> dict[str, np.ndarray]:
    """What the harness's int8 engine of the probe computes (the outputs it judges and times), and what ONNX
    Runtime's default session of the same model computes (its fused int8 kernels, which the harness does not use)."""
    import onnxruntime

    from harness.environment import int8_features

    engine = engine_of(model_bytes())
    feeds = {"x": inputs()}
    default = onnxruntime.InferenceSession(model_bytes(), providers=["CPUExecutionProvider"])
    try:
        return {
            "harness": engine.infer(feeds)["y"],
            "onnxruntime_default": default.run(["y"], feeds)[0],
            "features": np.array(int8_features()),
        }
    finally:
        engine.close()


if __name__ == "__main__":
    found = sessions()
    print(json.dumps({name: array.tolist() for name, array in found.items()}))
