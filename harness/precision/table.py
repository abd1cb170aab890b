"""Every precision, declared once: one row each. Whatever branches on a precision reads its row here.

A case supplies one float32 model; a row says how the precision's model is derived from it, what its weights
and activations compute in, the word TensorRT's engine inspector shows for a layer computing at it, its default
accuracy limit, its group, and what a builder needs to build it. Adding a precision is adding a row (and, where
its derivation is new, the transform in harness/precision/).

This module imports nothing of the harness, so that harness.case can take the enum and the limits from it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass


class Precision(str, enum.Enum):
    """How the network computes. A case supplies one float32 model; the harness derives every other
    precision from it (harness/precision/). I/O tensors stay float32 at every precision."""

    FP32 = "fp32"  # float32 math; on TensorRT also TF32 off
    TF32 = "tf32"  # float32 tensors, TensorRT allowed to use TF32 tensor cores
    FP16 = "fp16"  # float16 weights and activations, casts at the I/O boundary
    BF16 = "bf16"  # bfloat16 weights and activations, casts at the I/O boundary
    INT8 = "int8"  # explicit quantization: Q/DQ pairs with calibrated scales around float32 layers


class Derivation(enum.Enum):
    """How a precision's model is made from the case's float32 model."""

    AS_IS = "the float32 model itself"  # the precision is a builder mode, not a model
    CONVERTED = "every float weight and activation converted, casts at the I/O boundary"  # convert.py
    QUANTIZED = "Q/DQ pairs with calibrated scales"  # quantize.py: needs calibration data


class Group(enum.Enum):
    """Precisions that behave alike where the harness advises or proves."""

    FLOAT32 = "float32"  # nothing to prove, nothing to keep in float32
    REDUCED_FLOAT = "reduced float"  # a smaller float type throughout: --keep-fp32 is the remedy for a bad layer
    QUANTIZED = "quantized"  # integer math between Q/DQ pairs, on the layers the quantizer chose


@dataclass(frozen=True)
class PrecisionRow:
    precision: Precision
    derivation: Derivation
    group: Group
    compute_dtype: str  # numpy name of the weights' and activations' type between the float32 I/O
    tensorrt_type: str  # TensorRT's DataType member for that type (int8: the Q/DQ pairs' quantized type)
    inspector_word: str  # the engine inspector's word for a layer computing at this precision
    default_mean_rel: float  # the accuracy limit where a case sets none (harness.case.Tolerance)
    builder_flags: tuple[str, ...] = ()  # TensorRT BuilderFlag members every build of this precision sets
    weak_typing_flag: str | None = None  # the BuilderFlag a weakly typed build needs, where it has a way at all
    min_opset: int = 1  # the oldest opset the derivation works at (the case's model is upgraded to it)
    min_opset_reason: str = ""

    @property
    def keeps_fp32(self) -> bool:
        """Whether --keep-fp32 / a case's keep_fp32 can keep a node of this precision's model in float32."""
        return self.group is not Group.FLOAT32

    @property
    def is_proven(self) -> bool:
        """Whether the engine's layers are held to inspector_word (a float32 engine has nothing to prove)."""
        return self.group is not Group.FLOAT32

    @property
    def weakly_typed(self) -> bool:
        """Whether a weakly typed build can make it: float32 needs no flag; the others need a builder flag."""
        return self.group is Group.FLOAT32 or self.weak_typing_flag is not None


# fp32/tf32/fp16 limits: the TensorRT tutorial's defaults (TF32 keeps a 10-bit mantissa like FP16, so it gets FP16's
# limit). bf16 (8-bit mantissa) and int8 are measured (benchmarks/precision_errors.py, docs/precision.md):
# bf16 worst 5.4e-3 on the double's per-op rounding, 4.8-6.4e-3 on an H200 (PyTorch, cuDNN); int8 Q/DQ (ONNX
# Runtime's quantizer, Q/DQ on compute-layer inputs, per-tensor activations) worst 0.025 on conv_add_relu and 0.022
# on mnist's probabilities; on nine real architectures 0.019-0.057, DenseNet-121's logits 0.101.
_ROWS = (
    PrecisionRow(Precision.FP32, Derivation.AS_IS, Group.FLOAT32, "float32", "FLOAT", "Float", 1e-6),
    PrecisionRow(
        Precision.TF32, Derivation.AS_IS, Group.FLOAT32, "float32", "FLOAT", "Float", 1e-3, builder_flags=("TF32",)
    ),
    PrecisionRow(
        Precision.FP16,
        Derivation.CONVERTED,
        Group.REDUCED_FLOAT,
        "float16",
        "HALF",
        "Half",
        1e-3,
        weak_typing_flag="FP16",  # TensorRT 10's; TensorRT 11 removed it (strong typing only)
    ),
    PrecisionRow(Precision.BF16, Derivation.CONVERTED, Group.REDUCED_FLOAT, "bfloat16", "BF16", "BFloat16", 1e-2),
    PrecisionRow(
        Precision.INT8,
        Derivation.QUANTIZED,
        Group.QUANTIZED,
        "float32",  # Q/DQ pairs on float32 tensors: the integer math is TensorRT's, between the pairs
        "INT8",
        "Int8",
        1e-1,
        min_opset=13,  # DequantizeLinear's `axis` (per-channel weight scales) exists from opset 13
        min_opset_reason="int8's per-channel Q/DQ",
    ),
)
PRECISIONS: Mapping[Precision, PrecisionRow] = {row.precision: row for row in _ROWS}


def row(precision: Precision) -> PrecisionRow:
    return PRECISIONS[precision]
