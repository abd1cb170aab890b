"""Proof of precision: what each layer of a point really computes in, and why a label does not hold.

TensorRT engines answer from their engine inspector (harness/precision/layers.py). For ONNX Runtime the
proof reads the model the harness handed to it: the element type of each node's tensors after shape
inference, a Conv or Gemm fed by DequantizeLinear nodes counting as int8 (ONNX Runtime runs such a
group as one QLinearConv / QGemm). Its CPU provider then runs float16 nodes it has no kernel for in
float32 (casts it inserts), which is why its fp16 errors understate a GPU's (docs/precision.md, "What ONNX Runtime computes").
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.case import Precision
from harness.precision.derive import DerivedModel
from harness.precision.layers import INDEX_CHOOSING, LayerPrecision, names_node, precision_problems, summary
from harness.precision.table import PRECISIONS, Group, row

if TYPE_CHECKING:
    import onnx

# The precision each derived precision must show, in the inspector's words (the table's, by precision).
EXPECTED = {precision: entry.inspector_word for precision, entry in PRECISIONS.items() if entry.is_proven}
_ONNX_CONVERSIONS = {
    "Cast": "Cast",
    "QuantizeLinear": "Quantize",
    "DequantizeLinear": "Dequantize",
    "Identity": "NoOp",
    "Dropout": "NoOp",  # a copy at inference: never held to a precision (the int8 derivation removes it)
}
# Identity is a copy at every precision, yet it is the identity case's only layer: what it copies is checked.
_COPIES_CHECKED = {"Identity"}


# Without an engine inspector the proof reads the types the derived ONNX model declares; ONNX Runtime's CPU kernels
# may still compute some layers in float32 (docs/precision.md, What ONNX Runtime computes), so the label says what was read.
ONNX_TYPES = "the ONNX model's declared types"


@dataclass(frozen=True)
class Proof:
    """What each layer computes in, where that was read, and why the point's precision does not hold."""

    source: str  # "engine inspector", or ONNX_TYPES where no inspector exists (ONNX Runtime)
    layers: tuple[LayerPrecision, ...]
    problems: tuple[str, ...]
    summary: str  # "conv1 Half, pool1 Half, fc1 Float (kept)"

    def to_json(self) -> dict[str, object]:
        return {
            "source": self.source,
            "summary": self.summary,
            "problems": list(self.problems),
            "layers": [{"name": l.name, "type": l.layer_type, "precision": l.precision} for l in self.layers],
        }


def prove(derived: DerivedModel, engine_layers: Sequence[LayerPrecision] | None) -> Proof:
    """The proof of a point: the engine's own layer report where the backend has one, else the ONNX model
    the backend was given, held to the precision it was derived for."""
    import onnx

    model = onnx.load_from_string(derived.model_bytes)
    source, layers = (
        ("engine inspector", tuple(engine_layers)) if engine_layers is not None else (ONNX_TYPES, onnx_layers(model))
    )
    quantized = quantized_nodes(model) if row(derived.precision).group is Group.QUANTIZED else set()
    found = problems(layers, derived.precision, derived.kept_fp32, quantized)
    return Proof(source, layers, tuple(found), summary(layers, derived.kept_fp32))


