"""trt.OnnxParser: ONNX nodes become layers through the network's own public add_* methods.

So a parsed model and a hand-defined network run on one executor, and the importer stays inside
the snapshot's API like any caller. Supported ops: Identity, Cast, Conv (2-D), Add / Sub / Mul /
Div (numpy broadcasting), Relu, MaxPool, Flatten, Reshape (constant shape), Gemm (alpha = beta = 1,
transA = 0), MatMul, Softmax (opset >= 13), ArgMax, Constant, QuantizeLinear / DequantizeLinear (int8,
per-tensor or per-axis scales, no blocks). Graph inputs' symbolic dims become -1.

A Q/DQ zero point must be a constant of zeros: TensorRT's parser refuses any other at parse time
(INVALID_NODE, "Non-zero zero point is not supported"), as measured on TensorRT for RTX 1.7; the zero
point's type decides the quantized type, as in ONNX, and a missing one means INT8, as TensorRT's parser does.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from .layers import type_of_array
from .strict import Api, StrictObject

# onnx.TensorProto element types the double's tensors can have.
_ONNX_TYPES = {1: "FLOAT", 10: "HALF", 16: "BF16", 6: "INT32", 7: "INT64", 9: "BOOL", 3: "INT8", 2: "UINT8"}


class _NodeError(Exception):
    def __init__(self, code: str, desc: str) -> None:
        super().__init__(desc)
        self.code = code
        self.desc = desc


class ParserError(StrictObject):
    """One parse failure: code(), desc(), and the failing node's index, name and operator."""

    _code: str
    _desc: str
    _node: int
    _node_name: str
    _node_operator: str

    def code(self) -> Any:
        return self._api.member("ErrorCode", self._code)

    def desc(self) -> str:
        return self._desc

    def node(self) -> int:
        return self._node

    def node_name(self) -> str:
        return self._node_name

    def node_operator(self) -> str:
        return self._node_operator


class OnnxParser(StrictObject):
    """trt.OnnxParser(network, logger): parse(model bytes) fills the network, or records errors."""

    def __init__(self, network: Any, logger: Any) -> None:
        if not isinstance(network, self._api.classes["INetworkDefinition"]):
            raise TypeError(
                f"incompatible constructor arguments: expected tensorrt.INetworkDefinition, got {network!r}"
            )
        self._network = network
        self._logger = self._api.require_logger(logger)
        self._errors: list[Any] = []
        # The parser owns the weights it hands the network (TensorRT: keep the parser alive until the engine is
        # built); the network remembers its parsers, so that a build after one was destroyed fails, as freed
        # weights would in TensorRT, instead of reading freed memory.
        self._weights_memory: list[np.ndarray] = []
        network.__dict__.setdefault("_parsers", []).append(weakref.ref(self))

    def parse(self, model: Any, path: str | None = None) -> bool:
        from google.protobuf.message import DecodeError
        from onnx import load_model_from_string

        try:
            proto = load_model_from_string(bytes(memoryview(model)))
        except DecodeError as error:
            return self._fail(
                _NodeError("MODEL_DESERIALIZE_FAILED", f"Failed to parse the ONNX model: {error}"), -1, "", ""
            )
        importer = _Importer(self._api, self._network, _opset(proto), self._weights_memory)
        try:
            importer.run(proto.graph)
        except _NodeError as error:
            return self._fail(error, importer.index, importer.node_name, importer.op_type)
        return True

    def _fail(self, error: _NodeError, node: int, name: str, op_type: str) -> bool:
        self._errors.append(
            self._api.new(
                "ParserError", _code=error.code, _desc=error.desc, _node=node, _node_name=name, _node_operator=op_type
            )
        )
        where = f"In node {node} with name: {name} and operator: {op_type}" if node >= 0 else "While parsing the graph"
        self._api.log(self._logger, "ERROR", f"ModelImporter.cpp: {where}: {error.code}: {error.desc}")
        return False

    @property
    def num_errors(self) -> int:
        return len(self._errors)

    def get_error(self, index: int) -> Any:
        return self._errors[index] if 0 <= index < len(self._errors) else None

    def clear_errors(self) -> None:
        self._errors.clear()

    def supports_operator(self, op_name: str) -> bool:
        return op_name in _IMPORTERS


def _opset(proto: Any) -> int:
    return next((entry.version for entry in proto.opset_import if entry.domain in ("", "ai.onnx")), 1)


