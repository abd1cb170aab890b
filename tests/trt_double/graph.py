"""The network as plain data, and the one executor that both workflows (network API, ONNX parser) share.

Shapes and types are inferred lazily over the whole graph, as TensorRT recomputes them when a
layer parameter changes after the layer was added (padding_nd, reshape_dims, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .layers import FLOATS, OPS, LayerError, Numerics, Shape, reduced_float


class GraphError(Exception):
    """The network cannot be built (or run at these shapes); the message is what TensorRT would log."""


@dataclass
class TensorDef:
    name: str
    dtype: str | None = None  # declared type of a network input; derived for layer outputs
    shape: Shape | None = None  # declared shape of a network input (-1: dynamic)


@dataclass
class Node:
    kind: str  # LayerType member name
    name: str
    inputs: list[int]
    outputs: list[int]
    params: dict[str, Any]
    metadata: str = ""  # ILayer.metadata: the ONNX parser's "[ONNX Layer: <node name>]"


@dataclass
class Graph:
    strongly_typed: bool
    tensors: list[TensorDef] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)
    inputs: list[int] = field(default_factory=list)
    outputs: list[int] = field(default_factory=list)

    def add_tensor(self, tensor: TensorDef) -> int:
        self.tensors.append(tensor)
        return len(self.tensors) - 1

    def producer(self, tensor: int) -> Node | None:
        return next((node for node in self.nodes if tensor in node.outputs), None)

    def types(self) -> list[str]:
        """Every tensor's type: declared for inputs, derived layer by layer for the rest."""
        types = [tensor.dtype or "" for tensor in self.tensors]
        for node in self.nodes:
            try:
                derived = OPS[node.kind].types(node.params, [types[i] for i in node.inputs], self.strongly_typed)
            except LayerError as error:
                raise GraphError(_api_usage(node, error)) from None
            for tensor, type_name in zip(node.outputs, derived):
                types[tensor] = type_name
        return types

    def shapes(self, input_shapes: Mapping[int, Shape]) -> list[Shape]:
        """Every tensor's shape given the inputs' shapes (-1 where still unknown)."""
        shapes: list[Shape] = [()] * len(self.tensors)
        for tensor, shape in input_shapes.items():
            shapes[tensor] = tuple(shape)
        for node in self.nodes:
            try:
                derived = OPS[node.kind].shapes(node.params, [shapes[i] for i in node.inputs])
            except LayerError as error:
                raise GraphError(_api_usage(node, error)) from None
            for tensor, shape in zip(node.outputs, derived):
                shapes[tensor] = shape
        return shapes

    def declared_shapes(self) -> list[Shape]:
        return self.shapes({index: self.tensors[index].shape or () for index in self.inputs})

    def run(
        self, types: list[str], arrays: Mapping[int, np.ndarray], *, tf32: bool, weak_fp16: bool
    ) -> list[np.ndarray]:
        """The marked outputs for these input arrays, layer by layer (Numerics in layers.py)."""
        values: dict[int, np.ndarray] = dict(arrays)
        for node in self.nodes:
            op = OPS[node.kind]
            out_types = [types[i] for i in node.outputs]
            reduced = reduced_float(out_types)
            if reduced is None and weak_fp16 and any(t in FLOATS for t in out_types):
                reduced = np.float16
            numerics = Numerics(reduced=reduced, tf32=tf32)
            operands = [
                numerics.operand(values[i]) if position in op.tf32_operands else numerics.value(values[i])
                for position, i in enumerate(node.inputs)
            ]
            results = op.compute(node.params, operands, numerics)
            for tensor, value, type_name in zip(node.outputs, results, out_types):
                values[tensor] = numerics.finish(value, type_name)
        return [values[i] for i in self.outputs]

    def to_plain(self) -> dict[str, Any]:
        """Builtins and numpy arrays only: what a plan pickles (no class of this package)."""
        return {
            "strongly_typed": self.strongly_typed,
            "tensors": [(t.name, t.dtype, t.shape) for t in self.tensors],
            "nodes": [
                (n.kind, n.name, list(n.inputs), list(n.outputs), dict(n.params), n.metadata) for n in self.nodes
            ],
            "inputs": list(self.inputs),
            "outputs": list(self.outputs),
        }

    @classmethod
    def from_plain(cls, plain: Mapping[str, Any]) -> Graph:
        return cls(
            strongly_typed=plain["strongly_typed"],
            tensors=[TensorDef(name, dtype, shape) for name, dtype, shape in plain["tensors"]],
            nodes=[Node(*node) for node in plain["nodes"]],
            inputs=list(plain["inputs"]),
            outputs=list(plain["outputs"]),
        )


def _api_usage(node: Node, error: LayerError) -> str:
    return f"Error Code 4: API Usage Error ({node.name}: {error})"
