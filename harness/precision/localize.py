"""Localization: the first layer of a derived model (fp16, int8 Q/DQ) whose output diverges.

Both models run on ONNX Runtime's CPU provider with every intermediate tensor exposed as an extra graph
output, and graph optimizations off so that no tensor is fused away. Layers are matched by tensor name:
the derived models keep the float32 model's tensor names (onnxconverter-common's fp16 conversion keeps
them for converted nodes and puts them on the output Cast of a node kept in float32; ONNX Runtime's Q/DQ
quantization keeps them on the float tensor it quantizes). Errors use the harness's own metric
(harness.compare), judged as a float output is judged against a mean relative tolerance.

Per layer, besides its error: the NaN/Inf elements the reference lacks (`nonfinite`: the errors skip them), and its
`jump`, its error ÷ max(the largest error among the tensors feeding it, the tolerance). A ratio, not a difference:
errors compound multiplicatively through a network (a Softmax over logits a few percent off multiplies their error),
and a difference would favour the last, largest layers; floored at the tolerance, so that growth inside what is
allowed (1e-7 -> 5e-4 under 1e-3) is no jump. Given the outputs the engine under test produced, the localization
also says whether its own run reproduces the engine's failure (`Reproduction`): where it does not, the failure is
in the engine's optimized kernels, not in any layer of the model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from harness.case import Tolerance
from harness.compare import output_errors
from harness.precision.opset import within_onnxruntime_ir

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
    nonfinite: int = 0  # elements NaN/Inf in the candidate where the reference is finite (not in mean_rel)
    input_error: float = 0.0  # the largest mean_rel among the tensors feeding the node (graph inputs: 0)
    jump: float = 0.0  # mean_rel / max(input_error, tolerance): how much this layer multiplies the error


@dataclass(frozen=True)
class Reproduction:
    """Whether the localizer's own run of the derived model reproduces the engine's failure, at the output where
    the two differ most: the localizer's outputs and the engine's, each against the reference model's."""

    output: str
    localizer_mean_rel: float  # the layer-by-layer run of the derived model, against the reference model
    engine_mean_rel: float  # the engine under test, against the same
    between_mean_rel: float  # the layer-by-layer run against the engine
    reproduced: bool
    engine: str  # the backend whose engine failed ("ONNX Runtime", "TensorRT")


@dataclass(frozen=True)
class Localization:
    layers: tuple[LayerError, ...]  # in the reference model's node order
    first_failing: LayerError | None
    tolerance: float
    largest_jump: LayerError | None = None  # the layer that multiplies the error most (largest `jump`)
    first_nonfinite: LayerError | None = None  # the first layer with NaN/Inf where the reference is finite
    reproduction: Reproduction | None = None  # None where no engine outputs were given

    def summary(self) -> str:
        """One line. Where the layer-by-layer run does not reproduce the engine's failure, that first. Then the
        layer where the error jumps most, the first layer beyond the tolerance and the first layer with NaN/Inf
        the reference lacks; or the worst layer when no layer is beyond the tolerance."""
        facts = self._layer_facts()
        found = self.reproduction
        if found is not None and not found.reproduced:
            kernels = (
                f"the failure lives in {found.engine}'s optimized kernels, not in any layer of the model: the "
                f"layer-by-layer run of the same model gives mean relative error {found.localizer_mean_rel:.3g} "
                f"at the outputs, the engine {found.engine_mean_rel:.3g} (output '{found.output}'; the two differ "
                f"by {found.between_mean_rel:.3g})"
            )
            return kernels + (f"; layer by layer, {'; '.join(facts)}" if facts else "")
        if facts:
            return "; ".join(facts)
        if not self.layers:
            return "no layer compared: no float tensor of the reference model exists in the candidate by name"
        worst = max(self.layers, key=lambda layer: layer.mean_rel)
        return f"no layer beyond {self.tolerance:g} (worst: {_label(worst)}, {worst.mean_rel:.3g})"

    def _layer_facts(self) -> list[str]:
        first, jump, nonfinite = self.first_failing, self.largest_jump, self.first_nonfinite
        facts = []
        if first is not None:
            beyond = first.mean_rel > self.tolerance  # else beyond only by NaN/Inf (or a NaN/Inf reference it lacks)
            # 3 digits: 1.0e-03 would read as equal to a 1e-3 limit
            # A jump above 1 takes the error past both its input's and the tolerance; below, it is no news.
            jumped = f"{jump.input_error:.3g} → {jump.mean_rel:.3g}" if jump is not None and jump.jump > 1 else ""
            if jumped and jump is first and beyond:
                facts.append(
                    f"error jumps most at the first layer beyond {self.tolerance:g}: {_label(first)}: {jumped}"
                )
            else:
                if jumped and jump is not None:
                    facts.append(f"error jumps most at {_label(jump)}: {jumped}")
                if beyond or first is not nonfinite:  # else the non-finite fact below says it all
                    facts.append(
                        f"first layer beyond {self.tolerance:g}: {_label(first)}, mean relative error "
                        f"{first.mean_rel:.3g}" + ("" if beyond else " and differs where the reference is NaN/Inf")
                    )
        if nonfinite is not None:
            facts.append(
                f"first non-finite layer: {_label(nonfinite)}: {nonfinite.nonfinite} NaN/Inf where the reference "
                "is finite"
            )
        return facts


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
    engine_outputs: Mapping[str, np.ndarray] | None = None,
    engine: str = "ONNX Runtime",
) -> Localization:
    """Every float output tensor of the reference's nodes, in node order, compared with the candidate's tensor
    of the same name; the first whose error exceeds `tolerance` (mean relative error) is first_failing.

    `runner` runs both exposed models: unoptimized ONNX Runtime by default, or the backend under test (a
    TensorRT engine with every tensor marked as an output). Tensors the candidate lacks (fused or renamed by
    the derivation) and non-float tensors are not compared. `engine_outputs`, the outputs the engine under
    test (`engine` names its backend) produced for these inputs, are checked against this run's: where the
    engine fails and this run does not (or the two differ beyond the tolerance), the failure is not in any
    layer (`reproduction`). Raises ValueError when `inputs` lacks an input of either model.
    """
    run = runner or run_on_onnxruntime
    reference_values = _run_exposed(reference, inputs, "reference", run)
    candidate_values = _run_exposed(candidate, inputs, "candidate", run)
    dequantized = dequantized_names(candidate)
    limit = Tolerance(mean_rel=tolerance)
    compared: dict[str, float] = {}  # tensor -> its mean relative error, for the jumps
    upstream = _UpstreamError(reference, compared)
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
            nonfinite = int((~np.isfinite(actual) & np.isfinite(expected)).sum())
            before = max((upstream(name) for name in node.input if name), default=0.0)
            compared[tensor] = errors.mean_rel
            layers.append(
                LayerError(
                    node.name,
                    node.op_type,
                    tensor,
                    errors.mean_rel,
                    errors.failure is not None,
                    nonfinite,
                    before,
                    errors.mean_rel / max(before, tolerance),
                )
            )
    first = next((layer for layer in layers if layer.exceeds), None)
    jump = max(layers, key=lambda layer: layer.jump, default=None)  # max() keeps the first of equals
    nonfinite_layer = next((layer for layer in layers if layer.nonfinite), None)
    reproduction = (
        None
        if engine_outputs is None
        else _reproduction(reference, reference_values, candidate_values, engine_outputs, limit, engine)
    )
    return Localization(tuple(layers), first, tolerance, jump, nonfinite_layer, reproduction)


