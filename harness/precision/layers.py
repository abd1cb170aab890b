"""The precision each layer of a built engine computes in, read from the engine inspector's JSON.

A precision label is a claim; the engine's own layer report is the proof. TensorRT's
IEngineInspector, on an engine built with ProfilingVerbosity.DETAILED, gives per layer:

    {"Layers": [{"Name": "Conv_0 + Relu_1", "LayerType": "CaskConvolution",
                 "Inputs":  [{"Name": ..., "Location": "Device", "Dimensions": [...],
                              "Format/Datatype": "Channel major FP16 format where channel % 8 == 0"}],
                 "Outputs": [...], "ParameterType": "Convolution", "Weights": {"Type": "Half", ...}, ...}],
     "Bindings": ["input", "output"]}

Format/Datatype is a layout sentence naming the type ("Row major linear FP32", "Row major Int8
format", "Row major linear BFloat16 format") or, for layers TensorRT's Myelin compiler generates, the
bare type ("Half", "Float"); "N/A due to dynamic shapes" where the inspector had no input shapes.
Built with the default LAYER_NAMES_ONLY, "Layers" holds bare names. Sources: trt-engine-explorer
(NVIDIA/TensorRT tools/experimental/trt-engine-explorer: trex/parser.py, trex/activations.py and its
example graphs) and TensorRT's EngineInspector documentation.

Nothing here imports an inference library: any backend whose inspector speaks this JSON can use it.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.precision.table import PRECISIONS

UNKNOWN = "Unknown"
# Layers that move or convert data and compute nothing: the boundary casts of an fp16 model, the
# reformats TensorRT inserts between layouts, Q/DQ at quantization boundaries, folded no-ops, and
# constants (a kept float32 layer's weights are float32 constants).
CONVERSIONS = frozenset({"Reformat", "Cast", "Quantize", "Dequantize", "NoOp", "Constant"})
# Layers that choose indices (ArgMax, ArgMin, TopK): they compare values and do no arithmetic, so the type they
# read changes no result and there is no precision to prove; they are never held to a label, at any precision (the
# fp16 converter keeps ArgMax in float32, and an ArgMax reading an output's float32 cast reads float32 anyway).
INDEX_CHOOSING = frozenset({"ArgMax", "ArgMin", "TopK"})
# What a layer's compute precision may be checked against (precision_problems' `expected`).
REDUCED = tuple(entry.inspector_word for entry in PRECISIONS.values() if entry.is_proven)

# Type words in Format/Datatype strings and weight types -> TensorRT's DataType spelling in the JSON.
_TYPE_WORDS = {
    "fp32": "Float",
    "float": "Float",
    "fp16": "Half",
    "half": "Half",
    "bfloat16": "BFloat16",
    "bf16": "BFloat16",
    "fp8": "FP8",
    "int8": "Int8",
    "uint8": "UInt8",
    "int32": "Int32",
    "int64": "Int64",
    "bool": "Bool",
    "int4": "Int4",
    "fp4": "FP4",
    "double": "Double",
}
_FLOATS = frozenset({"Float", "Half", "BFloat16", "FP8", "Double"})
# Outputs that are indices, masks or shapes: the layer's arithmetic ran on its float inputs.
_INDICES = frozenset({"Int32", "Int64", "Bool"})


@dataclass(frozen=True)
class LayerPrecision:
    name: str
    layer_type: str  # the inspector's LayerType ("CaskConvolution", "Reformat", ...); "Unknown" for bare names
    precision: str  # "Float", "Half", "BFloat16", "Int8", "Int32", ... or "Unknown"

    @property
    def converts(self) -> bool:
        """A reformat, cast, Q/DQ or no-op: its precision says where data changes type, not how math ran."""
        return self.layer_type in CONVERSIONS


def datatype(format_datatype: str) -> str:
    """The type a Format/Datatype string (or a weights "Type") names; "Unknown" where it names none."""
    for word in format_datatype.replace(".", " ").replace(",", " ").split():
        if word.lower() in _TYPE_WORDS:
            return _TYPE_WORDS[word.lower()]
    return UNKNOWN


def layer_precisions(inspector_json: str) -> tuple[LayerPrecision, ...]:
    """Every layer of an engine inspector report, with the precision it computes in.

    A layer computes in its first output's type, except that
    - outputs of index, mask or shape types (TopK's and ArgMax's indices, comparisons) leave the math
      to the first float input's type;
    - a computing layer reading Int8 and writing a float ran an int8 kernel that dequantizes its
      result (TensorRT's "i8f32" / "i8f16" tactics): Int8;
    - an output whose format is unknown (dynamic shapes) falls back to the layer's weights type.
    Bare names (an engine built without ProfilingVerbosity.DETAILED) are layers of Unknown precision.
    ValueError if the text is not an inspector report.
    """
    try:
        report = json.loads(inspector_json)
    except json.JSONDecodeError as error:
        raise ValueError(f"the engine inspector's output is not JSON: {error}") from None
    layers = report.get("Layers") if isinstance(report, dict) else None
    if isinstance(layers, list):
        return tuple(_layer(entry) for entry in layers)
    # One exception type for every malformed report: callers handle "not a report", whatever the cause.
    raise ValueError('the engine inspector\'s JSON has no "Layers" list')


def _layer(entry: object) -> LayerPrecision:
    if isinstance(entry, str):
        return LayerPrecision(entry, UNKNOWN, UNKNOWN)
    if isinstance(entry, dict):
        return _detailed(entry)
    raise ValueError(f"an engine inspector layer is neither a name nor an object: {entry!r}")


def _detailed(entry: Mapping[str, Any]) -> LayerPrecision:
    layer_type = str(entry.get("LayerType", UNKNOWN))
    inputs = _types(entry.get("Inputs", ()))
    outputs = _types(entry.get("Outputs", ()))
    precision = (outputs or inputs or [UNKNOWN])[0]
    if precision in _INDICES:
        precision = next((t for t in inputs if t in _FLOATS), precision)
    elif precision in _FLOATS and inputs[:1] == ["Int8"] and layer_type not in CONVERSIONS:
        precision = "Int8"
    elif precision == UNKNOWN:
        weights = entry.get("Weights")
        if isinstance(weights, Mapping):
            precision = datatype(str(weights.get("Type", "")))
    return LayerPrecision(str(entry.get("Name", "")), layer_type, precision)


def _types(tensors: Iterable[Any]) -> list[str]:
    return [datatype(str(tensor.get("Format/Datatype", ""))) for tensor in tensors if isinstance(tensor, dict)]


def names_node(layer_name: str, node: str) -> bool:
    """Whether an engine layer carries ONNX node `node`: TensorRT names a fused layer after the nodes it fused
    ("Conv_0 + Relu_1"), and a node it builds from several layers after the node with a suffix ("fc1.matmul");
    a mere substring ("conv1" in "conv10", "a" in anything) is not the node."""
    return any(part == node or part.startswith(f"{node}.") for part in layer_name.split(" + ")) if node else False


def _is_kept(layer: LayerPrecision, kept: Collection[str]) -> bool:
    return any(names_node(layer.name, node) for node in kept)


def precision_problems(layers: Sequence[LayerPrecision], expected: str, kept: Collection[str] = ()) -> list[str]:
    """Why an engine labelled `expected` ("Half", "BFloat16" or "Int8") does not compute at it: one
    line per layer that computes Float instead, leaving out conversions (casts, reformats, Q/DQ),
    integer layers (shapes, indices), index-choosing layers (INDEX_CHOOSING: comparisons, no arithmetic) and layers
    named after a `kept` node (deliberate fp32 islands).
    Layers whose precision the report does not show are a problem too: unproven is not proven."""
    if expected not in REDUCED:
        raise ValueError(f"expected precision {expected!r} is not one of {', '.join(REDUCED)}")
    if not layers:
        return ["the engine inspector listed no layers: build with ProfilingVerbosity.DETAILED"]
    problems: list[str] = []
    unknown: list[str] = []
    for layer in layers:
        if layer.converts or layer.layer_type in INDEX_CHOOSING or _is_kept(layer, kept):
            continue
        if layer.precision == "Float":
            problems.append(f"layer '{layer.name}' ({layer.layer_type}) computes in Float, not {expected}")
        elif layer.precision == UNKNOWN:
            unknown.append(layer.name)
    if unknown:
        problems.append(
            f"the precision of {len(unknown)} layer(s) is not shown ({', '.join(unknown[:5])}"
            f"{', ...' if len(unknown) > 5 else ''}): build with ProfilingVerbosity.DETAILED and inspect "
            "with an execution context whose input shapes are set"
        )
    return problems


def summary(layers: Iterable[LayerPrecision], kept: Collection[str] = ()) -> str:
    """One line for a report: "conv1 Half, pool1 Half, fc1 Float (kept), y Float (cast)"."""
    parts = []
    for layer in layers:
        note = f" ({layer.layer_type.lower()})" if layer.converts else " (kept)" if _is_kept(layer, kept) else ""
        parts.append(f"{layer.name} {layer.precision}{note}")
    return ", ".join(parts)
