"""Building: Builder, IBuilderConfig, IOptimizationProfile, ITimingCache, IHostMemory.

build_serialized_network checks what TensorRT's builder checks (outputs, types, profiles, shapes
at every profile corner) and returns a plan (plan.py), or logs ERRORs and returns None.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

from .graph import Graph, GraphError
from .layers import Shape
from .network import as_shape
from .plan import FormatError, Profiles, Program, decode_timing_cache, encode_plan, encode_timing_cache
from .strict import Api, StrictObject

_BUILD = "IBuilder::buildSerializedNetwork"
# Precision flags that only weakly typed networks may use (TensorRT 10 refuses them on strongly typed ones).
_PRECISION_FLAGS = ("FP16", "BF16", "INT8", "FP8", "INT4", "FP4")


def _fmt(shape: Shape) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


class IHostMemory(StrictObject, bytes):
    """Serialized bytes: bytes(x), memoryview(x), len(x); .nbytes and .dtype as in TensorRT."""

    @property
    def nbytes(self) -> int:
        return len(self)

    @property
    def dtype(self) -> Any:
        return self._api.member("DataType", "UINT8")


def host_memory(api: Api, data: bytes) -> Any:
    return bytes.__new__(api.classes["IHostMemory"], data)


class ITimingCache(StrictObject):
    """Entries of layer timings; one from another version, or not a cache at all, is refused when set."""

    _entries: set[str]
    _problem: str | None  # why set_timing_cache must refuse this cache

    def serialize(self) -> Any:
        return host_memory(self._api, encode_timing_cache(self._api.version, self._entries))


class IOptimizationProfile(StrictObject):
    """min / opt / max shapes per input name."""

    _shapes: dict[str, tuple[Shape, Shape, Shape]]

    def set_shape(self, input: str, min: Any, opt: Any, max: Any) -> None:
        self._shapes[str(input)] = (as_shape(min), as_shape(opt), as_shape(max))

    def get_shape(self, input: str) -> list[Any]:
        dims = self._api.classes["Dims"]
        return [dims(shape) for shape in self._shapes.get(str(input), ())]


def _profile_problem(shapes: dict[str, tuple[Shape, Shape, Shape]]) -> str | None:
    for name, (low, opt, high) in shapes.items():
        if not len(low) == len(opt) == len(high):
            return f"input '{name}': min {_fmt(low)}, opt {_fmt(opt)} and max {_fmt(high)} differ in rank"
        if any(not 0 <= lo <= op <= hi for lo, op, hi in zip(low, opt, high)):
            return f"input '{name}': need 0 <= min <= opt <= max, got {_fmt(low)}, {_fmt(opt)}, {_fmt(high)}"
    return None


class IBuilderConfig(StrictObject):
    """Flags (TF32 on by default, as on Ampere and later), pools, profiles, timing cache, and the
    profiling verbosity (LAYER_NAMES_ONLY by default, as TensorRT documents)."""

    _logger: Any
    _flags: set[str]
    _profiles: list[dict[str, tuple[Shape, Shape, Shape]]]
    _pools: dict[str, int]
    _timing_cache: Any
    _optimization_level: int
    _profiling_verbosity: str
    _progress_monitor: Any

    def set_flag(self, flag: Any) -> None:
        self._flags.add(self._api.name_of("BuilderFlag", flag))

    def clear_flag(self, flag: Any) -> None:
        self._flags.discard(self._api.name_of("BuilderFlag", flag))

    def get_flag(self, flag: Any) -> bool:
        return self._api.name_of("BuilderFlag", flag) in self._flags

    @property
    def flags(self) -> int:
        return sum(1 << int(self._api.member("BuilderFlag", name)) for name in self._flags)

    @flags.setter
    def flags(self, value: int) -> None:
        bits = operator.index(value)
        self._flags = {member.name for member in self._api.enums["BuilderFlag"] if bits >> int(member) & 1}

    def set_memory_pool_limit(self, pool: Any, pool_size: int) -> None:
        size = operator.index(pool_size)
        if size < 0:
            raise ValueError(f"pool_size must be >= 0, got {size}")
        self._pools[self._api.name_of("MemoryPoolType", pool)] = size

    @property
    def builder_optimization_level(self) -> int:
        return self._optimization_level

    @builder_optimization_level.setter
    def builder_optimization_level(self, value: int) -> None:
        self._optimization_level = operator.index(value)

    @property
    def profiling_verbosity(self) -> Any:
        return self._api.member("ProfilingVerbosity", self._profiling_verbosity)

    @profiling_verbosity.setter
    def profiling_verbosity(self, value: Any) -> None:
        self._profiling_verbosity = self._api.name_of("ProfilingVerbosity", value)

    def add_optimization_profile(self, profile: Any) -> int:
        if not isinstance(profile, self._api.classes["IOptimizationProfile"]):
            raise TypeError(f"incompatible function argument: expected tensorrt.IOptimizationProfile, got {profile!r}")
        problem = _profile_problem(profile._shapes)
        if problem is not None:
            self._api.log(self._logger, "ERROR", f"IBuilderConfig::addOptimizationProfile: invalid profile: {problem}")
            return -1
        self._profiles.append(dict(profile._shapes))
        return len(self._profiles) - 1

    @property
    def num_optimization_profiles(self) -> int:
        return len(self._profiles)

    def create_timing_cache(self, serialized_timing_cache: Any) -> Any:
        data = bytes(memoryview(serialized_timing_cache))
        try:
            entries, problem = decode_timing_cache(self._api.version, data), None
        except FormatError as error:
            entries, problem = set(), str(error)
        return self._api.new("ITimingCache", _entries=entries, _problem=problem)

    def set_timing_cache(self, cache: Any, ignore_mismatch: bool) -> bool:
        if not isinstance(cache, self._api.classes["ITimingCache"]):
            raise TypeError(f"incompatible function argument: expected tensorrt.ITimingCache, got {cache!r}")
        if cache._problem is not None:
            self._api.log(self._logger, "ERROR", f"IBuilderConfig::setTimingCache: refused the cache: {cache._problem}")
            return False
        self._timing_cache = cache
        return True

    def get_timing_cache(self) -> Any:
        return self._timing_cache

    @property
    def progress_monitor(self) -> Any:
        return self._progress_monitor

    @progress_monitor.setter
    def progress_monitor(self, monitor: Any) -> None:
        if monitor is not None and not isinstance(monitor, self._api.classes["IProgressMonitor"]):
            raise TypeError(f"incompatible function argument: expected tensorrt.IProgressMonitor, got {monitor!r}")
        if monitor is not None and not getattr(monitor, "_initialized", False):
            raise TypeError(f"{type(monitor).__name__}.__init__() must call tensorrt.IProgressMonitor.__init__(self)")
        self._progress_monitor = monitor


class IProgressMonitor(StrictObject):
    """Subclass it, call IProgressMonitor.__init__(self) from __init__, and override its three methods:
    the builder reports one phase, "Building engine", with a step per layer of the network."""

    def __init__(self) -> None:
        self._initialized = True

    def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
        raise RuntimeError('Tried to call pure virtual function "IProgressMonitor::phaseStart"')

    def step_complete(self, phase_name: str, step: int) -> bool:
        raise RuntimeError('Tried to call pure virtual function "IProgressMonitor::stepComplete"')

    def phase_finish(self, phase_name: str) -> None:
        raise RuntimeError('Tried to call pure virtual function "IProgressMonitor::phaseFinish"')


class Builder(StrictObject):
    """trt.Builder(logger): networks, configs, profiles, and the build itself."""

    def __init__(self, logger: Any) -> None:
        self._logger = self._api.require_logger(logger)

    def create_network(self, flags: int = 0) -> Any:
        bits = operator.index(flags)
        known = sum(1 << int(member) for member in self._api.enums["NetworkDefinitionCreationFlag"])
        if bits & ~known:
            self._api.log(
                self._logger,
                "ERROR",
                "IBuilder::createNetworkV2: Error Code 3: API Usage Error (Parameter check failed, condition: "
                f"flags are NetworkDefinitionCreationFlag bits. Unknown flag bits {bits & ~known:#x} for TensorRT "
                f"{self._api.version})",
            )
            return None
        strong = bool(bits >> int(self._api.member("NetworkDefinitionCreationFlag", "STRONGLY_TYPED")) & 1)
        graph = Graph(strongly_typed=strong or not self._api.has_weak_typing)
        return self._api.new("INetworkDefinition", _graph=graph, _logger=self._logger, _flags=bits)

    def create_builder_config(self) -> Any:
        return self._api.new(
            "IBuilderConfig",
            _logger=self._logger,
            _flags={"TF32"},
            _profiles=[],
            _pools={},
            _timing_cache=None,
            _optimization_level=3,
            _profiling_verbosity="LAYER_NAMES_ONLY",
            _progress_monitor=None,
        )

    def create_optimization_profile(self) -> Any:
        return self._api.new("IOptimizationProfile", _shapes={})

    def build_serialized_network(self, network: Any, config: Any) -> Any:
        api = self._api
        if api.faults.build_error is not None:
            message, api.faults.build_error = api.faults.build_error, None
            api.log(self._logger, "ERROR", f"{_BUILD}: {message}")
            return None
        if any(parser() is None for parser in network.__dict__.get("_parsers", ())):
            api.log(
                self._logger,
                "ERROR",
                f"{_BUILD}: the OnnxParser that filled this network was destroyed: its weights are freed",
            )
            return None
        try:
            program = _compile(api, network, config)
        except GraphError as error:
            api.log(self._logger, "ERROR", f"{_BUILD}: {error}")
            return None
        if not _monitored(config._progress_monitor, network._graph):
            api.log(self._logger, "ERROR", f"{_BUILD}: the build was cancelled by the IProgressMonitor")
            return None
        if config._timing_cache is not None:
            config._timing_cache._entries |= _timing_entries(program)
        return host_memory(api, encode_plan(api.version, program))


def _monitored(monitor: Any, graph: Graph) -> bool:
    """Report the build's one phase, a step per layer, to the config's monitor; False when it cancelled."""
    if monitor is None:
        return True
    phase = "Building engine"
    monitor.phase_start(phase, None, len(graph.nodes))
    for step in range(len(graph.nodes)):
        if not monitor.step_complete(phase, step):
            return False
    monitor.phase_finish(phase)
    return True


def _compile(api: Api, network: Any, config: Any) -> Program:
    """Everything TensorRT's builder would refuse, as GraphError; else the Program a plan holds."""
    graph: Graph = network._graph
    if not graph.outputs:
        raise GraphError("Error Code 4: Internal Error (Network must have at least one output)")
    names = [graph.tensors[i].name for i in graph.inputs + graph.outputs]
    if len(set(names)) != len(names):
        raise GraphError(f"Error Code 4: Internal Error (I/O tensor names must be unique, got {names})")
    precision_flags = sorted(config._flags & set(_PRECISION_FLAGS))
    if graph.strongly_typed and precision_flags:
        raise GraphError(
            f"Error Code 3: API Usage Error (BuilderFlag {', '.join(precision_flags)} cannot be used with a strongly "
            "typed network: its precision comes from its tensor types)"
        )
    graph.types()
    graph.declared_shapes()
    _check_zero_points(graph)
    profiles = _resolve_profiles(graph, config._profiles)
    for index, profile in enumerate(profiles):
        for corner, label in enumerate(("min", "opt", "max")):
            shapes = {i: profile[graph.tensors[i].name][corner] for i in graph.inputs}
            try:
                graph.shapes(shapes)
            except GraphError as error:
                raise GraphError(f"{error} at the {label} shapes of optimization profile {index}") from None
    weak_fp16 = not graph.strongly_typed and "FP16" in config._flags
    return Program(
        _snapshot(graph),
        profiles,
        tf32="TF32" in config._flags,
        weak_fp16=weak_fp16,
        profiling_verbosity=config._profiling_verbosity,
        slow_layers=_slow_layers(graph, api.faults.slower_tactic),
    )


