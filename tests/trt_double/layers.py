"""What each layer the double implements does: output shapes, output types and values, in numpy.

Plain data only, so that a plan can hold it: tensor types are DataType member names ("FLOAT",
"HALF", ...), shapes are int tuples with -1 for a dimension unknown until the input shapes are set,
parameters are ints, tuples, names and numpy arrays. Keys of OPS are LayerType member names.

Numerics (Numerics below): a layer whose output is float16 or bfloat16 computes in float32 and rounds
its output to that type (fp32 accumulation, like TensorRT's half kernels); a float32 layer computes in
float64 and rounds to float32 (exact float32 math), except that with BuilderFlag.TF32 at build the
operands of convolutions and matrix multiplies are first rounded to TF32. Quantize / dequantize compute
in float32: q = saturate(round_half_to_even(x / scale)) to int8, dq = q * scale (zero points must be 0).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import ml_dtypes
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

Shape = tuple[int, ...]
Params = dict[str, Any]

NUMPY_TYPES: dict[str, type] = {
    "FLOAT": np.float32,
    "HALF": np.float16,
    "INT8": np.int8,
    "INT32": np.int32,
    "INT64": np.int64,
    "BOOL": np.bool_,
    "UINT8": np.uint8,
}
# What tensors and weights of each type are stored as. BF16 has no numpy type of its own (trt.nptype refuses
# it, as TensorRT's does): ml_dtypes' bfloat16, which onnx's numpy_helper also uses, stands in for it.
STORAGE_TYPES: dict[str, type] = {**NUMPY_TYPES, "BF16": ml_dtypes.bfloat16}
FLOATS = frozenset({"FLOAT", "HALF", "BF16"})
_REDUCED_FLOATS = {"HALF": np.float16, "BF16": ml_dtypes.bfloat16}


class LayerError(Exception):
    """A layer's inputs or parameters are invalid: TensorRT would refuse to build the network."""


def type_of_array(array: np.ndarray) -> str:
    for name, numpy_type in STORAGE_TYPES.items():
        if array.dtype == numpy_type:
            return name
    raise TypeError(f"unsupported numpy data type {array.dtype} for TensorRT weights")


def round_tf32(values: np.ndarray) -> np.ndarray:
    """float32 values rounded to TF32's 10-bit mantissa, to nearest even, on the float32 bit pattern."""
    single = np.ascontiguousarray(values, dtype=np.float32)
    bits = single.view(np.uint32)
    rounded = ((bits + np.uint32(0xFFF) + ((bits >> np.uint32(13)) & np.uint32(1))) & np.uint32(0xFFFFE000)).view(
        np.float32
    )
    return np.where(np.isfinite(single), rounded, single)


def is_float(array: np.ndarray) -> bool:
    """Whether an array holds floats: numpy's own kinds, or bfloat16 (whose numpy kind is "V")."""
    return array.dtype.kind == "f" or array.dtype == ml_dtypes.bfloat16


def reduced_float(type_names: Sequence[str]) -> type | None:
    """The 16-bit float type a layer with these output types computes for (None: a float32 layer)."""
    return next((_REDUCED_FLOATS[name] for name in type_names if name in _REDUCED_FLOATS), None)


@dataclass(frozen=True)
class Numerics:
    """How one layer computes its float values."""

    reduced: type | None  # np.float16 or bfloat16: compute in float32 and round the outputs to that type
    tf32: bool  # round convolution / matrix-multiply operands to TF32 (float32 layers only)

    def value(self, array: np.ndarray) -> np.ndarray:
        """A float input or weight in the compute type, after the rounding its storage type implies."""
        if not is_float(array):
            return array
        if self.reduced is not None:
            return array.astype(self.reduced).astype(np.float32)
        return array.astype(np.float64)

    def operand(self, array: np.ndarray) -> np.ndarray:
        """An operand of a convolution or matrix multiply: value(), through TF32 when it is enabled."""
        if self.tf32 and self.reduced is None and is_float(array):
            return round_tf32(array).astype(np.float64)
        return self.value(array)

    def finish(self, array: np.ndarray, type_name: str) -> np.ndarray:
        """A computed output rounded as the layer's output type (16-bit compute rounds to its type)."""
        target = STORAGE_TYPES[type_name]
        if type_name in FLOATS:
            return np.asarray(array).astype(self.reduced or np.float32).astype(target, copy=False)
        return np.asarray(array).astype(target, copy=False)


