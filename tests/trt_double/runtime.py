"""Running: Runtime, ICudaEngine, IExecutionContext (the engine inspector is inspector.py).

execute_async_v3 enforces TensorRT's protocol (every input shape set, every I/O address set, no
stream capture) and then, on the host: synchronizes the stream, reads each input from its device
address through the CUDA module, runs the graph in numpy and writes each output to its address.
With an IProfiler set as the context's `profiler`, it then reports every layer's time to it, as
TensorRT does when enqueue emits the profile (the default): modelled times (profiler.py), not measured.
"""

from __future__ import annotations

import math
import operator
from typing import Any

import numpy as np

from .builder import host_memory
from .graph import Graph, GraphError
from .layers import STORAGE_TYPES, Shape
from .network import as_shape
from .plan import FormatError, Program, decode_plan
from .profiler import layer_time_ms
from .strict import StrictObject

_ENQUEUE = "IExecutionContext::enqueueV3"
_SET_SHAPE = "IExecutionContext::setInputShape"
_ALIGNMENT = 256  # device memory is handed out in 256-byte units


def _fmt(shape: Shape) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


def _usage(where: str, message: str) -> str:
    return f"{where}: Error Code 3: API Usage Error ({message})"


class Runtime(StrictObject):
    """trt.Runtime(logger): deserializes the double's plans."""

    def __init__(self, logger: Any) -> None:
        self._logger = self._api.require_logger(logger)

    def deserialize_cuda_engine(self, serialized_engine: Any) -> Any:
        data = bytes(memoryview(serialized_engine))
        if self._api.faults.runtime_refuses is not None:
            self._api.log(self._logger, "ERROR", f"IRuntime::deserializeCudaEngine: {self._api.faults.runtime_refuses}")
            return None
        try:
            program = decode_plan(self._api.version, data)
        except FormatError as error:
            self._api.log(self._logger, "ERROR", f"IRuntime::deserializeCudaEngine: {error}")
            return None
        return self._api.new("ICudaEngine", _program=program, _plan=data, _logger=self._logger)._load()