def _attributes(node: Any) -> dict[str, Any]:
    from onnx import helper, numpy_helper

    values = {attribute.name: helper.get_attribute_value(attribute) for attribute in node.attribute}
    return {
        name: numpy_helper.to_array(value) if hasattr(value, "raw_data") else value for name, value in values.items()
    }


class _Importer:
    """One parse: ONNX names to tensors (ITensor) or constants (numpy arrays), node after node."""

    def __init__(self, api: Api, network: Any, opset: int, weights_memory: list[np.ndarray]) -> None:
        self.api = api
        self.network = network
        self.opset = opset
        self.values: dict[str, Any] = {}
        self.constants: dict[tuple[str, int], Any] = {}  # one constant layer per initializer and rank
        self.arrays = weights_memory  # the weights' memory, read by reference, owned by the parser
        self.index, self.node_name, self.op_type = -1, "", ""

    def run(self, graph: Any) -> None:
        from onnx import numpy_helper

        for initializer in graph.initializer:
            self.values[initializer.name] = numpy_helper.to_array(initializer)
        for value_info in graph.input:
            if value_info.name not in self.values:
                self.values[value_info.name] = self._add_input(value_info)
        for index, node in enumerate(graph.node):
            self.index, self.node_name, self.op_type = index, node.name, node.op_type
            self._import(node)
        self.index, self.node_name, self.op_type = -1, "", ""
        for value_info in graph.output:
            tensor = self.values.get(value_info.name)
            if not isinstance(tensor, self.api.classes["ITensor"]):
                raise _NodeError("UNSUPPORTED_GRAPH", f"graph output '{value_info.name}' is not computed by any node")
            self.network.mark_output(tensor)

    def _add_input(self, value_info: Any) -> Any:
        tensor_type = value_info.type.tensor_type
        type_name = _ONNX_TYPES.get(tensor_type.elem_type)
        if type_name is None or not tensor_type.HasField("shape"):
            raise _NodeError("UNSUPPORTED_GRAPH", f"graph input '{value_info.name}' needs a supported type and a shape")
        shape = tuple(dim.dim_value if dim.HasField("dim_value") else -1 for dim in tensor_type.shape.dim)
        return self.network.add_input(value_info.name, self.api.member("DataType", type_name), shape)

    def _import(self, node: Any) -> None:
        importer = _IMPORTERS.get(node.op_type)
        if importer is None:
            raise _NodeError(
                "UNSUPPORTED_NODE",
                f"No importer registered for op: {node.op_type}. Attempting to import as plugin. "
                "Plugin not found, are the plugin name, version, and namespace correct?",
            )
        layers = self.network._graph.nodes
        first = len(layers)
        try:
            results = importer(self, node, _attributes(node))
        except NotImplementedError as error:
            raise _NodeError("UNSUPPORTED_NODE", str(error)) from None
        for layer in layers[first:]:
            # As TensorRT's parser marks every layer it adds for a node; the inspector prints it as "Metadata".
            layer.metadata = f"[ONNX Layer: {node.name or node.output[0]}]"
        for name, result in zip(node.output, results):
            if isinstance(result, np.ndarray):
                self.values[name] = result
                continue
            result.name = node.name or f"node_of_{name}"
            output = result.get_output(0)
            output.name = name
            self.values[name] = output

    # --- operands ----------------------------------------------------------------------------------

    def value(self, name: str) -> Any:
        if name not in self.values:
            raise _NodeError("INVALID_GRAPH", f"input '{name}' is produced by no earlier node, initializer or input")
        return self.values[name]

    def weights(self, name: str) -> np.ndarray:
        value = self.value(name)
        if not isinstance(value, np.ndarray):
            raise _NodeError("UNSUPPORTED_NODE_INPUT", f"input '{name}' must be an initializer or a Constant")
        return value

    def tensor(self, name: str, rank: int | None = None) -> Any:
        """The tensor of an ONNX name; an initializer becomes a constant layer, with leading 1s up to `rank`."""
        value = self.value(name)
        if not isinstance(value, np.ndarray):
            return value if rank is None else self._unsqueeze(value, rank)
        array = np.ascontiguousarray(value.reshape((1,) * max(0, (rank or 0) - value.ndim) + value.shape))
        if (name, array.ndim) not in self.constants:
            try:
                type_of_array(array)
            except TypeError as error:
                raise _NodeError("UNSUPPORTED_NODE_DATATYPE", f"initializer '{name}': {error}") from None
            constant = self.network.add_constant(array.shape, self.trt_weights(array))
            constant.get_output(0).name = name
            self.constants[name, array.ndim] = constant.get_output(0)
        return self.constants[name, array.ndim]

    def trt_weights(self, array: np.ndarray) -> Any:
        """Weights(type, ptr, count): the one form that carries every type, bfloat16 included (the real parser
        is C++ and never meets the numpy bridge); self.arrays keeps the memory alive, as TensorRT requires."""
        array = np.ascontiguousarray(array)
        self.arrays.append(array)
        data_type = self.api.member("DataType", type_of_array(array))
        return self.api.classes["Weights"](data_type, array.ctypes.data, array.size)

    def _unsqueeze(self, tensor: Any, rank: int) -> Any:
        """Leading 1s up to `rank` through a shuffle (TensorRT broadcasts only between equal ranks)."""
        shape = tuple(tensor.shape)
        if len(shape) >= rank:
            return tensor
        if shape.count(-1) > 1:
            raise _NodeError(
                "UNSUPPORTED_NODE_DYNAMIC", f"cannot broadcast {list(shape)} to rank {rank}: too many -1 dims"
            )
        shuffle = self.network.add_shuffle(tensor)
        shuffle.reshape_dims = (1,) * (rank - len(shape)) + shape
        return shuffle.get_output(0)

    def rank(self, name: str) -> int:
        value = self.value(name)
        return value.ndim if isinstance(value, np.ndarray) else len(value.shape)

    def broadcast(self, *names: str) -> list[Any]:
        """Operands of equal rank, as ONNX's multidirectional broadcasting lines them up."""
        rank = max(self.rank(name) for name in names)
        return [self.tensor(name, rank) for name in names]

    def enum(self, enum_name: str, member: str) -> Any:
        return self.api.member(enum_name, member)