def onnx_layers(model: onnx.ModelProto) -> tuple[LayerPrecision, ...]:
    """Every node of `model` with the type it computes in (its first float output's, or its first float
    input's for index outputs; Int8 for a node whose float inputs all come from DequantizeLinear)."""
    import onnx
    from onnx import TensorProto

    inferred = onnx.shape_inference.infer_shapes(model)
    graph = inferred.graph
    types = {value.name: value.type.tensor_type.elem_type for value in (*graph.value_info, *graph.input, *graph.output)}
    types.update({tensor.name: tensor.data_type for tensor in graph.initializer})
    dequantized = {output for node in graph.node if node.op_type == "DequantizeLinear" for output in node.output}
    initializers = {tensor.name for tensor in graph.initializer}
    layers = []
    for node in graph.node:
        float_inputs = [name for name in node.input if name and types.get(name) in _FLOAT_TYPES]
        # A float32 bias stays an initializer in a Q/DQ model (TensorRT folds it into the int8 kernel).
        computed = [name for name in float_inputs if name not in initializers]
        if node.op_type not in _ONNX_CONVERSIONS and computed and all(name in dequantized for name in computed):
            precision = "Int8"
        else:
            wanted = _ANY_TYPE if node.op_type == "QuantizeLinear" else _FLOAT_TYPES  # Q's output is its int8
            element = next((types.get(name) for name in node.output if types.get(name) in wanted), None)
            if element is None:
                element = next((types.get(name) for name in float_inputs), None)
            precision = _NAMES.get(element or 0, TensorProto.DataType.Name(element) if element else "Unknown")
        layer_type = (
            node.op_type if node.op_type in _COPIES_CHECKED else _ONNX_CONVERSIONS.get(node.op_type, node.op_type)
        )
        layers.append(LayerPrecision(node.name, layer_type, precision))
    return tuple(layers)


def quantized_nodes(model: onnx.ModelProto) -> set[str]:
    """Nodes of a Q/DQ model that compute on a DequantizeLinear output into a float tensor: the layers int8
    must run in Int8 (an ArgMax reading dequantized logits computes indices, not int8 arithmetic)."""
    dequantized = {output for node in model.graph.node if node.op_type == "DequantizeLinear" for output in node.output}
    return {
        node.name
        for node in model.graph.node
        if node.op_type not in _ONNX_CONVERSIONS
        and any(name in dequantized for name in node.input)
        and not _indices(node)
    }


def _indices(node: onnx.NodeProto) -> bool:
    """Index-choosing nodes compare and compute no arithmetic: never held to a precision (layers.INDEX_CHOOSING)."""
    return node.op_type in INDEX_CHOOSING or node.op_type in ("NonZero", "NonMaxSuppression")


def problems(
    layers: Sequence[LayerPrecision], precision: Precision, kept: Collection[str], quantized: Collection[str] = ()
) -> list[str]:
    """Why the layers do not prove `precision` (empty: proven). fp32/tf32 have nothing to prove; int8 is held
    to the layers the quantizer put Q/DQ around (softmax, pooling and the like stay float in a Q/DQ model)."""
    expected = EXPECTED.get(precision)
    if expected is None:
        return []
    if row(precision).group is Group.QUANTIZED:
        return _quantized_problems(layers, quantized, expected)
    return precision_problems(layers, expected, kept)


def _quantized_problems(layers: Sequence[LayerPrecision], quantized: Collection[str], expected: str) -> list[str]:
    """Each node the quantizer wrapped must run in `expected` (Int8) in some layer named after it: TensorRT names
    fused layers after every node they hold ("conv1 + relu1") and may split a node in several (a Gemm's matrix
    multiply and bias), so one such layer carrying the node's name is the proof."""
    if not quantized:
        return ["no layer of the int8 model is quantized: the quantizer found nothing to put Q/DQ around"]
    problems = []
    for node in sorted(quantized):
        named = [layer for layer in layers if names_node(layer.name, node)]
        if not any(layer.precision == expected for layer in named):
            seen = ", ".join(f"{layer.name} {layer.precision}" for layer in named) or "no layer of that name"
            problems.append(f"node '{node}' was quantized but runs in no {expected} layer ({seen})")
    return problems


_FLOAT_TYPES = {1, 10, 16, 11}  # FLOAT, FLOAT16, BFLOAT16, DOUBLE
_ANY_TYPE = set(range(1, 32))
_NAMES = {1: "Float", 10: "Half", 16: "BFloat16", 11: "Double", 3: "Int8", 6: "Int32", 7: "Int64", 9: "Bool"}
