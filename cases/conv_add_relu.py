"""conv_add_relu: Conv 3x3 + bias -> Add -> Relu, the classic TensorRT vertical-fusion pattern.

The addend of the Add is a second network input, `residual`, standing for the skip tensor of a
ResNet block. Making it an input rather than a constant keeps TensorRT from folding it into the
convolution bias, so the engine has to fuse a real elementwise residual into the conv epilogue.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from harness.case import Case, Profile, Shape, TensorSpec

if TYPE_CHECKING:
    import onnx

    from harness.precision.network import NetworkPrecision

IN_CHANNELS, OUT_CHANNELS, KERNEL, PAD = 8, 16, 3, 1
SEED = 20240801


@functools.cache
def weights() -> dict[str, np.ndarray]:
    """Conv weight (out, in, kh, kw) with He scaling so the output stays O(1), and a small bias.

    Shared by the ONNX model, the numpy reference and the TensorRT network definition.
    """
    rng = np.random.default_rng(SEED)
    fan_in = IN_CHANNELS * KERNEL * KERNEL
    shape = (OUT_CHANNELS, IN_CHANNELS, KERNEL, KERNEL)
    return {
        "conv.weight": (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32),
        "conv.bias": (rng.standard_normal(OUT_CHANNELS) * 0.1).astype(np.float32),
    }


def onnx_model() -> onnx.ModelProto:
    """y = Relu(Conv(x, W, b) + residual), in float32 (the harness derives the other precisions)."""
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node(
            "Conv",
            ["x", "conv.weight", "conv.bias"],
            ["conv_out"],
            kernel_shape=[KERNEL, KERNEL],
            pads=[PAD] * 4,
            name="conv",
        ),
        helper.make_node("Add", ["conv_out", "residual"], ["sum"], name="add"),
        helper.make_node("Relu", ["sum"], ["y"], name="relu"),
    ]
    initializers = [numpy_helper.from_array(w, name) for name, w in weights().items()]
    graph = helper.make_graph(
        nodes,
        "conv_add_relu",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", IN_CHANNELS, "H", "W"]),
            helper.make_tensor_value_info("residual", TensorProto.FLOAT, ["N", OUT_CHANNELS, "H", "W"]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", OUT_CHANNELS, "H", "W"])],
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # the IR that opset 17 was released with; every onnxruntime since 1.11 loads it
    return model


def define_network(network: Any, trt: ModuleType, precision: NetworkPrecision) -> None:
    """The ONNX model layer by layer, with the same weights in the same layouts.

    Inputs x (-1, 8, -1, -1) and residual (-1, 16, -1, -1): NCHW with dynamic N, H, W as in the
    ONNX model. The kernel keeps the ONNX layout (out, in, kh, kw), which is TensorRT's KCRS, and
    padding 1 / stride 1 on both spatial dims match the Conv's pads and strides. `precision` casts the
    inputs in and y out, gives the weights in the compute type, and at int8 puts Q/DQ pairs with the scales
    of the harness's Q/DQ model on the inputs, the kernel (per channel) and each activation (by ONNX name).
    """
    w = weights()
    x = precision.enter(network.add_input("x", trt.DataType.FLOAT, (-1, IN_CHANNELS, -1, -1)))
    residual = precision.enter(network.add_input("residual", trt.DataType.FLOAT, (-1, OUT_CHANNELS, -1, -1)))
    conv = precision.convolution(x, w["conv.weight"], w["conv.bias"], "conv.weight")
    conv.padding_nd = (PAD, PAD)
    conv.stride_nd = (1, 1)
    conv.name = "conv"  # layers named like the ONNX nodes, so that per-layer reports read the same everywhere
    conv_out = precision.activation(conv.get_output(0), "conv_out")
    summed = network.add_elementwise(conv_out, residual, trt.ElementWiseOperation.SUM)
    summed.name = "add"
    relu = network.add_activation(precision.activation(summed.get_output(0), "sum"), trt.ActivationType.RELU)
    relu.name = "relu"
    y = precision.leave(precision.activation(relu.get_output(0), "y"))
    y.name = "y"
    network.mark_output(y)


def conv2d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, pad: int) -> np.ndarray:
    """Stride-1 NCHW convolution with zero padding, in the dtype of its arguments.

    Written with a sliding window and one tensordot, so the contraction runs in BLAS and stays
    fast at the largest profile shapes.
    """
    kernel_h, kernel_w = weight.shape[2:]
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = sliding_window_view(padded, (kernel_h, kernel_w), axis=(2, 3))  # N, C, H, W, kh, kw
    out: np.ndarray = np.tensordot(windows, weight, axes=([1, 4, 5], [1, 2, 3]))  # N, H, W, O
    out = out.transpose(0, 3, 1, 2) + bias[None, :, None, None]
    return out


def reference(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    w = {name: value.astype(np.float64) for name, value in weights().items()}
    x = np.asarray(inputs["x"], dtype=np.float64)
    residual = np.asarray(inputs["residual"], dtype=np.float64)
    conv = conv2d(x, w["conv.weight"], w["conv.bias"], PAD)
    return {"y": np.maximum(conv + residual, 0.0)}


def generate_inputs(shapes: Mapping[str, Shape], rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {name: rng.standard_normal(shapes[name], dtype=np.float32) for name in ("x", "residual")}


def _shapes(batch: int, size: int) -> dict[str, Shape]:
    return {"x": (batch, IN_CHANNELS, size, size), "residual": (batch, OUT_CHANNELS, size, size)}


CASE = Case(
    name="conv_add_relu",
    description="A 3x3 convolution whose output is added to a residual input and passed through ReLU.",
    inputs=(
        TensorSpec("x", "float32", ("N", IN_CHANNELS, "H", "W")),
        TensorSpec("residual", "float32", ("N", OUT_CHANNELS, "H", "W")),
    ),
    outputs=(TensorSpec("y", "float32", ("N", OUT_CHANNELS, "H", "W")),),
    profiles=(Profile(min=_shapes(1, 8), opt=_shapes(4, 32), max=_shapes(8, 64)),),
    onnx_model=onnx_model,
    reference=reference,
    generate_inputs=generate_inputs,
    define_network=define_network,
)