@dataclass(frozen=True)
class Op:
    shapes: Callable[[Params, list[Shape]], list[Shape]]
    types: Callable[[Params, list[str], bool], list[str]]  # (params, input types, strongly typed)
    compute: Callable[[Params, list[np.ndarray], Numerics], list[np.ndarray]]
    tf32_operands: frozenset[int] = frozenset()  # input positions that TF32 rounds (data and kernel, not bias)


def _fmt(shape: Sequence[int]) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


def _require_float(what: str, type_name: str) -> None:
    if type_name not in FLOATS:
        raise LayerError(f"{what} needs a FLOAT, HALF or BF16 input, got {type_name}")


def _same_type(what: str, types: list[str], strongly_typed: bool) -> str:
    """The common type of a multi-input layer: strongly typed networks require it; weak ones widen floats."""
    first = types[0]
    if all(t == first for t in types):
        return first
    if not strongly_typed and all(t in FLOATS for t in types):
        return "FLOAT"
    raise LayerError(f"{what}: input types {types} differ; in a strongly typed network they must be equal (add a cast)")


def _broadcast(a: Shape, b: Shape, what: str) -> Shape:
    """TensorRT's broadcast: equal ranks, and per dimension equal sizes or one side of size 1."""
    if len(a) != len(b):
        raise LayerError(
            f"{what}: inputs have ranks {len(a)} and {len(b)} ({_fmt(a)} and {_fmt(b)}); TensorRT broadcasts only "
            "between equal ranks, over dimensions of size 1 (reshape the smaller input first)"
        )
    out = []
    for axis, (x, y) in enumerate(zip(a, b)):
        if x == y or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        elif x < 0 or y < 0:
            out.append(max(x, y))  # the known size; the unknown one must match it at run time
        else:
            raise LayerError(f"{what}: dimension {axis} does not broadcast: {_fmt(a)} and {_fmt(b)}")
    return tuple(out)


def _window_out(size: int, window: int, stride: int, padding: int, what: str) -> int:
    if size < 0:
        return -1
    out = (size + 2 * padding - window) // stride + 1
    if out < 1:
        raise LayerError(f"{what}: window {window} (padding {padding}) does not fit an input dimension of {size}")
    return out


def _pair(params: Params, key: str, what: str) -> tuple[int, int]:
    value = tuple(params[key])
    if len(value) != 2:
        raise LayerError(f"{what}: the double implements 2-D windows only; {key} is {_fmt(value)}")
    return value[0], value[1]


def _single_axis(axes: int, rank: int, what: str) -> int:
    if axes <= 0 or axes & (axes - 1) or axes >= 1 << rank:
        raise LayerError(f"{what}: axes must be one bit below 1 << rank ({rank}), got {axes:#b}")
    return axes.bit_length() - 1


def _axes_list(axes: int, rank: int, what: str) -> tuple[int, ...]:
    if axes <= 0 or axes >= 1 << rank:
        raise LayerError(f"{what}: axes bitmask {axes:#b} names no axis of a rank-{rank} input")
    return tuple(axis for axis in range(rank) if axes >> axis & 1)


# --- identity and cast ---------------------------------------------------------------------------


def _identity_types(params: Params, types: list[str], strongly_typed: bool) -> list[str]:
    return [types[0]]


def _same_shape(params: Params, shapes: list[Shape]) -> list[Shape]:
    return [shapes[0]]


def _cast_types(params: Params, types: list[str], strongly_typed: bool) -> list[str]:
    if params["to_type"] not in STORAGE_TYPES:
        raise LayerError(f"the double does not implement casts to {params['to_type']}")
    return [params["to_type"]]


def _cast(params: Params, inputs: list[np.ndarray], numerics: Numerics) -> list[np.ndarray]:
    return [inputs[0].astype(STORAGE_TYPES[params["to_type"]])]


# --- convolution -----------------------------------------------------------------------------------