def _require(condition: bool, code: str, desc: str) -> None:
    if not condition:
        raise _NodeError(code, desc)


def _symmetric_pads(attributes: dict[str, Any], rank: int) -> tuple[int, ...]:
    pads = tuple(attributes.get("pads", (0,) * 2 * rank))
    _require(pads[:rank] == pads[rank:], "UNSUPPORTED_NODE_ATTR", f"asymmetric pads {list(pads)}")
    _require(attributes.get("auto_pad", b"NOTSET") == b"NOTSET", "UNSUPPORTED_NODE_ATTR", "auto_pad is not supported")
    return pads[:rank]


def _identity(im: _Importer, node: Any, attributes: dict[str, Any]) -> list[Any]:
    return [im.network.add_identity(im.tensor(node.input[0]))]


def _cast(im: _Importer, node: Any, attributes: dict[str, Any]) -> list[Any]:
    type_name = _ONNX_TYPES.get(attributes["to"])
    _require(type_name is not None, "UNSUPPORTED_NODE_DATATYPE", f"Cast to ONNX type {attributes['to']}")
    return [im.network.add_cast(im.tensor(node.input[0]), im.enum("DataType", str(type_name)))]


def _relu(im: _Importer, node: Any, attributes: dict[str, Any]) -> list[Any]:
    return [im.network.add_activation(im.tensor(node.input[0]), im.enum("ActivationType", "RELU"))]


def _conv(im: _Importer, node: Any, attributes: dict[str, Any]) -> list[Any]:
    """Initializer weights become Weights; a computed kernel or bias (a DequantizeLinear's) becomes input 1 or 2."""
    weight = im.value(node.input[1])
    has_bias = len(node.input) > 2 and bool(node.input[2])
    bias = im.value(node.input[2]) if has_bias else None
    shape = tuple(weight.shape)
    _require(len(shape) == 4 and min(shape) > 0, "UNSUPPORTED_NODE", "the double implements 2-D convolutions only")
    _require(attributes.get("group", 1) == 1, "UNSUPPORTED_NODE_ATTR", "grouped convolution")
    _require(all(d == 1 for d in attributes.get("dilations", (1, 1))), "UNSUPPORTED_NODE_ATTR", "dilated convolution")
    none = np.zeros(0, dtype=np.float32)  # an empty kernel or bias: given as a tensor input below
    kernel = im.trt_weights(weight if isinstance(weight, np.ndarray) else none)
    layer = im.network.add_convolution_nd(
        im.tensor(node.input[0]),
        shape[0],
        shape[2:],
        kernel,
        im.trt_weights(bias if isinstance(bias, np.ndarray) else none),
    )
    if not isinstance(weight, np.ndarray):
        layer.set_input(1, weight)
    if has_bias and not isinstance(bias, np.ndarray):
        _require(
            not isinstance(weight, np.ndarray), "UNSUPPORTED_NODE_INPUT", "a computed bias with initializer weights"
        )
        layer.set_input(2, bias)
    layer.stride_nd = tuple(attributes.get("strides", (1, 1)))
    layer.padding_nd = _symmetric_pads(attributes, 2)
    return [layer]