class _UpstreamError:
    """The error a tensor carries into the nodes that read it: its own where it was compared, 0 for a graph input
    or weight, else (a tensor not compared: an integer index, one fused away in the candidate) the largest error
    among the tensors its producer reads."""

    def __init__(self, model: onnx.ModelProto, compared: Mapping[str, float]) -> None:
        self._producers = {tensor: node for node in model.graph.node for tensor in node.output}
        self._compared = compared
        self._known: dict[str, float] = {}

    def __call__(self, tensor: str) -> float:
        if tensor in self._compared:
            return self._compared[tensor]
        if tensor not in self._known:
            self._known[tensor] = 0.0  # a cycle cannot occur in a valid graph; this only guards the recursion
            producer = self._producers.get(tensor)
            self._known[tensor] = (
                0.0 if producer is None else max((self(name) for name in producer.input if name), default=0.0)
            )
        return self._known[tensor]


def _reproduction(
    reference: onnx.ModelProto,
    reference_values: Mapping[str, np.ndarray],
    candidate_values: Mapping[str, np.ndarray],
    engine_outputs: Mapping[str, np.ndarray],
    limit: Tolerance,
    engine: str,
) -> Reproduction | None:
    """The localizer's final outputs and the engine's, each against the reference model's, at every float graph
    output all three have. Not reproduced where the engine fails an output and this run does not, or where this
    run's output is further from the engine's than the engine's is from the reference (and beyond the tolerance):
    then this run fails differently, and its layers do not say where the engine breaks. Merely differing beyond
    the tolerance is not enough: under a tight tolerance two sound runs of one fp16 model (optimized and not)
    differ by their rounding as much as each differs from the reference (mnist: 2.3e-4 apart, 2.6e-4 and
    3.1e-4 off, at a 1e-6 limit), and the layer-by-layer run reproduces that failure well enough. Reported at
    the output that decides it (else the engine's worst)."""
    found = []
    for value in reference.graph.output:
        name = value.name
        if name not in reference_values or name not in candidate_values or name not in engine_outputs:
            continue
        ours, theirs = candidate_values[name], np.asarray(engine_outputs[name])
        if ours.shape != theirs.shape:
            continue
        localizer = output_errors(name, ours, reference_values[name], limit)
        engine_errors = output_errors(name, theirs, reference_values[name], limit)
        between = output_errors(name, ours, theirs, limit)
        engine_fails = engine_errors.failure is not None
        elsewhere = between.failure is not None and between.mean_rel > engine_errors.mean_rel
        reproduced = not engine_fails or (localizer.failure is not None and not elsewhere)
        found.append(
            Reproduction(name, localizer.mean_rel, engine_errors.mean_rel, between.mean_rel, reproduced, engine)
        )
    if not found:
        return None
    # The output that shows it not reproduced, else the one where the engine is worst.
    return min(found, key=lambda item: (item.reproduced, -item.engine_mean_rel))


def dequantized_names(model: onnx.ModelProto) -> dict[str, str]:
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
    """The named tensors from one unoptimized ONNX Runtime run (optimizations off: no tensor is fused away), of the
    model at an IR version ONNX Runtime reads (within_onnxruntime_ir)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    readable = within_onnxruntime_ir(model).SerializeToString()
    session = onnxruntime.InferenceSession(readable, options, providers=["CPUExecutionProvider"])
    return dict(zip(names, session.run(names, dict(feeds)), strict=True))
