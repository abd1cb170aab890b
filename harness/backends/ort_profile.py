"""ONNX Runtime's profiler trace read as a LayerProfile (harness/profile.py): no onnxruntime import, plain JSON and
ONNX graphs, so that harness/backends/ort.py only runs the profiled session.

The trace is Chrome-trace JSON: one "Session"/"model_run" event per run, and within it one "Node" event per node of
the optimized graph, named "<node>_kernel_time", its "dur" in µs and its operator in "args.op_name". The optimized
graph (the engine's artifact) gives each node's kind; the model before optimization says, where ONNX Runtime's
naming lets us tell, which of its nodes a fused node computes (fused_nodes).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import onnx

from harness.profile import LayerProfile, LayerTime, ProfileRuns

SOURCE = "onnxruntime profiler"
_KERNEL_SUFFIX = "_kernel_time"
_FUSED_PREFIX = "fused "  # how ONNX Runtime names some fused nodes (Gemm + Relu: "fused fc1", a FusedGemm)
_NCHWC_SUFFIX = "_nchwc"  # ONNX Runtime's NCHWc transformer names its Conv after the tensor it computes
# ... and in a float16 model, after that tensor's name as ONNX Runtime's cast insertion renamed it ("r1" becomes
# "InsertedPrecisionFreeCast_r1": every convolution of the real models at fp16)
_CAST_PREFIX = "InsertedPrecisionFreeCast_"


class TraceError(ValueError):
    """A profiler trace that does not hold what a profile needs; the message names the file."""


def read_trace(path: Path) -> list[Mapping[str, object]]:
    try:
        events = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise TraceError(f"onnxruntime's profile {path} cannot be read: {error}") from None
    if not isinstance(events, list):
        raise TraceError(f"onnxruntime's profile {path} is not a list of trace events")
    return [event for event in events if isinstance(event, Mapping)]


def node_times(events: Sequence[Mapping[str, object]], skip_runs: int) -> tuple[ProfileRuns, int]:
    """Each node's time in every run after the first `skip_runs` (a session's first runs allocate and warm caches),
    and how many runs were kept. A node that runs twice in one run (a name ONNX Runtime repeats) counts its sum."""
    runs = sorted(
        (_number(event.get("ts")), _number(event.get("ts")) + _number(event.get("dur")))
        for event in events
        if event.get("cat") == "Session" and event.get("name") == "model_run"
    )[skip_runs:]
    per_run: list[dict[str, float]] = [{} for _ in runs]
    for event in events:
        name = event.get("name")
        if event.get("cat") != "Node" or not isinstance(name, str) or not name.endswith(_KERNEL_SUFFIX):
            continue
        start = _number(event.get("ts"))
        run = next((index for index, (begin, end) in enumerate(runs) if begin <= start <= end), None)
        if run is not None:
            node = name.removesuffix(_KERNEL_SUFFIX)
            per_run[run][node] = per_run[run].get(node, 0.0) + _number(event.get("dur"))
    times = ProfileRuns()
    for run_times in per_run:
        for node, microseconds in run_times.items():
            times.add(node, microseconds)
    return times, len(runs)


def layer_profile(
    events: Sequence[Mapping[str, object]], optimized: bytes, original: bytes, skip_runs: int
) -> LayerProfile:
    """The profile of the runs in `events` after the first `skip_runs`: the optimized graph's nodes in execution
    order, each with its median time, its operator as `kind` and the original nodes it computes as `fused`."""
    times, kept = node_times(events, skip_runs)
    if not kept or not times.times:
        raise TraceError(f"onnxruntime's profile holds no node times for the {kept} runs kept")
    graph = onnx.load_from_string(optimized).graph
    # The saved optimized graph leaves some nodes unnamed (a Softmax ONNX Runtime expanded into ReduceMax, Sub, Exp,
    # …), which ONNX Runtime names when it loads them ("ReduceMax_8"): the trace's own operator names those.
    kinds = {**traced_kinds(events), **{node.name: node.op_type for node in graph.node if node.name}}
    fused = fused_nodes(graph, onnx.load_from_string(original).graph)
    layers = tuple(
        LayerTime(name, kinds.get(name, ""), median, fused=fused.get(name, ()))
        for name, median in times.medians().items()
    )
    return LayerProfile(layers, kept, SOURCE)


def traced_kinds(events: Sequence[Mapping[str, object]]) -> dict[str, str]:
    """Each traced node's operator, as the trace names it ("args.op_name"), by node name."""
    kinds: dict[str, str] = {}
    for event in events:
        name, args = event.get("name"), event.get("args")
        if event.get("cat") == "Node" and isinstance(name, str) and isinstance(args, Mapping):
            op_name = args.get("op_name")
            if isinstance(op_name, str) and op_name:
                kinds[name.removesuffix(_KERNEL_SUFFIX)] = op_name
    return kinds


def fused_nodes(optimized: onnx.GraphProto, original: onnx.GraphProto) -> dict[str, tuple[str, ...]]:
    """For the optimized nodes that ONNX Runtime's naming ties to other original nodes than their namesake, the
    original nodes each computes:

    - a node that kept an original node's name (FusedConv keeps its Conv's), or took it as "fused <name>"
      (FusedGemm), computes that node;
    - an NCHWc Conv or pool is named "<tensor>_nchwc" after the original tensor it computes (at float16, that
      tensor's name with the cast insertion's prefix): it computes that tensor's producer;
    and where it carries an `activation` attribute (ONNX Runtime fused the activation into it) also the activation
    node that consumed the fused node's output, or produced the named tensor. Other nodes (reorders, nodes ONNX
    Runtime invented) are left out: their namesake is all that can be said honestly."""
    nodes = {node.name: node for node in original.node if node.name}
    producers = {output: node for node in original.node for output in node.output}
    found: dict[str, tuple[str, ...]] = {}
    for node in optimized.node:
        activation = _activation(node)
        namesake = nodes.get(node.name) or nodes.get(node.name.removeprefix(_FUSED_PREFIX))
        computed: tuple[str, ...] = ()
        if namesake is not None:
            follower = _sole_consumer(original, namesake.output[0]) if activation else None
            fused_follower = follower is not None and follower.op_type == activation
            computed = (namesake.name,) + ((follower.name,) if follower and fused_follower else ())
        elif node.name.endswith(_NCHWC_SUFFIX) and (producer := producers.get(_computed_tensor(node.name))):
            before = producers.get(producer.input[0]) if activation and producer.op_type == activation else None
            computed = ((before.name,) if before else ()) + (producer.name,)
        if computed and computed != (node.name,):
            found[node.name] = computed
    return found


def _computed_tensor(nchwc_name: str) -> str:
    """The original tensor an NCHWc node is named after."""
    return nchwc_name.removesuffix(_NCHWC_SUFFIX).removeprefix(_CAST_PREFIX)


def _activation(node: onnx.NodeProto) -> str | None:
    for attribute in node.attribute:
        if attribute.name == "activation":
            return str(attribute.s.decode())
    return None


def _sole_consumer(graph: onnx.GraphProto, tensor: str) -> onnx.NodeProto | None:
    consumers = [node for node in graph.node if tensor in node.input]
    return consumers[0] if len(consumers) == 1 else None


def _number(value: object) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0
