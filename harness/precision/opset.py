"""Old opsets: a model below the opset a backend (or a derivation) needs is upgraded, never refused outright.

ONNX Runtime guarantees opsets from 7 (it has no Gemm(6) kernel at all), TensorRT's parser from 9, and
per-channel Q/DQ (DequantizeLinear's `axis`) exists from opset 13. `onnx.version_converter` rewrites a
model's operators to a newer opset with their meaning kept (Gemm's `broadcast` attribute, Dropout's
`is_test`, ...); the harness records what it did, "converted from opset 6 to 9", wherever the model is used.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.errors import HarnessError
from harness.precision.table import Precision, row

if TYPE_CHECKING:
    import onnx

INT8_MIN_OPSET = row(Precision.INT8).min_opset  # the table's row says why
# The default ONNX domain is spelled "" or "ai.onnx".
_DEFAULT_DOMAINS = ("", "ai.onnx")
# ONNX Runtime's refusal of a model newer than it reads (onnxruntime/core/graph/model.cc, 1.17 to 1.32).
_IR_REFUSAL = re.compile(r"Unsupported model IR version: \d+, max supported IR version: (\d+)")


class OpsetConversionError(HarnessError):
    """onnx.version_converter could not lift a model to the opset needed; the message names both and the fix."""


@dataclass(frozen=True)
class OpsetConversion:
    """The default domain's opset before and after an upgrade."""

    source: int
    target: int

    def __str__(self) -> str:
        return f"converted from opset {self.source} to {self.target}"


def opset_of(model: onnx.ModelProto) -> int:
    """The model's opset of the default ONNX domain (1 where the model imports none, as ONNX defines)."""
    versions = [entry.version for entry in model.opset_import if entry.domain in _DEFAULT_DOMAINS]
    return max(versions, default=1)


def upgraded(model: onnx.ModelProto, minimum: int, *, needed_by: str) -> tuple[onnx.ModelProto, OpsetConversion | None]:
    """`model` at opset `minimum` or above: itself (and None) where it already is, else the converted copy and
    what was done. `needed_by` says who needs the opset ("ONNX Runtime", "int8's per-channel Q/DQ") for the
    OpsetConversionError raised when the converter cannot do it."""
    import onnx
    from onnx import version_converter

    source = opset_of(model)
    if source >= minimum:
        return model, None
    try:
        converted = version_converter.convert_version(
            _prelu_slopes_per_channel(model) if source < 7 else model, minimum
        )
        # The converter keeps the source's IR version, which may predate what it wrote (initializers that are
        # not graph inputs need IR 4): raise it to the least the new opsets need.
        least = onnx.helper.find_min_ir_version_for(list(converted.opset_import), ignore_unknown=True)
        converted.ir_version = max(converted.ir_version, least)
        onnx.checker.check_model(converted)
    except (RuntimeError, ValueError, onnx.checker.ValidationError) as error:  # C++ messages, bare types
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise OpsetConversionError(
            f"the model is at opset {source}, {needed_by} needs opset {minimum} or above, and "
            f"onnx.version_converter could not convert it ({detail}); export the model again at opset {minimum} "
            "or newer (e.g. torch.onnx.export(..., opset_version=17))"
        ) from None
    return converted, OpsetConversion(source, opset_of(converted))


