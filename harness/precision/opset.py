"""Old opsets: a model below the opset a backend (or a derivation) needs is upgraded, never refused outright.

ONNX Runtime guarantees opsets from 7 (it has no Gemm(6) kernel at all), TensorRT's parser from 9, and
per-channel Q/DQ (DequantizeLinear's `axis`) exists from opset 13. `onnx.version_converter` rewrites a
model's operators to a newer opset with their meaning kept (Gemm's `broadcast` attribute, Dropout's
`is_test`, ...); the harness records what it did, "converted from opset 6 to 9", wherever the model is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.errors import HarnessError

if TYPE_CHECKING:
    import onnx

# The default ONNX domain is spelled "" or "ai.onnx".
_DEFAULT_DOMAINS = ("", "ai.onnx")


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
        converted = version_converter.convert_version(model, minimum)
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
