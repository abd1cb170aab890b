"""The precision transform of the ONNX workflow: a case's float32 model in, the model of a precision out.

fp32 and tf32 run the float32 model itself (tf32 is a builder mode, not a model). fp16 and bf16 keep
float32 I/O: onnxconverter-common's float16 converter (`keep_io_types`) casts at the boundary and converts
every float initializer, Constant and activation in between; nodes named in `keep_fp32` stay float32 with
casts around them (the converter's node block list: the TensorRT 11 way to keep a layer in float32, where
TensorRT 10 had OBEY_PRECISION_CONSTRAINTS and layer.precision). bf16 is the fp16 conversion retyped: every
float16 type becomes bfloat16 and every converted initializer is rounded afresh from its float32 original
(never via float16, whose range would clip it), at an opset of at least 22, the first whose Conv, Gemm and
MatMul accept bfloat16. int8 is harness/precision/quantize.py (it needs calibration data).
"""

from __future__ import annotations

import warnings
from collections.abc import Collection
from typing import TYPE_CHECKING

from harness.case import Precision
from harness.precision.opset import weights_as_weights
from harness.precision.table import Derivation, row

if TYPE_CHECKING:
    import onnx

BF16_MIN_OPSET = 22  # Conv, Gemm, MatMul, Relu ... list tensor(bfloat16) from opset 22 on


