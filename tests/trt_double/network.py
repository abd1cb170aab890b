"""The network-definition API: INetworkDefinition, ITensor, the layer classes, Dims, Permutation, Weights.

The public objects are views of a graph.Graph: a tensor is (network, tensor index), a layer is
(network, node index), and layer properties read and write the node's plain parameters.
"""

from __future__ import annotations

import ctypes
import operator
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from .graph import Graph, GraphError, Node, TensorDef
from .layers import DISPLAY_NAMES, STORAGE_TYPES, Shape, default_softmax_axes, type_of_array
from .strict import Api, StrictObject

if TYPE_CHECKING:
    from typing_extensions import Self

MAX_DIMS = 8


def as_shape(value: Iterable[Any]) -> Shape:
    """A Dims argument: any sequence of ints (tuple, list, Dims); a bare int is a TypeError as in pybind11."""
    if isinstance(value, (int, np.integer)):
        raise TypeError(f"incompatible function argument: expected tensorrt.Dims (a sequence of ints), got {value!r}")
    return tuple(operator.index(d) for d in value)


def as_weights(value: object) -> np.ndarray:
    """A Weights argument: trt.Weights or a numpy array, held by reference as TensorRT holds it."""
    if isinstance(value, Weights):
        return value._array
    if isinstance(value, np.ndarray):
        if value.dtype == STORAGE_TYPES["BF16"]:
            # TensorRT for RTX 1.7, measured: its numpy bridge knows no ml_dtypes bfloat16, so such an array is
            # an incompatible argument; bfloat16 weights go in as Weights(DataType.BF16, ptr, count).
            raise TypeError("incompatible function arguments: a numpy bfloat16 array is not tensorrt.Weights")
        type_of_array(value)  # TypeError for a type TensorRT has no weights of (float64, ...)
        if not value.flags.c_contiguous:
            raise ValueError("weights must be C-contiguous: TensorRT reads them through a pointer")
        return value
    raise TypeError(f"incompatible function argument: expected tensorrt.Weights or a numpy array, got {type(value)}")


class Dims(StrictObject, tuple):  # type: ignore[type-arg]
    """A shape: iterable, len(), indexing, equal to the tuple of its values (-1: dynamic)."""

    def __new__(cls, shape: Iterable[Any] = ()) -> Self:
        return tuple.__new__(cls, as_shape(shape))

    def __init__(self, shape: Iterable[Any] = ()) -> None:
        pass  # tuple.__new__ did the work; StrictObject's __init__ would refuse construction


class Permutation(StrictObject, tuple):  # type: ignore[type-arg]
    """An axes order for IShuffleLayer transposes."""

    def __new__(cls, arg0: Iterable[Any] = range(MAX_DIMS)) -> Self:
        return tuple.__new__(cls, as_shape(arg0))

    def __init__(self, arg0: Iterable[Any] = range(MAX_DIMS)) -> None:
        pass  # pybind11 names the parameter arg0