def _slow_layers(graph: Graph, slower_tactic: str | None) -> tuple[str, ...]:
    """The layers the test-only knob Faults.slower_tactic gives the slower tactic; GraphError where it names none."""
    if slower_tactic is None:
        return ()
    names = [node.name for node in graph.nodes]
    if slower_tactic not in names:
        raise GraphError(
            f"the double's test knob _faults.slower_tactic names layer {slower_tactic!r}, which this network has "
            f"not; set it to one of {names}"
        )
    return (slower_tactic,)


def _check_zero_points(graph: Graph) -> None:
    """TensorRT takes a Q/DQ zero point (input 2) only as constant zeros, and says so at build time."""
    for node in graph.nodes:
        if node.kind not in ("QUANTIZE", "DEQUANTIZE") or len(node.inputs) < 3:
            continue
        producer = graph.producer(node.inputs[2])
        if producer is None or producer.kind != "CONSTANT" or np.any(producer.params["weights"]):
            raise GraphError(
                f"Error Code 4: API Usage Error (IQuantizeLayer/IDequantizeLayer {node.name} has `zero_point` "
                "whose coefficients aren't all zeros)"
            )


def _snapshot(graph: Graph) -> Graph:
    """The graph as it is now: the network may change after the build, the plan must not."""
    return Graph.from_plain(graph.to_plain())


