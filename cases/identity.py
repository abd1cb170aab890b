"""identity: a single ONNX Identity op, the smallest case that exercises the whole pipeline.

Any error it shows comes from the harness or the I/O casts, never from arithmetic, so it is the
first thing to look at when every case fails at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.case import Case, Precision, Profile, Shape, TensorSpec
from harness.precision.table import Derivation, row

if TYPE_CHECKING:
    import onnx

    from harness.precision.network import NetworkPrecision

DIMS = ("d0", "d1", "d2")


def onnx_model() -> onnx.ModelProto:
    """y = Identity(x), in float32 (the harness derives the other precisions)."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"], name="identity")],
        "identity",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(DIMS))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(DIMS))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # the IR that opset 17 was released with; every onnxruntime since 1.11 loads it
    return model


def define_network(network: Any, trt: ModuleType, precision: NetworkPrecision) -> None:
    """The ONNX model layer by layer: input x of shape (-1, -1, -1), an identity layer, output y.

    Every dim is dynamic (-1) like the ONNX dims d0, d1, d2; `precision` casts x in and y out as the
    derived ONNX models' Cast nodes do, so the I/O stays float32.
    """
    x = precision.enter(network.add_input("x", trt.DataType.FLOAT, (-1,) * len(DIMS)))
    identity = network.add_identity(x)
    identity.name = "identity"
    y = precision.leave(identity.get_output(0))
    y.name = "y"
    network.mark_output(y)


def reference(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {"y": np.asarray(inputs["x"], dtype=np.float64).copy()}


def generate_inputs(shapes: Mapping[str, Shape], rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"x": rng.standard_normal(shapes["x"], dtype=np.float32)}


CASE = Case(
    name="identity",
    description="A single Identity op that copies a rank-3 float tensor of any shape.",
    inputs=(TensorSpec("x", "float32", DIMS),),
    outputs=(TensorSpec("y", "float32", DIMS),),
    profiles=(Profile(min={"x": (1, 1, 1)}, opt={"x": (3, 4, 5)}, max={"x": (6, 8, 10)}),),
    onnx_model=onnx_model,
    reference=reference,
    generate_inputs=generate_inputs,
    define_network=define_network,
    # No int8 (no quantized precision): a lone Identity has no layer int8 quantizes (nothing computes), so an "int8"
    # identity would be a float32 model under an int8 label; the derivation refuses it and every int8 point would
    # be a skip.
    precisions=tuple(precision for precision in Precision if row(precision).derivation is not Derivation.QUANTIZED),
)