def _conv_shapes(params: Params, shapes: list[Shape]) -> list[Shape]:
    what = "convolution"
    if len(shapes[0]) != 4:
        raise LayerError(f"{what}: the double implements 2-D convolution only (NCHW input), got {_fmt(shapes[0])}")
    n, c, h, w = shapes[0]
    maps = params["num_output_maps"]
    kh, kw = _pair(params, "kernel_shape", what)
    sh, sw = _pair(params, "stride", what)
    ph, pw = _pair(params, "padding", what)
    if c < 0:
        raise LayerError(f"{what}: the channel dimension of input {_fmt(shapes[0])} must be known at build time")
    # The kernel and bias are weights, or tensors set as inputs 1 and 2 (ILayer.set_input, Q/DQ weights).
    expected = {"kernel": maps * c * kh * kw, "bias": maps}
    for role, position in (("kernel", 1), ("bias", 2)):
        if len(shapes) > position:
            count = -1 if min(shapes[position], default=0) < 0 else math.prod(shapes[position])
        else:
            count = None if params[role] is None else params[role].size
        if count is not None and count >= 0 and count != expected[role]:
            raise LayerError(f"{what}: {role} weights has count {count} but {expected[role]} was expected")
    return [(n, maps, _window_out(h, kh, sh, ph, what), _window_out(w, kw, sw, pw, what))]


def _conv_types(params: Params, types: list[str], strongly_typed: bool) -> list[str]:
    _require_float("convolution", types[0])
    if strongly_typed:
        for role, position in (("kernel", 1), ("bias", 2)):
            weights = params[role]
            if len(types) > position:
                role_type = types[position]
            elif weights is not None:
                role_type = type_of_array(weights)
            else:
                continue
            if role_type != types[0]:
                raise LayerError(
                    f"convolution: {role} weights are {role_type} but the input is {types[0]}; "
                    "a strongly typed network needs weights of the input's type"
                )
    return [types[0]]


def _conv(params: Params, inputs: list[np.ndarray], numerics: Numerics) -> list[np.ndarray]:
    x = inputs[0]
    kh, kw = params["kernel_shape"]
    sh, sw = params["stride"]
    ph, pw = params["padding"]
    kernel = inputs[1] if len(inputs) > 1 else numerics.operand(params["kernel"])
    weight = kernel.reshape(params["num_output_maps"], x.shape[1], kh, kw)
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    windows = sliding_window_view(padded, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]  # N, C, H', W', kh, kw
    out = np.tensordot(windows, weight, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)
    bias = inputs[2].reshape(-1) if len(inputs) > 2 else params["bias"]
    if bias is not None:
        out = out + numerics.value(bias)[None, :, None, None]
    return [out]


# --- quantize and dequantize ----------------------------------------------------------------------
# Inputs: data, scale, and optionally a zero point (input 2), which TensorRT requires to be all zeros
# (the builder checks that, builder.py). Types: Q takes a float and gives to_type, DQ the reverse; the
# scale has the float side's type. Scale: one value (per tensor) or one per index of `axis` (per channel).

QUANTIZED = frozenset({"INT8"})  # the double implements int8 Q/DQ only (not FP8, INT4, FP4, UINT8)


def _qdq_shapes(params: Params, shapes: list[Shape], *, quantize: bool) -> list[Shape]:
    what = "quantize" if quantize else "dequantize"
    data, scale = shapes[0], shapes[1]
    if len(shapes) > 2 and shapes[2] != scale:
        raise LayerError(f"{what}: zero point {_fmt(shapes[2])} and scale {_fmt(scale)} differ in shape")
    if math.prod(scale) == 1 and len(scale) <= 1:
        return [data]  # per tensor
    axis = params["axis"]
    if len(scale) != 1 or not 0 <= axis < len(data):
        raise LayerError(
            f"{what}: ScaleMode is illegal: scale {_fmt(scale)} needs axis in [0, {len(data)}), got {axis} "
            "(the double implements per-tensor and per-channel scales, not blocked ones)"
        )
    if min(scale[0], data[axis]) >= 0 and scale[0] != data[axis]:
        raise LayerError(f"{what}: {scale[0]} scales for dimension {axis} of {_fmt(data)}")
    return [data]