class ICudaEngine(StrictObject):
    """A deserialized plan: I/O tensors, profiles, sizes; it creates execution contexts."""

    _program: Program
    _plan: bytes
    _logger: Any

    def _load(self) -> ICudaEngine:
        graph = self._program.graph
        self._types = graph.types()
        self._declared = graph.declared_shapes()
        self._io = {graph.tensors[i].name: i for i in graph.inputs + graph.outputs}
        self._input_names = [graph.tensors[i].name for i in graph.inputs]
        return self

    @property
    def _graph(self) -> Graph:
        return self._program.graph

    def _known(self, name: str, where: str) -> bool:
        if name in self._io:
            return True
        self._api.log(
            self._logger,
            "ERROR",
            _usage(where, f"Given invalid tensor name: {name}. Get valid tensor names with getIOTensorName()."),
        )
        return False

    @property
    def num_io_tensors(self) -> int:
        return len(self._io)

    @property
    def num_layers(self) -> int:
        return len(self._graph.nodes)

    @property
    def num_optimization_profiles(self) -> int:
        return len(self._program.profiles)

    @property
    def device_memory_size_v2(self) -> int:
        """Bytes of every intermediate tensor at the largest profile's max shapes (the double's model)."""
        return max(self.get_device_memory_size_for_profile_v2(i) for i in range(self.num_optimization_profiles))

    def get_device_memory_size_for_profile_v2(self, profile_index: int) -> int:
        graph = self._graph
        maxima = {i: self._program.profiles[profile_index][graph.tensors[i].name][2] for i in graph.inputs}
        shapes = graph.shapes(maxima)
        io = set(self._io.values())
        sizes = (
            math.prod(shapes[i]) * np.dtype(STORAGE_TYPES[self._types[i]]).itemsize
            for i in range(len(graph.tensors))
            if i not in io
        )
        return sum(-(-size // _ALIGNMENT) * _ALIGNMENT for size in sizes)

    def get_tensor_name(self, index: int) -> str | None:
        names = list(self._io)
        if 0 <= index < len(names):
            return names[index]
        self._api.log(self._logger, "ERROR", _usage("ICudaEngine::getIOTensorName", f"index {index} out of range"))
        return None

    def get_tensor_mode(self, name: str) -> Any:
        mode = "NONE" if name not in self._io else "INPUT" if name in self._input_names else "OUTPUT"
        return self._api.member("TensorIOMode", mode)

    def get_tensor_dtype(self, name: str) -> Any:
        if not self._known(name, "ICudaEngine::getTensorDataType"):
            return self._api.member("DataType", "FLOAT")
        return self._api.member("DataType", self._types[self._io[name]])

    def get_tensor_shape(self, name: str) -> Any:
        shape = self._declared[self._io[name]] if self._known(name, "ICudaEngine::getTensorShape") else ()
        return self._api.classes["Dims"](shape)

    def get_tensor_profile_shape(self, name: str, profile_index: int) -> list[Any]:
        where = "ICudaEngine::getProfileShape"
        if not self._known(name, where) or name not in self._input_names:
            return []
        if not 0 <= profile_index < len(self._program.profiles):
            self._api.log(self._logger, "ERROR", _usage(where, f"profile index {profile_index} out of range"))
            return []
        dims = self._api.classes["Dims"]
        return [dims(shape) for shape in self._program.profiles[profile_index][name]]

    def serialize(self) -> Any:
        return host_memory(self._api, self._plan)

    @property
    def profiling_verbosity(self) -> Any:
        return self._api.member("ProfilingVerbosity", self._program.profiling_verbosity)

    def create_engine_inspector(self) -> Any:
        return self._api.new("EngineInspector", _engine=self, _context=None)

    def create_execution_context(self, strategy: Any = None) -> Any:
        if strategy is not None:
            self._api.name_of("ExecutionContextAllocationStrategy", strategy)
        return self._api.new("IExecutionContext", _engine=self, _profile=0, _shapes={}, _addresses={}, _profiler=None)


class IExecutionContext(StrictObject):
    """Input shapes, tensor addresses, and execute_async_v3 on the host."""

    _engine: ICudaEngine
    _profile: int
    _shapes: dict[str, Shape]
    _addresses: dict[str, int]
    _profiler: Any  # an IProfiler, or None

    def _error(self, message: str) -> bool:
        self._api.log(self._engine._logger, "ERROR", message)
        return False

    @property
    def engine(self) -> Any:
        return self._engine

    @property
    def active_optimization_profile(self) -> int:
        return self._profile

    @property
    def all_binding_shapes_specified(self) -> bool:
        return all(name in self._shapes for name in self._engine._input_names)

    def set_optimization_profile_async(self, profile_index: int, stream_handle: int) -> bool:
        index = operator.index(profile_index)
        if not 0 <= index < self._engine.num_optimization_profiles:
            return self._error(_usage("IExecutionContext::setOptimizationProfileAsync", f"invalid profile {index}"))
        self._profile = index
        self._shapes.clear()  # input shapes belong to a profile: set them again
        return True

    def set_input_shape(self, name: str, shape: Any) -> bool:
        engine = self._engine
        if name not in engine._input_names:
            problem = "is not an input tensor" if name in engine._io else "is not a tensor of this engine"
            return self._error(_usage(_SET_SHAPE, f"'{name}' {problem}; inputs: {engine._input_names}"))
        given = as_shape(shape)
        low, _, high = engine._program.profiles[self._profile][name]
        declared = engine._declared[engine._io[name]]
        allowed = f"profile {self._profile} allows min {_fmt(low)} to max {_fmt(high)}"
        if len(given) != len(declared):
            return self._error(
                _usage(
                    _SET_SHAPE,
                    f"input '{name}' has rank {len(declared)} but {_fmt(given)} has rank {len(given)}; {allowed}",
                )
            )
        for axis, (value, lo, hi) in enumerate(zip(given, low, high)):
            if not lo <= value <= hi:
                return self._error(
                    _usage(
                        _SET_SHAPE,
                        f"Supplied binding dimension {_fmt(given)} for input '{name}' exceeds min ~ max range at index "
                        f"{axis}, maximum dimension in profile is {hi}, minimum dimension in profile is {lo}, but "
                        f"supplied dimension is {value}; {allowed}",
                    )
                )
        self._shapes[name] = given
        return True

    def _resolved(self) -> list[Shape]:
        """Every tensor's shape from the set input shapes; GraphError when they do not fit together."""
        engine = self._engine
        return engine._graph.shapes({engine._io[name]: shape for name, shape in self._shapes.items()})

    def get_tensor_shape(self, name: str) -> Any:
        engine = self._engine
        if not engine._known(name, "IExecutionContext::getTensorShape"):
            return self._api.classes["Dims"](())
        if name in engine._input_names:
            return self._api.classes["Dims"](self._shapes.get(name, engine._declared[engine._io[name]]))
        if not self.all_binding_shapes_specified:
            return self._api.classes["Dims"](engine._declared[engine._io[name]])
        try:
            return self._api.classes["Dims"](self._resolved()[engine._io[name]])
        except GraphError as error:
            self._error(str(error))
            return self._api.classes["Dims"](engine._declared[engine._io[name]])

    @property
    def profiler(self) -> Any:
        return self._profiler

    @profiler.setter
    def profiler(self, profiler: Any) -> None:
        if profiler is not None and not isinstance(profiler, self._api.classes["IProfiler"]):
            raise TypeError(f"incompatible function argument: expected tensorrt.IProfiler, got {profiler!r}")
        if profiler is not None and not getattr(profiler, "_initialized", False):
            raise TypeError(f"{type(profiler).__name__}.__init__() must call tensorrt.IProfiler.__init__(self)")
        self._profiler = profiler

    def set_tensor_address(self, name: str, memory: int) -> bool:
        if not self._engine._known(name, "IExecutionContext::setTensorAddress"):
            return False
        self._addresses[name] = int(memory)
        return True

    def get_tensor_address(self, name: str) -> int:
        return self._addresses.get(name, 0)

    def execute_async_v3(self, stream_handle: int) -> bool:
        engine = self._engine
        handle = int(stream_handle)
        unset = [name for name in engine._input_names if name not in self._shapes]
        if unset:
            return self._error(
                _usage(
                    _ENQUEUE,
                    "Not all shapes are specified. Following input tensors' dimensions are not specified: "
                    f"{', '.join(unset)}. Call setInputShape first.",
                )
            )
        for name in engine._io:
            if not self._addresses.get(name):
                kind = "input" if name in engine._input_names else "output"
                return self._error(
                    _usage(
                        _ENQUEUE,
                        f"Address is not set for {kind} tensor {name}. Call setInputTensorAddress or "
                        "setTensorAddress before enqueue/execute.",
                    )
                )
        if self._api.memory.stream_is_capturing(handle):
            return self._error(
                f"{_ENQUEUE}: Error Code 1: Internal Error (stream {handle:#x} is capturing a CUDA graph: this numpy "
                "double of TensorRT runs on the host and cannot be captured into a CUDA graph)"
            )
        try:
            shapes = self._resolved()
        except GraphError as error:
            return self._error(f"{_ENQUEUE}: {error}")
        self._run(handle, shapes)
        if self._profiler is not None:
            self._report(shapes)
        return True

    def _report(self, shapes: list[Shape]) -> None:
        """Every layer's modelled time, in execution order, to the profiler (profiler.py says how it is modelled)."""
        program = self._engine._program
        for node in program.graph.nodes:
            self._profiler.report_layer_time(node.name, layer_time_ms(node, shapes, node.name in program.slow_layers))

    def _run(self, handle: int, shapes: list[Shape]) -> None:
        engine, memory = self._engine, self._api.memory
        graph = engine._graph
        memory.synchronize_stream(handle)  # work queued before the launch (the input copies) must be done
        arrays = {}
        for i in graph.inputs:
            name, dtype = graph.tensors[i].name, np.dtype(STORAGE_TYPES[engine._types[i]])
            data = memory.read_device(self._addresses[name], math.prod(shapes[i]) * dtype.itemsize)
            arrays[i] = np.frombuffer(data, dtype=dtype).reshape(shapes[i])
        program = engine._program
        outputs = graph.run(engine._types, arrays, tf32=program.tf32, weak_fp16=program.weak_fp16)
        for i, value in zip(graph.outputs, outputs):
            dtype = np.dtype(STORAGE_TYPES[engine._types[i]])
            memory.write_device(
                self._addresses[graph.tensors[i].name], np.ascontiguousarray(value, dtype=dtype).tobytes()
            )