def _resolve_profiles(graph: Graph, profiles: list[dict[str, tuple[Shape, Shape, Shape]]]) -> Profiles:
    """Profiles covering every input: dynamic inputs must be in each profile, static ones may be implied."""
    dynamic = [graph.tensors[i].name for i in graph.inputs if -1 in (graph.tensors[i].shape or ())]
    if dynamic and not profiles:
        raise GraphError(
            "Error Code 4: API Usage Error (Network has dynamic or shape inputs, but no optimization profile has "
            f"been defined. Dynamic inputs: {', '.join(dynamic)})"
        )
    resolved: Profiles = []
    for index, profile in enumerate(profiles or [{}]):
        complete: dict[str, tuple[Shape, Shape, Shape]] = {}
        for i in graph.inputs:
            tensor = graph.tensors[i]
            declared = tensor.shape or ()
            corners = profile.get(tensor.name, (declared, declared, declared))
            _check_profile_input(index, tensor.name, declared, corners)
            complete[tensor.name] = corners
        strangers = sorted(set(profile) - set(complete))
        if strangers:
            raise GraphError(
                f"Error Code 4: API Usage Error (optimization profile {index} names no input: {strangers})"
            )
        resolved.append(complete)
    return resolved


def _check_profile_input(index: int, name: str, declared: Shape, corners: tuple[Shape, Shape, Shape]) -> None:
    where = f"optimization profile {index}, input '{name}'"
    if -1 in declared and corners == (declared, declared, declared):
        raise GraphError(
            f"Error Code 4: API Usage Error ({name}: dynamic input is missing dimensions in profile {index}.)"
        )
    for label, shape in zip(("min", "opt", "max"), corners):
        if len(shape) != len(declared):
            raise GraphError(
                f"Error Code 4: API Usage Error ({where}: {label} {_fmt(shape)} has rank {len(shape)}, "
                f"the input {_fmt(declared)} has rank {len(declared)})"
            )
        if any(d >= 0 and d != s for d, s in zip(declared, shape)):
            raise GraphError(
                f"Error Code 4: API Usage Error ({where}: {label} {_fmt(shape)} differs from the static "
                f"dimensions of {_fmt(declared)})"
            )


def _timing_entries(program: Program) -> set[str]:
    """One entry per (layer kind, input types, profile) the build would have timed."""
    types = program.graph.types()
    return {
        f"{node.kind}|{','.join(types[i] for i in node.inputs)}|{profile}"
        for node in program.graph.nodes
        for profile in range(len(program.profiles))
    }
