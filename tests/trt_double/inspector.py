"""EngineInspector: the per-layer JSON of TensorRT's engine inspector, for the layers the double runs.

The real format (what TensorRT's trt-engine-explorer parses, tools/experimental/trt-engine-explorer in
NVIDIA/TensorRT, and its example graphs such as examples/pytorch/resnet/A100/fp16/*.graph.json):

    {"Layers": [{"Name": ..., "LayerType": ..., "Inputs": [{"Name", "Location", "Dimensions",
     "Format/Datatype"}], "Outputs": [...], "ParameterType": ..., ...}, ...], "Bindings": [names]}

How much a layer entry says follows the build's ProfilingVerbosity, as TensorRT documents for
IEngineInspector: DETAILED gives the objects above, LAYER_NAMES_ONLY (the default) only the layer
names (trex refuses such a file: "Make sure to enable detailed ProfilingVerbosity"; the developer
guide's getLayerInformation example prints the bare name), NONE no layer information. Without an execution context whose input shapes are all set, dimensions that depend on
input shapes are -1 and their format is not known ("N/A due to dynamic shapes", as TensorRT prints).

Each DETAILED layer also names its tactic as TensorRT prints it: "TacticValue" ("0x" and 16 hex
digits) on every layer, "TacticName" too on the layers whose kernels come from TensorRT's kernel
libraries (convolution, matrix multiply); the double's tactics are named for its numpy code
(profiler.py), never after a real kernel. A layer with metadata (ILayer.metadata; the ONNX parser sets
"[ONNX Layer: <node name>]" on the layers it adds for a node) has it as "Metadata".

The double does not fuse or reformat: every network layer is one engine layer, and a tensor's
Format/Datatype is the type the double computes it in (graph.run): its declared type, or HALF for
the float outputs of a weakly typed network built with BuilderFlag.FP16.
"""

from __future__ import annotations

import json
import operator
from typing import Any

from .graph import Graph, Node
from .layers import DISPLAY_NAMES, FLOATS, Shape
from .profiler import NAMED_TACTICS, tactic_name, tactic_value
from .strict import StrictObject

# Format/Datatype strings of row-major linear tensors, as TensorRT prints them (trex's activations.py
# lists the strings it has met in real engines).
_ROW_MAJOR = {
    "FLOAT": "Row major linear FP32",
    "HALF": "Row major linear FP16 format",
    "BF16": "Row major linear BFloat16 format",
    "INT8": "Row major Int8 format",
    "INT32": "Row major linear Int32",
    "INT64": "Row major linear Int64 format",
    "BOOL": "Row major linear BOOL",
    "UINT8": "Row major linear UInt8 format",
}
# Weights' "Type" as TensorRT names it in a layer's "Weights" / "Bias" entry.
_WEIGHT_TYPES = {"FLOAT": "Float", "HALF": "Half", "BF16": "BFloat16", "INT8": "Int8", "INT32": "Int32"}
_DYNAMIC = "N/A due to dynamic shapes"


def executed_types(graph: Graph, types: list[str], weak_fp16: bool) -> list[str]:
    """Every tensor's type as the double computes it: a weakly typed FP16 build computes the float
    outputs of every layer in float16 (graph.run), whatever their declared type."""
    executed = list(types)
    if weak_fp16:
        for node in graph.nodes:
            for tensor in node.outputs:
                if types[tensor] in FLOATS:
                    executed[tensor] = "HALF"
    return executed