def _qdq_types(params: Params, types: list[str], strongly_typed: bool, *, quantize: bool) -> list[str]:
    what = "quantize" if quantize else "dequantize"
    to_type = params["to_type"]
    low, high = (to_type, types[0]) if quantize else (types[0], to_type)
    if low not in QUANTIZED:
        raise LayerError(f"the double does not implement {what} of {low} (only {sorted(QUANTIZED)})")
    _require_float(what, high)
    if types[1] != high:
        raise LayerError(f"{what}: the scale is {types[1]}, it must be {high} like the float side")
    return [to_type]


def _per_channel(scale: np.ndarray, rank: int, axis: int) -> np.ndarray:
    """The scale shaped to broadcast against the data: a scalar, or its values along `axis`."""
    values = scale.astype(np.float32).reshape(-1)
    if values.size == 1:
        return values.reshape(())
    return values.reshape([-1 if d == axis else 1 for d in range(rank)])


def _quantize(params: Params, inputs: list[np.ndarray], numerics: Numerics) -> list[np.ndarray]:
    x, scale = inputs[0].astype(np.float32), _per_channel(inputs[1], inputs[0].ndim, params["axis"])
    limits = np.iinfo(STORAGE_TYPES[params["to_type"]])
    return [np.clip(np.rint(x / scale), limits.min, limits.max)]  # rint rounds half to even


def _dequantize(params: Params, inputs: list[np.ndarray], numerics: Numerics) -> list[np.ndarray]:
    q, scale = inputs[0], _per_channel(inputs[1], inputs[0].ndim, params["axis"])
    return [q.astype(np.float32) * scale]


# --- elementwise and activation --------------------------------------------------------------------

_ARITHMETIC: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "SUM": np.add,
    "SUB": np.subtract,
    "PROD": np.multiply,
    "MAX": np.maximum,
    "MIN": np.minimum,
    "POW": np.power,
    "FLOOR_DIV": np.floor_divide,
}
_COMPARISONS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "EQUAL": np.equal,
    "GREATER": np.greater,
    "LESS": np.less,
}
_LOGICAL: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "AND": np.logical_and,
    "OR": np.logical_or,
    "XOR": np.logical_xor,
}


def _elementwise_shapes(params: Params, shapes: list[Shape]) -> list[Shape]:
    return [_broadcast(shapes[0], shapes[1], f"elementwise {params['op']}")]


def _elementwise_types(params: Params, types: list[str], strongly_typed: bool) -> list[str]:
    op = params["op"]
    common = _same_type(f"elementwise {op}", types, strongly_typed)
    if op in _LOGICAL:
        if common != "BOOL":
            raise LayerError(f"elementwise {op} needs BOOL inputs, got {types}")
        return ["BOOL"]
    return ["BOOL"] if op in _COMPARISONS else [common]


def _elementwise(params: Params, inputs: list[np.ndarray], numerics: Numerics) -> list[np.ndarray]:
    op = params["op"]
    a, b = inputs
    if op == "DIV":
        quotient = np.true_divide(a, b)
        return [quotient if a.dtype.kind == "f" else np.trunc(quotient)]  # integer division truncates
    table = _ARITHMETIC | _COMPARISONS | _LOGICAL
    return [table[op](a, b)]


SUPPORTED_ACTIVATIONS = frozenset({"RELU", "SIGMOID", "TANH"})


def _activation_types(params: Params, types: list[str], strongly_typed: bool) -> list[str]:
    _require_float(f"activation {params['type']}", types[0])
    if params["type"] not in SUPPORTED_ACTIVATIONS:
        raise LayerError(f"the double does not implement activation {params['type']}")
    return [types[0]]


def _activation(params: Params, inputs: list[np.ndarray], numerics: Numerics) -> list[np.ndarray]:
    x = inputs[0]
    if params["type"] == "RELU":
        return [np.maximum(x, 0)]
    if params["type"] == "SIGMOID":
        return [1 / (1 + np.exp(-x))]
    return [np.tanh(x)]


# --- pooling ---------------------------------------------------------------------------------------


def _pooling_shapes(params: Params, shapes: list[Shape]) -> list[Shape]:
    what = f"pooling {params['type']}"
    if len(shapes[0]) != 4:
        raise LayerError(f"{what}: the double implements 2-D pooling only (NCHW input), got {_fmt(shapes[0])}")
    n, c, h, w = shapes[0]
    kh, kw = _pair(params, "window", what)
    sh, sw = _pair(params, "stride", what)
    ph, pw = _pair(params, "padding", what)
    return [(n, c, _window_out(h, kh, sh, ph, what), _window_out(w, kw, sw, pw, what))]