def within_onnxruntime_ir(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` at an IR version the installed ONNX Runtime reads: itself where it does; else a copy at the newest IR
    version ONNX Runtime reads, where the model's opsets need no newer one.

    The IR version numbers the file format, and onnx.helper.make_model stamps the newest its onnx knows: onnx 1.23
    writes IR 14, which onnxruntime 1.30 refuses ("max supported IR version: 13") although every operator of the
    model is one it runs. Where the opsets themselves need a newer IR, the model is returned as it is, and ONNX
    Runtime's refusal names both versions: the fix is a newer onnxruntime."""
    import onnx

    limit = onnxruntime_ir_limit(model.ir_version)
    if limit is None or onnx.helper.find_min_ir_version_for(list(model.opset_import), ignore_unknown=True) > limit:
        return model
    fitted = onnx.ModelProto()
    fitted.CopyFrom(model)
    fitted.ir_version = limit
    return fitted


@functools.cache
def onnxruntime_ir_limit(ir_version: int) -> int | None:
    """The newest IR version the installed ONNX Runtime reads, where it refuses `ir_version`; None where it reads it.
    Asked of ONNX Runtime itself, with a one-node model at that IR version (its Python API does not say)."""
    import onnxruntime
    from onnx import TensorProto, helper

    tensor = [helper.make_tensor_value_info(name, TensorProto.FLOAT, [1]) for name in ("x", "y")]
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "ir_probe", tensor[:1], tensor[1:])
    probe = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    probe.ir_version = ir_version
    try:
        onnxruntime.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    except Exception as error:  # noqa: BLE001 - onnxruntime's own Fail type; anything but the IR refusal: None
        found = _IR_REFUSAL.search(str(error))
        return int(found.group(1)) if found else None
    return None


def weights_as_weights(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` with its initializers no longer listed as graph inputs (a copy; `model` itself where none is).

    Before IR version 4 every initializer had to be a graph input too, which made ONNX Runtime ask for every
    weight in the input feed ("Required inputs [...] are missing") and `onnx.version_converter` refuse the
    initializers it adds. The weights are weights: they are taken off the inputs and the IR version raised to 4,
    the first that allows it.
    """
    import onnx

    weights = {tensor.name for tensor in model.graph.initializer}
    if not any(value.name in weights for value in model.graph.input):
        return model
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    inputs = [value for value in fixed.graph.input if value.name not in weights]
    del fixed.graph.input[:]
    fixed.graph.input.extend(inputs)
    fixed.ir_version = max(fixed.ir_version, 4)
    return fixed


def _prelu_slopes_per_channel(model: onnx.ModelProto) -> onnx.ModelProto:
    """Before opset 7, PRelu's slope applied per channel (axis 1: "if Slope is of size 1, the value is shared across
    different channels"); from opset 7 it broadcasts from the last axis, and onnx.version_converter keeps the slope as
    it is, so a [C] slope on an [N, C, L] input stops meaning what it meant (ONNX Runtime then refuses to broadcast
    it). A model below 7 gets its [C] slope initializers reshaped to [C, 1, ...] first: the same per-channel PRelu
    in either opset. A copy where anything changed; `model` itself otherwise."""
    import onnx
    from onnx import numpy_helper

    ranks = _ranks(model)
    weights = {tensor.name: tensor for tensor in model.graph.initializer}
    changes: dict[int, tuple[str, onnx.TensorProto]] = {}
    for index, node in enumerate(model.graph.node):
        if node.op_type != "PRelu" or node.domain not in _DEFAULT_DOMAINS or len(node.input) < 2:
            continue
        slope, rank = weights.get(node.input[1]), ranks.get(node.input[0])
        if slope is None or rank is None or rank < 3 or len(slope.dims) != 1 or slope.dims[0] == 1:
            continue
        array = numpy_helper.to_array(slope).reshape((slope.dims[0],) + (1,) * (rank - 2))
        name = f"{slope.name}_per_channel_rank{rank}"
        changes[index] = (name, numpy_helper.from_array(array, name))
    if not changes:
        return model
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    added: dict[str, onnx.TensorProto] = {}
    for index, (name, tensor) in changes.items():
        fixed.graph.node[index].input[1] = name
        added[name] = tensor
    fixed.graph.initializer.extend(added.values())
    return fixed


def _ranks(model: onnx.ModelProto) -> dict[str, int]:
    """Each value's rank, where the model or ONNX's shape inference knows it."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except (onnx.shape_inference.InferenceError, RuntimeError, ValueError):
        inferred = model
    graph = inferred.graph
    return {
        value.name: len(value.type.tensor_type.shape.dim)
        for value in (*graph.input, *graph.value_info, *graph.output)
        if value.type.HasField("tensor_type") and value.type.tensor_type.HasField("shape")
    }