class EngineInspector(StrictObject):
    """Layer information of one engine, at the detail its build's ProfilingVerbosity allows."""

    _engine: Any  # ICudaEngine
    _context: Any  # IExecutionContext or None

    @property
    def execution_context(self) -> Any:
        return self._context

    @execution_context.setter
    def execution_context(self, context: Any) -> None:
        if context is not None and not isinstance(context, self._api.classes["IExecutionContext"]):
            raise TypeError(f"incompatible function argument: expected tensorrt.IExecutionContext, got {context!r}")
        if context is not None and context._engine is not self._engine:
            self._api.log(
                self._engine._logger,
                "ERROR",
                "IEngineInspector::setExecutionContext: Error Code 3: API Usage Error (the execution context "
                "belongs to another engine)",
            )
            return
        self._context = context

    def get_engine_information(self, format: Any) -> str:
        self._require_json(format)
        graph: Graph = self._engine._graph
        bindings = [graph.tensors[i].name for i in graph.inputs + graph.outputs]
        layers = [self._layer(index) for index in range(len(graph.nodes))]
        return json.dumps({"Layers": [layer for layer in layers if layer is not None], "Bindings": bindings})

    def get_layer_information(self, layer_index: int, format: Any) -> str:
        self._require_json(format)
        index = operator.index(layer_index)
        if not 0 <= index < len(self._engine._graph.nodes):
            self._api.log(
                self._engine._logger,
                "ERROR",
                "IEngineInspector::getLayerInformation: Error Code 3: API Usage Error (Parameter check failed, "
                f"condition: layerIndex >= 0 && layerIndex < getNbLayers(). layer index {index} out of range)",
            )
            return ""
        layer = self._layer(index)
        # A bare name at LAYER_NAMES_ONLY, as the developer guide's getLayerInformation example prints it.
        return "" if layer is None else layer if isinstance(layer, str) else json.dumps(layer)

    def _require_json(self, format: Any) -> None:
        if self._api.name_of("LayerInformationFormat", format) != "JSON":
            raise NotImplementedError("double implements EngineInspector only for LayerInformationFormat.JSON")

    def _layer(self, index: int) -> Any:
        """Layer `index` at the build's verbosity: None (NONE), its name, or the detailed object."""
        program = self._engine._program
        node = program.graph.nodes[index]
        if program.profiling_verbosity == "NONE":
            return None
        if program.profiling_verbosity == "LAYER_NAMES_ONLY":
            return node.name
        return self._detailed(node)

    def _detailed(self, node: Node) -> dict[str, Any]:
        engine = self._engine
        graph: Graph = engine._graph
        types = executed_types(graph, engine._types, engine._program.weak_fp16)
        shapes = self._shapes()
        # TensorRT fuses a DequantizeLayer into the layer that consumes it, which then reads the int8 tensor
        # (its "Format/Datatype" an Int8 format); the double computes on the dequantized floats, with the
        # same numbers, and reports the input as the real engine would.
        producers = {out: producer for producer in graph.nodes for out in producer.outputs}

        def reported(i: int) -> str:
            producer = producers.get(i)
            if producer is not None and producer.kind == "DEQUANTIZE" and types[producer.inputs[0]] == "INT8":
                return "INT8"
            return types[i]

        def tensor(i: int, read: bool) -> dict[str, Any]:
            dims = list(shapes[i])
            known = -1 not in dims
            return {
                "Name": graph.tensors[i].name,
                "Location": "Device",
                "Dimensions": dims,
                "Format/Datatype": _ROW_MAJOR[reported(i) if read else types[i]] if known else _DYNAMIC,
            }

        kind = DISPLAY_NAMES[node.kind].replace(" ", "")
        layer: dict[str, Any] = {
            "Name": node.name,
            "LayerType": kind,
            "Inputs": [tensor(i, read=node.kind != "DEQUANTIZE") for i in node.inputs],
            "Outputs": [tensor(i, read=False) for i in node.outputs],
            "ParameterType": kind,
        }
        tactic = tactic_name(node, slow=node.name in engine._program.slow_layers)
        if node.kind in NAMED_TACTICS:
            layer["TacticName"] = tactic
        layer["TacticValue"] = tactic_value(tactic)
        if node.metadata:
            layer["Metadata"] = node.metadata
        if node.kind == "CONVOLUTION" and len(node.inputs) == 1:
            # Weights held by the layer (not tensor inputs), in the type it computes in: TensorRT
            # converts them to it, and the double rounds them to it (Numerics.value).
            compute = _WEIGHT_TYPES[types[node.outputs[0]]]
            bias = node.params["bias"]
            layer["Weights"] = {"Type": compute, "Count": int(node.params["kernel"].size)}
            layer["Bias"] = {"Type": compute, "Count": 0 if bias is None else int(bias.size)}
        return layer

    def _shapes(self) -> list[Shape]:
        """Concrete shapes from the context when all its input shapes are set, else the declared ones."""
        context = self._context
        if context is not None and context.all_binding_shapes_specified:
            shapes: list[Shape] = context._resolved()
            return shapes
        declared: list[Shape] = self._engine._declared
        return declared