def _pooling_types(params: Params, types: list[str], strongly_typed: bool) -> list[str]:
    _require_float("pooling", types[0])
    if params["type"] not in ("MAX", "AVERAGE"):
        raise LayerError(f"the double does not implement pooling {params['type']}")
    return [types[0]]


def _pooling(params: Params, inputs: list[np.ndarray], numerics: Numerics) -> list[np.ndarray]:
    x = inputs[0]
    kh, kw = params["window"]
    sh, sw = params["stride"]
    ph, pw = params["padding"]
    pad = ((0, 0), (0, 0), (ph, ph), (pw, pw))
    if params["type"] == "MAX":
        padded = np.pad(x, pad, constant_values=-np.inf)
        return [sliding_window_view(padded, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw].max(axis=(4, 5))]
    sums = sliding_window_view(np.pad(x, pad), (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw].sum(axis=(4, 5))
    if not params["exclude_padding"]:
        return [sums / (kh * kw)]
    ones = np.pad(np.ones(x.shape[2:]), ((ph, ph), (pw, pw)))
    counts = sliding_window_view(ones, (kh, kw))[::sh, ::sw].sum(axis=(2, 3))
    return [sums / counts]


# --- shuffle ---------------------------------------------------------------------------------------


def _permutation(perm: Sequence[int] | None, rank: int, what: str) -> tuple[int, ...]:
    """The first `rank` entries of a TensorRT Permutation (identity by default) as a numpy axes order."""
    if perm is None:
        return tuple(range(rank))
    order = tuple(perm[:rank])
    if sorted(order) != list(range(rank)):
        raise LayerError(f"{what}: {list(perm)} is not a permutation of the {rank} dimensions")
    return order


def _reshape(shape: Shape, dims: Shape, zero_is_placeholder: bool) -> Shape:
    """TensorRT's reshape_dims: 0 copies the input dimension at the same index, -1 is inferred."""
    out = list(dims)
    copied = set()
    inferred = None
    for index, dim in enumerate(dims):
        if dim == 0 and zero_is_placeholder:
            if index >= len(shape):
                raise LayerError(
                    f"shuffle: reshape dimension {index} is 0 (copy) but the input {_fmt(shape)} has no such"
                )
            out[index] = shape[index]
            copied.add(index)
        elif dim == -1:
            if inferred is not None:
                raise LayerError(f"shuffle: reshape dimensions {_fmt(dims)} have more than one -1")
            inferred = index
        elif dim < 0:
            raise LayerError(f"shuffle: reshape dimension {dim} is invalid")
    # Dimensions copied by 0 appear on both sides, so they cancel even while unknown.
    rest_in = [d for i, d in enumerate(shape) if i not in copied]
    rest_out = [d for i, d in enumerate(out) if i not in copied and i != inferred]
    if min(rest_in + rest_out, default=0) < 0:
        return tuple(out)  # unknown until the input shapes are set
    volume_in, volume_out = math.prod(rest_in), math.prod(rest_out)
    if inferred is not None:
        if volume_out == 0 or volume_in % volume_out:
            raise LayerError(f"shuffle: cannot reshape {_fmt(shape)} to {_fmt(dims)}: volumes do not divide")
        out[inferred] = volume_in // volume_out
    elif volume_in != volume_out:
        raise LayerError(f"shuffle: reshape {_fmt(shape)} to {_fmt(out)} changes the volume")
    return tuple(out)


def _shuffle_shapes(params: Params, shapes: list[Shape]) -> list[Shape]:
    shape = shapes[0]
    first = _permutation(params["first_transpose"], len(shape), "shuffle first_transpose")
    shape = tuple(shape[axis] for axis in first)
    if params["reshape_dims"] is not None:
        shape = _reshape(shape, tuple(params["reshape_dims"]), params["zero_is_placeholder"])
    second = _permutation(params["second_transpose"], len(shape), "shuffle second_transpose")
    return [tuple(shape[axis] for axis in second)]


def _shuffle(params: Params, inputs: list[np.ndarray], numerics: Numerics) -> list[np.ndarray]:
    x = inputs[0]
    x = x.transpose(_permutation(params["first_transpose"], x.ndim, "shuffle"))
    if params["reshape_dims"] is not None:
        x = x.reshape(_reshape(x.shape, tuple(params["reshape_dims"]), params["zero_is_placeholder"]))
    return [x.transpose(_permutation(params["second_transpose"], x.ndim, "shuffle"))]


# --- constant --------------------------------------------------------------------------------------


def _constant_shapes(params: Params, shapes: list[Shape]) -> list[Shape]:
    shape = tuple(params["shape"])
    if math.prod(shape) != params["weights"].size:
        raise LayerError(
            f"constant: shape {_fmt(shape)} needs {math.prod(shape)} weights, got {params['weights'].size}"
        )
    return [shape]


def _constant_types(params: Params, types: list[str], strongly_typed: bool) -> list[str]:
    return [type_of_array(params["weights"])]


def _constant(params: Params, inputs: list[np.ndarray], numerics: Numerics) -> list[np.ndarray]:
    return [numerics.value(params["weights"]).reshape(tuple(params["shape"]))]


# --- matrix multiply -------------------------------------------------------------------------------


def _matmul_shapes(params: Params, shapes: list[Shape]) -> list[Shape]:
    what = "matrix multiply"
    if "VECTOR" in (params["op0"], params["op1"]):
        raise LayerError(f"{what}: the double does not implement MatrixOperation.VECTOR")
    a, b = shapes
    if len(a) != len(b) or len(a) < 2:
        raise LayerError(f"{what}: inputs {_fmt(a)} and {_fmt(b)} must have one rank, at least 2")
    if params["op0"] == "TRANSPOSE":
        a = a[:-2] + (a[-1], a[-2])
    if params["op1"] == "TRANSPOSE":
        b = b[:-2] + (b[-1], b[-2])
    if min(a[-1], b[-2]) >= 0 and a[-1] != b[-2]:
        raise LayerError(f"{what}: inner dimensions differ: {_fmt(a)} x {_fmt(b)} (after the transposes)")
    return [_broadcast(a[:-2], b[:-2], what) + (a[-2], b[-1])]


def _matmul_types(params: Params, types: list[str], strongly_typed: bool) -> list[str]:
    common = _same_type("matrix multiply", types, strongly_typed)
    _require_float("matrix multiply", common)
    return [common]


def _matmul(params: Params, inputs: list[np.ndarray], numerics: Numerics) -> list[np.ndarray]:
    a, b = inputs
    if params["op0"] == "TRANSPOSE":
        a = np.swapaxes(a, -1, -2)
    if params["op1"] == "TRANSPOSE":
        b = np.swapaxes(b, -1, -2)
    return [np.matmul(a, b)]


# --- softmax, topk, reduce -------------------------------------------------------------------------


def default_softmax_axes(rank: int) -> int:
    """TensorRT's default: the axis number of dimensions minus three, 0 below rank 3."""
    return 1 << max(0, rank - 3)


def _softmax_shapes(params: Params, shapes: list[Shape]) -> list[Shape]:
    _single_axis(params["axes"], len(shapes[0]), "softmax")
    return [shapes[0]]


def _float_types(params: Params, types: list[str], strongly_typed: bool) -> list[str]:
    _require_float("softmax", types[0])
    return [types[0]]


def _softmax(params: Params, inputs: list[np.ndarray], numerics: Numerics) -> list[np.ndarray]:
    x = inputs[0]
    axis = _single_axis(params["axes"], x.ndim, "softmax")
    exp = np.exp(x - x.max(axis=axis, keepdims=True))
    return [exp / exp.sum(axis=axis, keepdims=True)]


def _topk_shapes(params: Params, shapes: list[Shape]) -> list[Shape]:
    shape = shapes[0]
    axis = _single_axis(params["axes"], len(shape), "topk")
    k = params["k"]
    if k < 1 or 0 <= shape[axis] < k:
        raise LayerError(f"topk: k = {k} does not fit dimension {axis} of {_fmt(shape)}")
    out = shape[:axis] + (k,) + shape[axis + 1 :]
    return [out, out]


def _topk_types(params: Params, types: list[str], strongly_typed: bool) -> list[str]:
    if types[0] not in FLOATS | {"INT32", "INT64"}:
        raise LayerError(f"topk needs a float or integer input, got {types[0]}")
    return [types[0], "INT32"]


def _topk(params: Params, inputs: list[np.ndarray], numerics: Numerics) -> list[np.ndarray]:
    """Ties go to the lower index, as ONNX ArgMax (select_last_index=0) and numpy's argmax."""
    x = inputs[0]
    axis = _single_axis(params["axes"], x.ndim, "topk")
    order = np.argsort(-x if params["op"] == "MAX" else x, axis=axis, kind="stable")
    indices = np.take(order, np.arange(params["k"]), axis=axis)
    return [np.take_along_axis(x, indices, axis=axis), indices]


_REDUCTIONS: dict[str, Callable[..., np.ndarray]] = {
    "SUM": np.sum,
    "PROD": np.prod,
    "MAX": np.max,
    "MIN": np.min,
    "AVG": np.mean,
}


def _reduce_shapes(params: Params, shapes: list[Shape]) -> list[Shape]:
    shape = shapes[0]
    axes = _axes_list(params["axes"], len(shape), "reduce")
    if params["keep_dims"]:
        return [tuple(1 if axis in axes else d for axis, d in enumerate(shape))]
    return [tuple(d for axis, d in enumerate(shape) if axis not in axes)]


def _reduce_types(params: Params, types: list[str], strongly_typed: bool) -> list[str]:
    if params["op"] not in _REDUCTIONS:
        raise LayerError(f"the double does not implement reduce {params['op']}")
    return [types[0]]


def _reduce(params: Params, inputs: list[np.ndarray], numerics: Numerics) -> list[np.ndarray]:
    x = inputs[0]
    axes = _axes_list(params["axes"], x.ndim, "reduce")
    return [_REDUCTIONS[params["op"]](x, axis=axes, keepdims=params["keep_dims"])]


OPS: dict[str, Op] = {
    "IDENTITY": Op(_same_shape, _identity_types, lambda params, inputs, numerics: [inputs[0]]),
    "CAST": Op(_same_shape, _cast_types, _cast),
    "CONVOLUTION": Op(_conv_shapes, _conv_types, _conv, tf32_operands=frozenset({0, 1})),
    "ELEMENTWISE": Op(_elementwise_shapes, _elementwise_types, _elementwise),
    "ACTIVATION": Op(_same_shape, _activation_types, _activation),
    "POOLING": Op(_pooling_shapes, _pooling_types, _pooling),
    "SHUFFLE": Op(_shuffle_shapes, _identity_types, _shuffle),
    "CONSTANT": Op(_constant_shapes, _constant_types, _constant),
    "MATRIX_MULTIPLY": Op(_matmul_shapes, _matmul_types, _matmul, tf32_operands=frozenset({0, 1})),
    "SOFTMAX": Op(_softmax_shapes, _float_types, _softmax),
    "TOPK": Op(_topk_shapes, _topk_types, _topk),
    "REDUCE": Op(_reduce_shapes, _reduce_types, _reduce),
    "QUANTIZE": Op(partial(_qdq_shapes, quantize=True), partial(_qdq_types, quantize=True), _quantize),
    "DEQUANTIZE": Op(partial(_qdq_shapes, quantize=False), partial(_qdq_types, quantize=False), _dequantize),
}

# How TensorRT names layers of each kind in default layer names: "(Unnamed Layer* 3) [Convolution]".
DISPLAY_NAMES = {
    "IDENTITY": "Identity",
    "CAST": "Cast",
    "CONVOLUTION": "Convolution",
    "ELEMENTWISE": "ElementWise",
    "ACTIVATION": "Activation",
    "POOLING": "Pooling",
    "SHUFFLE": "Shuffle",
    "CONSTANT": "Constant",
    "MATRIX_MULTIPLY": "Matrix Multiply",
    "SOFTMAX": "Softmax",
    "TOPK": "TopK",
    "REDUCE": "Reduce",
    "QUANTIZE": "Quantize",
    "DEQUANTIZE": "Dequantize",
}