class Weights(StrictObject):
    """trt.Weights(numpy_array), empty trt.Weights(type), or trt.Weights(type, ptr, count): `count` elements of
    `type` read at address `ptr`, by reference, as TensorRT reads them (the caller keeps the memory alive)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if len(args) == 3 and not kwargs:
            type_name = self._api.name_of("DataType", args[0])
            dtype, count = np.dtype(STORAGE_TYPES[type_name]), int(args[2])
            buffer = (ctypes.c_char * (count * dtype.itemsize)).from_address(int(args[1]))
            self._array = np.frombuffer(buffer, dtype=dtype, count=count)
            return
        if len(args) + len(kwargs) > 1 or not set(kwargs) <= {"a", "type"}:
            raise TypeError(
                "incompatible constructor arguments: Weights(a), Weights(type) or Weights(type, ptr, count)"
            )
        value = args[0] if args else next(iter(kwargs.values()), None)
        if isinstance(value, np.ndarray):
            self._array = as_weights(value)
        else:
            type_name = "FLOAT" if value is None else self._api.name_of("DataType", value)
            self._array = np.zeros(0, dtype=STORAGE_TYPES[type_name])

    @property
    def dtype(self) -> Any:
        return self._api.member("DataType", type_of_array(self._array))

    @property
    def size(self) -> int:
        return int(self._array.size)

    @property
    def nbytes(self) -> int:
        return int(self._array.nbytes)

    def numpy(self) -> np.ndarray:
        return self._array


class ITensor(StrictObject):
    """A tensor of a network: its name, its shape (-1: dynamic) and its type."""

    _network: Any
    _id: int

    @property
    def name(self) -> str:
        name: str = self._network._graph.tensors[self._id].name
        return name

    @name.setter
    def name(self, value: str) -> None:
        self._network._graph.tensors[self._id].name = str(value)

    @property
    def shape(self) -> Any:
        return self._api.classes["Dims"](self._network._definition_shapes()[self._id])

    @property
    def dtype(self) -> Any:
        type_name = self._network._definition_types()[self._id]
        return self._api.member("DataType", type_name or "FLOAT")

    @property
    def is_network_input(self) -> bool:
        return self._id in self._network._graph.inputs

    @property
    def is_network_output(self) -> bool:
        return self._id in self._network._graph.outputs

    @property
    def is_shape_tensor(self) -> bool:
        """The double's networks feed no input's values into shapes: an execution tensor, never a shape tensor."""
        return False


class ILayer(StrictObject):
    """A layer of a network: name, type, inputs and outputs."""

    _network: Any
    _index: int

    def _node(self) -> Node:
        node: Node = self._network._graph.nodes[self._index]
        return node

    @property
    def name(self) -> str:
        return self._node().name

    @name.setter
    def name(self, value: str) -> None:
        self._node().name = str(value)

    @property
    def type(self) -> Any:
        return self._api.member("LayerType", self._node().kind)

    @property
    def metadata(self) -> str:
        return self._node().metadata

    @metadata.setter
    def metadata(self, value: str) -> None:
        self._node().metadata = str(value)

    @property
    def num_inputs(self) -> int:
        return len(self._node().inputs)

    @property
    def num_outputs(self) -> int:
        return len(self._node().outputs)

    def get_input(self, index: int) -> Any:
        inputs = self._node().inputs
        return self._network._tensor(inputs[index]) if 0 <= index < len(inputs) else None

    def get_output(self, index: int) -> Any:
        outputs = self._node().outputs
        return self._network._tensor(outputs[index]) if 0 <= index < len(outputs) else None

    def get_output_type(self, index: int) -> Any:
        return self.get_output(index).dtype

    def set_input(self, index: int, tensor: Any) -> None:
        """Replace input `index`, or add the next optional one (a convolution's kernel and bias, a Q/DQ zero point).

        The double fills optional inputs in order and takes only tensors defined before this layer, so that
        its graph stays in execution order; it logs an ERROR and changes nothing otherwise.
        """
        node, position, tensor_id = self._node(), operator.index(index), self._network._own(tensor)
        producer = self._network._graph.producer(tensor_id)
        nodes = self._network._graph.nodes
        problem = None
        if not 0 <= position <= len(node.inputs) or position >= _INPUT_SLOTS.get(node.kind, len(node.inputs)):
            problem = f"index {position} is not an input of {node.name} (it has {len(node.inputs)})"
        elif producer is not None and nodes.index(producer) >= self._index:
            problem = f"the double takes only tensors defined before {node.name} as its inputs"
        if problem is not None:
            self._api.log(
                self._network._logger, "ERROR", f"ILayer::setInput: Error Code 3: API Usage Error ({problem})"
            )
            return
        if position < len(node.inputs):
            node.inputs[position] = tensor_id
        else:
            node.inputs.append(tensor_id)


def _param(key: str, kind: str) -> property:
    """A layer property over node.params[key]; kind is "dims", "perm", "int", "bool" or an enum's name."""

    def get(self: ILayer) -> Any:
        return _public(self._api, kind, self._node().params[key])

    def set(self: ILayer, value: Any) -> None:
        self._node().params[key] = _plain(self._api, kind, value)

    return property(get, set)


def _public(api: Api, kind: str, value: Any) -> Any:
    if kind == "dims":
        return api.classes["Dims"](() if value is None else value)
    if kind == "perm":
        return api.classes["Permutation"](range(MAX_DIMS) if value is None else value)
    if kind in ("int", "bool"):
        return value
    return api.member(kind, value)


def _plain(api: Api, kind: str, value: Any) -> Any:
    if kind in ("dims", "perm"):
        return as_shape(value)
    if kind == "int":
        return operator.index(value)
    if kind == "bool":
        return bool(value)
    return api.name_of(kind, value)


class IIdentityLayer(ILayer):
    pass


class ICastLayer(ILayer):
    to_type = _param("to_type", "DataType")


class IConvolutionLayer(ILayer):
    num_output_maps = _param("num_output_maps", "int")
    kernel_size_nd = _param("kernel_shape", "dims")
    stride_nd = _param("stride", "dims")
    padding_nd = _param("padding", "dims")


class IElementWiseLayer(ILayer):
    op = _param("op", "ElementWiseOperation")


class IActivationLayer(ILayer):
    type = _param("type", "ActivationType")  # TensorRT's IActivationLayer.type is the activation, not LayerType


class IPoolingLayer(ILayer):
    type = _param("type", "PoolingType")  # likewise the pooling type
    window_size_nd = _param("window", "dims")
    stride_nd = _param("stride", "dims")
    padding_nd = _param("padding", "dims")
    average_count_excludes_padding = _param("exclude_padding", "bool")


class IShuffleLayer(ILayer):
    first_transpose = _param("first_transpose", "perm")
    reshape_dims = _param("reshape_dims", "dims")
    second_transpose = _param("second_transpose", "perm")
    zero_is_placeholder = _param("zero_is_placeholder", "bool")


class IConstantLayer(ILayer):
    shape = _param("shape", "dims")


class IMatrixMultiplyLayer(ILayer):
    op0 = _param("op0", "MatrixOperation")
    op1 = _param("op1", "MatrixOperation")


class ISoftMaxLayer(ILayer):
    axes = _param("axes", "int")


class ITopKLayer(ILayer):
    op = _param("op", "TopKOperation")
    k = _param("k", "int")
    axes = _param("axes", "int")


class IQuantizeLayer(ILayer):
    axis = _param("axis", "int")
    to_type = _param("to_type", "DataType")


class IDequantizeLayer(ILayer):
    axis = _param("axis", "int")
    to_type = _param("to_type", "DataType")


class IReduceLayer(ILayer):
    op = _param("op", "ReduceOperation")
    axes = _param("axes", "int")
    keep_dims = _param("keep_dims", "bool")


LAYER_CLASSES = {
    "IDENTITY": "IIdentityLayer",
    "CAST": "ICastLayer",
    "CONVOLUTION": "IConvolutionLayer",
    "ELEMENTWISE": "IElementWiseLayer",
    "ACTIVATION": "IActivationLayer",
    "POOLING": "IPoolingLayer",
    "SHUFFLE": "IShuffleLayer",
    "CONSTANT": "IConstantLayer",
    "MATRIX_MULTIPLY": "IMatrixMultiplyLayer",
    "SOFTMAX": "ISoftMaxLayer",
    "TOPK": "ITopKLayer",
    "REDUCE": "IReduceLayer",
    "QUANTIZE": "IQuantizeLayer",
    "DEQUANTIZE": "IDequantizeLayer",
}
# How many inputs set_input may give a layer kind beyond those it was added with.
_INPUT_SLOTS = {"CONVOLUTION": 3, "QUANTIZE": 3, "DEQUANTIZE": 3}


class INetworkDefinition(StrictObject):
    """A network under construction; Builder.create_network makes it."""

    _graph: Graph
    _logger: Any
    _flags: int

    def _tensor(self, index: int) -> Any:
        """The one ITensor object of a tensor (pybind11 returns the same wrapper every time)."""
        cache: dict[int, Any] = self.__dict__.setdefault("_tensor_objects", {})
        if index not in cache:
            cache[index] = self._api.new("ITensor", _network=self, _id=index)
        return cache[index]

    def _layer(self, index: int) -> Any:
        cache: dict[int, Any] = self.__dict__.setdefault("_layer_objects", {})
        if index not in cache:
            kind = self._graph.nodes[index].kind
            cache[index] = self._api.new(LAYER_CLASSES[kind], _network=self, _index=index)
        return cache[index]

    def _own(self, tensor: object) -> int:
        """The index of a tensor argument, which must be a tensor of this network."""
        if not isinstance(tensor, self._api.classes["ITensor"]):
            raise TypeError(f"incompatible function argument: expected tensorrt.ITensor, got {tensor!r}")
        if tensor._network is not self:
            raise ValueError(f"tensor '{tensor.name}' belongs to another network")
        index: int = tensor._id
        return index

    def _definition_shapes(self) -> list[Shape]:
        try:
            return self._graph.declared_shapes()
        except GraphError as error:
            self._api.log(self._logger, "ERROR", str(error))
            return [()] * len(self._graph.tensors)

    def _definition_types(self) -> list[str]:
        try:
            return self._graph.types()
        except GraphError as error:
            self._api.log(self._logger, "ERROR", str(error))
            return [tensor.dtype or "" for tensor in self._graph.tensors]

    def _add(self, kind: str, inputs: list[Any], params: dict[str, Any], outputs: int = 1) -> Any:
        ids = [self._own(tensor) for tensor in inputs]
        index = len(self._graph.nodes)
        name = f"(Unnamed Layer* {index}) [{DISPLAY_NAMES[kind]}]"
        suffixes = ["_output"] if outputs == 1 else [f"_output_{i}" for i in range(outputs)]
        out_ids = [self._graph.add_tensor(TensorDef(name + suffix)) for suffix in suffixes]
        self._graph.nodes.append(Node(kind, name, ids, out_ids, params))
        return self._layer(index)

    @property
    def num_inputs(self) -> int:
        return len(self._graph.inputs)

    @property
    def num_outputs(self) -> int:
        return len(self._graph.outputs)

    @property
    def num_layers(self) -> int:
        return len(self._graph.nodes)

    def get_input(self, index: int) -> Any:
        return self._tensor(self._graph.inputs[index]) if 0 <= index < len(self._graph.inputs) else None

    def get_output(self, index: int) -> Any:
        return self._tensor(self._graph.outputs[index]) if 0 <= index < len(self._graph.outputs) else None

    def get_layer(self, index: int) -> Any:
        return self._layer(index) if 0 <= index < len(self._graph.nodes) else None

    def get_flag(self, flag: Any) -> bool:
        self._api.name_of("NetworkDefinitionCreationFlag", flag)
        return bool(self._flags >> int(flag) & 1)

    def add_input(self, name: str, dtype: Any, shape: Any) -> Any:
        type_name = self._api.name_of("DataType", dtype)
        if type_name not in STORAGE_TYPES:
            raise NotImplementedError(f"double does not implement {type_name} tensors")
        index = self._graph.add_tensor(TensorDef(str(name), type_name, as_shape(shape)))
        self._graph.inputs.append(index)
        return self._tensor(index)

    def mark_output(self, tensor: Any) -> None:
        index = self._own(tensor)
        if index not in self._graph.outputs:
            self._graph.outputs.append(index)

    def add_identity(self, input: Any) -> Any:
        return self._add("IDENTITY", [input], {})

    def add_cast(self, input: Any, to_type: Any) -> Any:
        return self._add("CAST", [input], {"to_type": self._api.name_of("DataType", to_type)})

    def add_convolution_nd(
        self, input: Any, num_output_maps: int, kernel_shape: Any, kernel: Any, bias: Any = None
    ) -> Any:
        kernel_dims = as_shape(kernel_shape)
        bias_array = None if bias is None else as_weights(bias)
        params = {
            "num_output_maps": operator.index(num_output_maps),
            "kernel_shape": kernel_dims,
            "kernel": as_weights(kernel),  # empty when set_input(1, tensor) gives the kernel
            "bias": None if bias_array is None or bias_array.size == 0 else bias_array,  # empty: no bias
            "stride": (1,) * len(kernel_dims),  # TensorRT's defaults: stride 1, padding 0
            "padding": (0,) * len(kernel_dims),
        }
        return self._add("CONVOLUTION", [input], params)

    def add_elementwise(self, input1: Any, input2: Any, op: Any) -> Any:
        return self._add("ELEMENTWISE", [input1, input2], {"op": self._api.name_of("ElementWiseOperation", op)})

    def add_activation(self, input: Any, type: Any) -> Any:
        return self._add("ACTIVATION", [input], {"type": self._api.name_of("ActivationType", type)})

    def add_pooling_nd(self, input: Any, type: Any, window_size: Any) -> Any:
        window = as_shape(window_size)
        params = {
            "type": self._api.name_of("PoolingType", type),
            "window": window,
            "stride": (1,) * len(window),
            "padding": (0,) * len(window),
            "exclude_padding": True,
        }
        return self._add("POOLING", [input], params)

    def add_shuffle(self, input: Any) -> Any:
        params = {"first_transpose": None, "reshape_dims": None, "second_transpose": None, "zero_is_placeholder": True}
        return self._add("SHUFFLE", [input], params)

    def add_constant(self, shape: Any, weights: Any) -> Any:
        return self._add("CONSTANT", [], {"shape": as_shape(shape), "weights": as_weights(weights)})

    def add_matrix_multiply(self, input0: Any, op0: Any, input1: Any, op1: Any) -> Any:
        params = {
            "op0": self._api.name_of("MatrixOperation", op0),
            "op1": self._api.name_of("MatrixOperation", op1),
        }
        return self._add("MATRIX_MULTIPLY", [input0, input1], params)

    def add_softmax(self, input: Any) -> Any:
        rank = len(self._definition_shapes()[self._own(input)])
        return self._add("SOFTMAX", [input], {"axes": default_softmax_axes(rank)})

    def add_topk(self, input: Any, op: Any, k: int, axes: int) -> Any:
        params = {"op": self._api.name_of("TopKOperation", op), "k": operator.index(k), "axes": operator.index(axes)}
        return self._add("TOPK", [input], params, outputs=2)

    def add_quantize(self, input: Any, scale: Any, output_type: Any = None) -> Any:
        return self._add("QUANTIZE", [input, scale], self._qdq_params("add_quantize", output_type, "INT8"))

    def add_dequantize(self, input: Any, scale: Any, output_type: Any = None) -> Any:
        return self._add("DEQUANTIZE", [input, scale], self._qdq_params("add_dequantize", output_type, "FLOAT"))

    def _qdq_params(self, method: str, output_type: Any, default: str) -> dict[str, Any]:
        """TensorRT 10 also has add_quantize(input, scale) (to INT8; dequantize to FLOAT); 11 needs the type."""
        if output_type is not None:
            return {"to_type": self._api.name_of("DataType", output_type), "axis": -1}
        sigs = self._api.snapshot.classes["INetworkDefinition"][method].sigs
        if not any("(self" in sig and "output_type" not in sig for sig in sigs):
            raise TypeError(f"{method}(): incompatible function arguments: output_type is required")
        return {"to_type": default, "axis": -1}

    def add_reduce(self, input: Any, op: Any, axes: int, keep_dims: bool) -> Any:
        params = {
            "op": self._api.name_of("ReduceOperation", op),
            "axes": operator.index(axes),
            "keep_dims": bool(keep_dims),
        }
        return self._add("REDUCE", [input], params)
