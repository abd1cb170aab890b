"""Localization: the first layer of a derived model (fp16, int8 Q/DQ) whose output diverges.

Both models run on ONNX Runtime's CPU provider with every intermediate tensor exposed as an extra graph
output, and graph optimizations off so that no tensor is fused away. Layers are matched by tensor name:
the derived models keep the float32 model's tensor names (onnxconverter-common's fp16 conversion keeps
them for converted nodes and puts them on the output Cast of a node kept in float32; ONNX Runtime's Q/DQ
quantization keeps them on the float tensor it quantizes). Errors use the harness's own metric
(harness.compare), judged as a float output is judged against a mean relative tolerance.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from harness.case import Tolerance
from harness.compare import output_errors

if TYPE_CHECKING:
    import onnx


@dataclass(frozen=True)
class LayerError:
    """One float output tensor of one node of the reference model, against the candidate's."""

    node: str  # the node's name in the reference model; "" for an unnamed node (ONNX does not require names)
    op_type: str
    tensor: str  # the output tensor's name, which both models share
    mean_rel: float
    exceeds: bool  # judged like a float output: mean_rel above the tolerance, or NaN/Inf the reference lacks


@dataclass(frozen=True)
class Localization:
    layers: tuple[LayerError, ...]  # in the reference model's node order
    first_failing: LayerError | None
    tolerance: float

    def summary(self) -> str:
        """One line: the first layer beyond the tolerance, or the worst layer when none is."""
        if self.first_failing is not None:
            layer = self.first_failing
            nonfinite = "" if layer.mean_rel > self.tolerance else " and NaN/Inf where the reference is finite"
            return (
                f"first layer beyond {self.tolerance:g}: {_label(layer)}, mean relative error "
                f"{layer.mean_rel:.3g}{nonfinite}"  # 3 digits: 1.0e-03 would read as equal to a 1e-3 limit
            )
        if not self.layers:
            return "no layer compared: no float tensor of the reference model exists in the candidate by name"
        worst = max(self.layers, key=lambda layer: layer.mean_rel)
        return f"no layer beyond {self.tolerance:g} (worst: {_label(worst)}, {worst.mean_rel:.3g})"


def _label(layer: LayerError) -> str:
    node = f"{layer.node} ({layer.op_type})" if layer.node else f"unnamed {layer.op_type}"
    return f"{node} output '{layer.tensor}'"


# Runs an exposed model (exposed_model) on the given inputs and returns the tensors named, by name.
Runner = Callable[["onnx.ModelProto", Mapping[str, np.ndarray], list[str]], Mapping[str, np.ndarray]]


def localize(
    reference: onnx.ModelProto,
    candidate: onnx.ModelProto,
    inputs: Mapping[str, np.ndarray],
    tolerance: float,
    runner: Runner | None = None,
) -> Localization:
    """Every float output tensor of the reference's nodes, in node order, compared with the candidate's tensor
    of the same name; the first whose error exceeds `tolerance` (mean relative error) is first_failing.

    `runner` runs both exposed models: unoptimized ONNX Runtime by default, or the backend under test (a
    TensorRT engine with every tensor marked as an output). Tensors the candidate lacks (fused or renamed by
    the derivation) and non-float tensors are not compared. Raises ValueError when `inputs` lacks an input of
    either model.
    """
    run = runner or run_on_onnxruntime
    reference_values = _run_exposed(reference, inputs, "reference", run)
    candidate_values = _run_exposed(candidate, inputs, "candidate", run)
    dequantized = _dequantized_names(candidate)
    limit = Tolerance(mean_rel=tolerance)
    layers = []
    for node in reference.graph.node:
        for tensor in node.output:
            if tensor not in reference_values:
                continue  # an omitted optional output, or a tensor that is not float
            candidate_tensor = dequantized.get(tensor, tensor)
            if candidate_tensor not in candidate_values:
                continue
            actual, expected = candidate_values[candidate_tensor], reference_values[tensor]
            if actual.shape != expected.shape:
                raise ValueError(
                    f"tensor '{tensor}' has shape {list(actual.shape)} in the candidate but {list(expected.shape)} "
                    "in the reference; the candidate is not a derivation of the reference"
                )
            errors = output_errors(tensor, actual, expected, limit)
            layers.append(LayerError(node.name, node.op_type, tensor, errors.mean_rel, errors.failure is not None))
    first = next((layer for layer in layers if layer.exceeds), None)
    return Localization(tuple(layers), first, tolerance)


def _dequantized_names(model: onnx.ModelProto) -> dict[str, str]:
    """Tensor name -> the output of DequantizeLinear(QuantizeLinear(tensor)) in a Q/DQ model.

    The tensor under the original name is the float value before quantization; the rest of the network
    sees its round trip through int8, so that is what is compared. The two can differ by more than
    rounding: ONNX Runtime's quantizer folds a Relu after a Conv into the quantization range, so the
    pre-quantization tensor named like the Relu's output still holds the Conv's negative values.
    """
    dequantized_from = {
        node.input[0]: node.output[0] for node in model.graph.node if node.op_type == "DequantizeLinear"
    }
    return {
        node.input[0]: dequantized_from[node.output[0]]
        for node in model.graph.node
        if node.op_type == "QuantizeLinear" and node.output[0] in dequantized_from
    }


def _run_exposed(
    model: onnx.ModelProto, inputs: Mapping[str, np.ndarray], which: str, run: Runner
) -> Mapping[str, np.ndarray]:
    """Every float tensor a node of `model` produces, by name, from one run of the exposed model."""
    initializers = {tensor.name for tensor in model.graph.initializer}
    feeds = [value.name for value in model.graph.input if value.name not in initializers]
    missing = [name for name in feeds if name not in inputs]
    if missing:
        raise ValueError(
            f"the inputs given lack {missing}, which the {which} model takes (it takes {feeds}); pass every input"
        )
    exposed, produced = exposed_model(model)
    return run(exposed, {name: inputs[name] for name in feeds}, produced)


def exposed_model(model: onnx.ModelProto) -> tuple[onnx.ModelProto, list[str]]:
    """A copy of `model` whose every float tensor a node produces is also a graph output, and those names.

    BFLOAT16 is left out: ONNX Runtime's Python API cannot return it as a numpy array (and its CPU provider
    has no bfloat16 kernel for most ops, so a bf16 model seldom runs there at all); 8-bit floats likewise.
    """
    import onnx

    floats = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE}
    # Shape inference on a copy: exposing a tensor needs its element type, and the caller's model stays as it is.
    exposed = onnx.shape_inference.infer_shapes(model)
    types = {
        value.name: value.type.tensor_type.elem_type
        for value in [*exposed.graph.value_info, *exposed.graph.output]
        if value.type.HasField("tensor_type")
    }
    outputs = {value.name for value in exposed.graph.output}
    produced = [name for node in exposed.graph.node for name in node.output if types.get(name) in floats]
    # Only the element type is declared: a shape inference got wrong would otherwise fail the run.
    exposed.graph.output.extend(
        onnx.helper.make_tensor_value_info(name, types[name], None) for name in produced if name not in outputs
    )
    return exposed, produced


def run_on_onnxruntime(
    model: onnx.ModelProto, feeds: Mapping[str, np.ndarray], names: list[str]
) -> Mapping[str, np.ndarray]:
    """The named tensors from one unoptimized ONNX Runtime run (optimizations off: no tensor is fused away)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return dict(zip(names, session.run(names, dict(feeds)), strict=True))