def _max_pool(im: _Importer, node: Any, attributes: dict[str, Any]) -> list[Any]:
    _require(len(node.output) == 1 or not node.output[1], "UNSUPPORTED_NODE", "MaxPool's Indices output")
    _require(attributes.get("ceil_mode", 0) == 0, "UNSUPPORTED_NODE_ATTR", "ceil_mode = 1")
    kernel = tuple(attributes["kernel_shape"])
    _require(len(kernel) == 2, "UNSUPPORTED_NODE", "the double implements 2-D pooling only")
    layer = im.network.add_pooling_nd(im.tensor(node.input[0]), im.enum("PoolingType", "MAX"), kernel)
    layer.stride_nd = tuple(attributes.get("strides", (1, 1)))
    layer.padding_nd = _symmetric_pads(attributes, 2)
    return [layer]


def _binary(op: str) -> Callable[[_Importer, Any, dict[str, Any]], list[Any]]:
    def importer(im: _Importer, node: Any, attributes: dict[str, Any]) -> list[Any]:
        a, b = im.broadcast(node.input[0], node.input[1])
        return [im.network.add_elementwise(a, b, im.enum("ElementWiseOperation", op))]

    return importer


def _flatten(im: _Importer, node: Any, attributes: dict[str, Any]) -> list[Any]:
    x = im.tensor(node.input[0])
    shape = tuple(x.shape)
    axis = attributes.get("axis", 1) % max(len(shape), 1)
    leading = shape[:axis]
    if axis == 0:
        dims: tuple[int, ...] = (1, -1)
    elif axis == 1:
        dims = (0, -1)  # 0 copies the batch dim, known or not
    else:
        _require(-1 not in leading, "UNSUPPORTED_NODE_DYNAMIC", f"Flatten(axis={axis}) of {list(shape)}")
        dims = (math.prod(leading), -1)
    layer = im.network.add_shuffle(x)
    layer.reshape_dims = dims
    return [layer]


def _reshape(im: _Importer, node: Any, attributes: dict[str, Any]) -> list[Any]:
    layer = im.network.add_shuffle(im.tensor(node.input[0]))
    layer.reshape_dims = tuple(int(d) for d in im.weights(node.input[1]))
    layer.zero_is_placeholder = attributes.get("allowzero", 0) == 0
    return [layer]


def _gemm(im: _Importer, node: Any, attributes: dict[str, Any]) -> list[Any]:
    for name in ("alpha", "beta"):
        _require(attributes.get(name, 1.0) == 1.0, "UNSUPPORTED_NODE_ATTR", f"Gemm {name} != 1")
    _require(attributes.get("transA", 0) == 0, "UNSUPPORTED_NODE_ATTR", "Gemm transA = 1")
    none, transpose = im.enum("MatrixOperation", "NONE"), im.enum("MatrixOperation", "TRANSPOSE")
    op_b = transpose if attributes.get("transB", 0) else none
    product = im.network.add_matrix_multiply(im.tensor(node.input[0]), none, im.tensor(node.input[1]), op_b)
    if len(node.input) < 3 or not node.input[2]:
        return [product]
    product.name = f"{node.name or node.output[0]}.matmul"  # the node's layers all carry its name
    bias = im.tensor(node.input[2], rank=2)
    return [im.network.add_elementwise(product.get_output(0), bias, im.enum("ElementWiseOperation", "SUM"))]


def _matmul(im: _Importer, node: Any, attributes: dict[str, Any]) -> list[Any]:
    _require(min(im.rank(node.input[0]), im.rank(node.input[1])) >= 2, "UNSUPPORTED_NODE", "MatMul of a 1-D operand")
    a, b = im.broadcast(node.input[0], node.input[1])
    none = im.enum("MatrixOperation", "NONE")
    return [im.network.add_matrix_multiply(a, none, b, none)]