def named_nodes(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy whose unnamed nodes are named after their first output, so that every layer can be named in
    --keep-fp32, in the localization and in the per-layer precision summary ("conv1 Half")."""
    import onnx

    named = onnx.ModelProto()
    named.CopyFrom(model)
    taken = {node.name for node in named.graph.node if node.name}
    for node in named.graph.node:
        if not node.name and node.output and node.output[0] not in taken:
            node.name = node.output[0]
            taken.add(node.name)
    return named


class ConversionError(ValueError):
    """The converted model does not type-check: a node's op has no form in the reduced type."""


def derived_model(model: onnx.ModelProto, precision: Precision, keep_fp32: Collection[str] = ()) -> onnx.ModelProto:
    """The model `precision` runs, from the case's float32 model (named by named_nodes); ConversionError naming
    the node and op when the conversion gave an op a type its ONNX schema lacks (Celu has no float16)."""
    derivation = row(precision).derivation
    if derivation is Derivation.AS_IS:
        return model
    if derivation is not Derivation.CONVERTED:
        raise ValueError(f"{precision.value} needs calibration data: use harness.precision.quantize")
    # Weights that an old model (IR < 4) also lists as graph inputs: the converter makes the weight float16 and
    # leaves the input float32 (DenseNet: "[TypeInferenceError] ... (10) vs (1)", even for a kept node's weight).
    model = weights_as_weights(model)
    converter = {"float16": _float16, "bfloat16": _bfloat16}[row(precision).compute_dtype]
    converted = converter(model, keep_fp32)
    _type_check(converted, precision, model)
    return converted


def _type_check(model: onnx.ModelProto, precision: Precision, original: onnx.ModelProto) -> None:
    """ConversionError naming the node of `original` (the float32 model) to keep in float32, whether or not ONNX's
    message names one: a graph-level check names none, and a Cast the converter inserted is no node to keep."""
    import onnx

    try:
        onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except onnx.shape_inference.InferenceError as error:
        culprit = _named_in(str(error), model) or _failing_node(model)
        node, why = _original_node(culprit, model, original) if culprit is not None else (None, "")
        if node is None:  # no node found: the model as a whole (nothing found to keep)
            raise ConversionError(
                f"the {precision.value} model does not type-check: {error}; no node of the model could be found "
                "to blame (each checked alone type-checks)"
            ) from None
        where = f"node '{node.name}' ({node.op_type}){why}"
        raise ConversionError(
            f"the {precision.value} model does not type-check at {where}: {error}; keep that node in float32 "
            f"(--keep-fp32 {node.name}, or the case's keep_fp32)"
        ) from None


def _named_in(message: str, model: onnx.ModelProto) -> onnx.NodeProto | None:
    """The node of `model` ONNX's message names ("(op_type:Celu, node name: identity)"), if it names one."""
    import re

    nodes: dict[str, onnx.NodeProto] = {node.name: node for node in model.graph.node if node.name}
    for name in re.findall(r"node name: ([^)]*)\)", message):
        if name in nodes:
            return nodes[name]
    return None


def _failing_node(model: onnx.ModelProto) -> onnx.NodeProto | None:
    """The node whose inference fails first in `model`, found without ONNX's help: a weight whose type differs
    from the graph input of its name blames the first node reading it; else the shortest prefix of the nodes (in
    order) that fails strict inference ends with the culprit (bisection: log2(nodes) inferences)."""
    import onnx

    declared = {value.name: value.type.tensor_type.elem_type for value in model.graph.input}
    for weight in model.graph.initializer:
        if weight.name in declared and declared[weight.name] != weight.data_type:
            return next((node for node in model.graph.node if weight.name in node.input), None)

    def fails(count: int) -> bool:
        prefix = onnx.ModelProto()
        prefix.CopyFrom(model)
        del prefix.graph.node[count:]
        produced = {name for node in prefix.graph.node for name in node.output}
        outputs = [value for value in prefix.graph.output if value.name in produced]
        del prefix.graph.output[:]
        prefix.graph.output.extend(outputs)
        try:
            onnx.shape_inference.infer_shapes(prefix, check_type=True, strict_mode=True)
        except onnx.shape_inference.InferenceError:
            return True
        return False

    low, high = 0, len(model.graph.node)  # fails(high) is assumed; find the least count that fails
    if fails(low) or not fails(high):
        return None
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if fails(middle) else (middle, high)
    culprit: onnx.NodeProto = model.graph.node[high - 1]
    return culprit


def _original_node(
    node: onnx.NodeProto, converted: onnx.ModelProto, original: onnx.ModelProto
) -> tuple[onnx.NodeProto | None, str]:
    """`node` itself where the float32 model has it, else (a Cast the converter inserted) the original node it
    feeds or is fed by, with a note saying so."""
    originals = {item.name: item for item in original.graph.node if item.name}
    if node.name in originals:
        return originals[node.name], ""
    consumers = [item for item in converted.graph.node if set(item.input) & set(node.output)]
    producers = [item for item in converted.graph.node if set(item.output) & set(node.input)]
    for neighbour in (*consumers, *producers):
        if neighbour.name in originals:
            return originals[neighbour.name], f", next to the {node.op_type} '{node.name}' the conversion inserted"
    return None, ""


def _float16(model: onnx.ModelProto, keep_fp32: Collection[str]) -> onnx.ModelProto:
    from onnxconverter_common import float16

    with warnings.catch_warnings():
        # It warns once per float32 weight below float16's smallest subnormal that it rounds to ±1e-7
        # (min_positive_val) instead of flushing it to zero: expected, and no action for the user.
        warnings.filterwarnings("ignore", message=r".*will be truncated to", category=UserWarning)
        converted: onnx.ModelProto = float16.convert_float_to_float16(
            model, keep_io_types=True, node_block_list=sorted(keep_fp32), disable_shape_infer=False
        )
    _float32_outputs(model, converted)
    return converted


def _float32_outputs(original: onnx.ModelProto, converted: onnx.ModelProto) -> None:
    """Hold the converter to float32 I/O: a kept node that produces a graph output gets an output Cast to
    float16 (onnxconverter-common 1.16), which would hand callers float16. That Cast becomes a float32 one."""
    from onnx import TensorProto

    declared = {value.name: value.type.tensor_type.elem_type for value in original.graph.output}
    producers = {output: node for node in converted.graph.node for output in node.output}
    for value in converted.graph.output:
        wanted = declared.get(value.name)
        if wanted != TensorProto.FLOAT or value.type.tensor_type.elem_type == TensorProto.FLOAT:
            continue
        value.type.tensor_type.elem_type = TensorProto.FLOAT
        producer = producers.get(value.name)
        for attribute in producer.attribute if producer is not None and producer.op_type == "Cast" else ():
            if attribute.name == "to":
                attribute.i = TensorProto.FLOAT


def _bfloat16(model: onnx.ModelProto, keep_fp32: Collection[str]) -> onnx.ModelProto:
    import ml_dtypes
    from onnx import TensorProto, numpy_helper, version_converter

    if _opset(model) < BF16_MIN_OPSET:
        model = version_converter.convert_version(model, BF16_MIN_OPSET)
    originals = {tensor.name: tensor for tensor in model.graph.initializer}
    converted = _float16(model, keep_fp32)
    for value in (*converted.graph.value_info, *converted.graph.input, *converted.graph.output):
        if value.type.tensor_type.elem_type == TensorProto.FLOAT16:
            value.type.tensor_type.elem_type = TensorProto.BFLOAT16
    for node in converted.graph.node:
        for attribute in node.attribute:
            if attribute.name == "to" and attribute.i == TensorProto.FLOAT16:
                attribute.i = TensorProto.BFLOAT16
            if attribute.name == "value" and attribute.t.data_type == TensorProto.FLOAT16:
                attribute.t.CopyFrom(_rounded_to_bfloat16(attribute.t, attribute.t.name))
    for index, tensor in enumerate(converted.graph.initializer):
        if tensor.data_type == TensorProto.FLOAT16:
            source = originals.get(tensor.name, tensor)
            rounded = numpy_helper.from_array(
                numpy_helper.to_array(source).astype("float32").astype(ml_dtypes.bfloat16), tensor.name
            )
            converted.graph.initializer[index].CopyFrom(rounded)
    return converted


def _rounded_to_bfloat16(tensor: onnx.TensorProto, name: str) -> onnx.TensorProto:
    import ml_dtypes
    from onnx import numpy_helper

    rounded: onnx.TensorProto = numpy_helper.from_array(
        numpy_helper.to_array(tensor).astype("float32").astype(ml_dtypes.bfloat16), name
    )
    return rounded


def _opset(model: onnx.ModelProto) -> int:
    return next((entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")), 1)