def _softmax(im: _Importer, node: Any, attributes: dict[str, Any]) -> list[Any]:
    _require(im.opset >= 13, "UNSUPPORTED_NODE", "Softmax before opset 13 (flattening semantics)")
    x = im.tensor(node.input[0])
    layer = im.network.add_softmax(x)
    layer.axes = 1 << (attributes.get("axis", -1) % len(x.shape))
    return [layer]


def _argmax(im: _Importer, node: Any, attributes: dict[str, Any]) -> list[Any]:
    """TopK(MAX, k=1)'s INT32 indices, cast to INT64, with the axis dropped unless keepdims."""
    _require(attributes.get("select_last_index", 0) == 0, "UNSUPPORTED_NODE_ATTR", "select_last_index = 1")
    x = im.tensor(node.input[0])
    shape = tuple(x.shape)
    axis = attributes.get("axis", 0) % len(shape)
    top = im.network.add_topk(x, im.enum("TopKOperation", "MAX"), 1, 1 << axis)
    cast = im.network.add_cast(top.get_output(1), im.enum("DataType", "INT64"))
    if attributes.get("keepdims", 1):
        return [cast]
    # 0 copies a leading dim in place; after the dropped axis, dims shift, so they must be known (or one -1).
    dims = (0,) * axis + shape[axis + 1 :]
    _require(dims.count(-1) <= 1, "UNSUPPORTED_NODE_DYNAMIC", f"ArgMax over axis {axis} of {list(shape)}")
    squeeze = im.network.add_shuffle(cast.get_output(0))
    squeeze.reshape_dims = dims
    return [squeeze]


def _constant(im: _Importer, node: Any, attributes: dict[str, Any]) -> list[Any]:
    _require("value" in attributes, "UNSUPPORTED_NODE_ATTR", "Constant without a tensor 'value'")
    return [attributes["value"]]


def _quantized_type(im: _Importer, node: Any, attributes: dict[str, Any]) -> str:
    """The quantized type of a Q/DQ node (its zero point's, else output_dtype's, else INT8).

    The zero point must be a constant of zeros, or the node is refused.
    """
    if len(node.input) < 3 or not node.input[2]:
        type_name = _ONNX_TYPES.get(attributes.get("output_dtype", 3))
        _require(type_name is not None, "UNSUPPORTED_NODE_DATATYPE", f"output_dtype {attributes.get('output_dtype')}")
        return str(type_name)
    zero_point = im.weights(node.input[2])
    _require(
        not np.any(zero_point),
        "INVALID_NODE",
        "Assertion failed: shiftIsAllZeros(zeroPoint): Non-zero zero point is not supported.",
    )
    try:
        return type_of_array(zero_point)
    except TypeError as error:
        raise _NodeError("UNSUPPORTED_NODE_DATATYPE", f"zero point: {error}") from None


def _qdq(quantize: bool) -> Callable[[_Importer, Any, dict[str, Any]], list[Any]]:
    def importer(im: _Importer, node: Any, attributes: dict[str, Any]) -> list[Any]:
        _require(attributes.get("block_size", 0) == 0, "UNSUPPORTED_NODE_ATTR", "blocked quantization")
        quantized = _quantized_type(im, node, attributes)
        x, scale = im.tensor(node.input[0]), im.tensor(node.input[1])
        per_axis = len(scale.shape) == 1 and scale.shape[0] != 1  # shapes read before the layer exists
        axis = attributes.get("axis", 1) % len(x.shape)  # ONNX's per-axis default is axis 1
        if quantize:
            layer = im.network.add_quantize(x, scale, im.enum("DataType", quantized))
        else:
            layer = im.network.add_dequantize(x, scale, scale.dtype)  # ONNX: the output has the scale's type
        if per_axis:
            layer.axis = axis
        return [layer]

    return importer


_IMPORTERS: dict[str, Callable[[_Importer, Any, dict[str, Any]], list[Any]]] = {
    "Identity": _identity,
    "Cast": _cast,
    "Relu": _relu,
    "Conv": _conv,
    "MaxPool": _max_pool,
    "Add": _binary("SUM"),
    "Sub": _binary("SUB"),
    "Mul": _binary("PROD"),
    "Div": _binary("DIV"),
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Gemm": _gemm,
    "MatMul": _matmul,
    "Softmax": _softmax,
    "ArgMax": _argmax,
    "Constant": _constant,
    "QuantizeLinear": _qdq(quantize=True),
    "DequantizeLinear": _qdq(quantize=False),
}
