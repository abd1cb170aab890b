"""TensorRT 10.x, 11.x and TensorRT for RTX through one code path. The only module that imports a
TensorRT library: the backend's factory picks it (`tensorrt` or `tensorrt_rtx`, same API shape), and
every function here uses the module it was handed, named `trt`. Where the libraries differ, the code
asks the module what it has (hasattr, a deprecation it announces), never its version string.

- Networks are strongly typed: the precision comes from the model's tensor types (float16 weights
  and activations with casts at float32 I/O for fp16), never from EXPLICIT_BATCH or the FP16/INT8
  builder flags, which TensorRT 11 removed. Weak typing (builder flags) is an optional mode, used
  only where the running version still has the flag.
- "fp32" clears BuilderFlag.TF32, which TensorRT turns on by default on Ampere and later; "tf32"
  sets it and has its own tolerance.
- Two workflows build the same case: the ONNX parser over the case's model, and the case's own
  network-definition function (`Case.define_network`).
- Every CUDA call goes through harness.backends.cuda_rt; timing is CUDA events on the engine's own
  non-blocking stream, gated so that host enqueue time cannot leak into the interval.
- TensorRT for RTX builds ahead of time without a GPU; its runtime runs only on some compute
  capabilities, which `runtime_problem` finds out once per session by loading a one-layer probe.
- Plans are built with ProfilingVerbosity.DETAILED, so that the engine inspector reports the type
  every layer computes in: the proof that an fp16 engine runs in fp16 (harness.precision.layers);
  and its tactic, formats and ONNX nodes, which explain a per-layer profile (profile_layers).
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import inspect
import json
import re
import warnings
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from harness.atomic import write_atomically
from harness.backends import Artifact, ArtifactIncompatibleError, BackendOptions, BuildProgress, BuildRequest
from harness.backends import cuda_rt as default_cuda
from harness.backends.nvml import gpu_telemetry
from harness.case import Case, Precision, raising_line
from harness.errors import BuildError, EngineCacheWarning, HarnessError, ModelRefusedError, ShapeOutsideProfileError
from harness.gate import ENGINE_DEVICE_MEMORY
from harness.measure import Timer
from harness.precision.layers import UNKNOWN, LayerPrecision, layer_precisions
from harness.precision.network import NetworkPrecision
from harness.precision.table import row
from harness.profile import LayerProfile, LayerTime, ProfileRuns

PROFILE_SOURCE = "TensorRT IProfiler + engine inspector"
# How TensorRT's ONNX parser marks the layers it made for a node (ILayer.metadata); a fused layer has several.
_ONNX_LAYER = re.compile(r"\[ONNX Layer: (.*?)\]")


class _Log:
    """The messages a TensorRT library logged since this log was opened: a failure carries the
    builder's own words. TensorRT keeps the first logger a process hands it and ignores later ones
    ("the current new logger is ignored"), so every log reads from the library's one sink."""

    def __init__(self, trt: ModuleType) -> None:
        severity = trt.ILogger.Severity
        self._errors = (severity.INTERNAL_ERROR, severity.ERROR)
        self._warning = severity.WARNING
        self.sink = _sink(trt)
        self._start = self.sink.logged

    @property
    def messages(self) -> list[tuple[Any, str]]:
        messages: list[tuple[Any, str]] = self.sink.since(self._start)
        return messages

    def errors(self) -> list[str]:
        return [msg for severity, msg in self.messages if severity in self._errors]

    def warnings(self) -> tuple[str, ...]:
        return tuple(msg for severity, msg in self.messages if severity == self._warning)

    def text(self) -> str:
        """Errors if there were any, else everything: the most useful lines for a failure message."""
        lines = self.errors() or [msg for _, msg in self.messages]
        return " | ".join(lines[-20:]) or "(TensorRT logged nothing)"


# One sink per library module, dropped with the module (each test double is a module of its own).
_SINKS: weakref.WeakKeyDictionary[ModuleType, Any] = weakref.WeakKeyDictionary()
_KEPT_MESSAGES = 10_000  # a long session keeps the newest; a failure needs only its own few


def _progress_monitor(trt: ModuleType, progress: BuildProgress) -> Any:
    """A TensorRT IProgressMonitor that relays the builder's phases and steps to `progress`."""

    class Monitor(trt.IProgressMonitor):  # type: ignore[name-defined,misc]
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            progress.phase_started(phase_name, parent_phase or None, num_steps)

        def step_complete(self, phase_name: str, step: int) -> bool:
            progress.step_done(phase_name, step)
            return True  # False would cancel the build

        def phase_finish(self, phase_name: str) -> None:
            progress.phase_finished(phase_name)

    return Monitor()


def _sink(trt: ModuleType) -> Any:
    """The library's one ILogger for this process, keeping everything but VERBOSE (builds log tens of
    thousands of verbose lines; failures and warnings are what the harness reports)."""
    if trt not in _SINKS:
        _SINKS[trt] = _sink_class(trt.ILogger)()
    return _SINKS[trt]


def _sink_class(logger_base: type) -> type:
    # No reference to the module itself: the sink must not keep alive the key it is stored under.
    class Sink(logger_base):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.messages: list[tuple[Any, str]] = []
            self.dropped = 0  # messages let go from the front, so that a session's log stays bounded
            self._verbose = logger_base.Severity.VERBOSE  # type: ignore[attr-defined]

        @property
        def logged(self) -> int:
            return self.dropped + len(self.messages)

        def since(self, start: int) -> list[tuple[Any, str]]:
            return list(self.messages[max(0, start - self.dropped) :])

        def log(self, severity: Any, msg: str) -> None:
            if severity == self._verbose:
                return
            self.messages.append((severity, msg))
            if len(self.messages) > _KEPT_MESSAGES:
                half = len(self.messages) // 2
                del self.messages[:half]
                self.dropped += half

    return Sink


def _layer_profiler(trt: ModuleType, runs: ProfileRuns) -> Any:
    """A TensorRT IProfiler that adds every layer time it is told (milliseconds) to `runs`, in microseconds."""

    class Profiler(trt.IProfiler):  # type: ignore[name-defined,misc]
        def __init__(self) -> None:
            trt.IProfiler.__init__(self)

        def report_layer_time(self, layer_name: str, ms: float) -> None:
            runs.add(layer_name, float(ms) * 1000.0)

    return Profiler()


class ExecutionError(HarnessError):
    """TensorRT refused to run an engine (execute_async_v3 returned False)."""


@dataclass
class _Binding:
    name: str
    is_input: bool
    dtype: np.dtype
    shape: tuple[int, ...] = ()
    device: Any = None  # cuda.DeviceBuffer, grown on demand
    host: Any = None  # cuda.PinnedBuffer for the timed copies

    @property
    def nbytes(self) -> int:
        """Bytes of the tensor at its current shape; at least 1, since CUDA refuses empty allocations."""
        return max(1, int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize)


@dataclass
class TensorRTEngine:
    """A deserialized engine with its execution context, stream and device buffers."""

    case: Case
    profile_index: int
    engine: Any
    context: Any
    logger: _Log
    cuda: ModuleType
    options: BackendOptions
    runtime: Any  # kept alive with the engine: TensorRT requires the runtime to outlive its engines
    trt: ModuleType
    stream: Any = None
    bindings: dict[str, _Binding] = field(default_factory=dict)
    _timer: Any = None
    _graphs: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        trt = self.trt
        self.stream = self.cuda.Stream()
        for index in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(index)
            is_input = self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(name)))
            self.bindings[name] = _Binding(name, is_input, dtype)

    def close(self) -> None:
        """Graphs, events and buffers first, then the stream they were made on, then TensorRT's objects
        (the context before its engine). Idempotent: the session may close what a test closed."""
        for graph in self._graphs:
            graph.close()
        self._graphs.clear()
        if self._timer is not None:
            self._timer.close()
            self._timer = None
        for binding in self.bindings.values():
            for memory in (binding.device, binding.host):
                if memory is not None:
                    memory.free()
            binding.device = binding.host = None
        if self.stream is not None:
            self.stream.destroy()
            self.stream = None
        self.context = None
        self.engine = None

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        self._bind(inputs)
        self._upload(inputs)
        self._execute()
        outputs = {b.name: np.empty(b.shape, dtype=b.dtype) for b in self.bindings.values() if not b.is_input}
        for name, array in outputs.items():
            self.cuda.copy_to_host(array, self.bindings[name].device, self.stream)
        self.stream.synchronize()
        return outputs

    def timer(self, inputs: Mapping[str, np.ndarray]) -> Timer:
        enqueue = self._enqueue_for_timing(inputs)
        timer = self._event_timer()
        launches = self.options.launches
        return lambda: float(timer.gpu_seconds(enqueue, launches))

    def host_timer(self, inputs: Mapping[str, np.ndarray]) -> Timer:
        enqueue = self._enqueue_for_timing(inputs)
        timer = self._event_timer()
        return lambda: float(timer.host_seconds(enqueue))

    def facts(self) -> Mapping[str, object]:
        timer = self._event_timer()
        return {
            ENGINE_DEVICE_MEMORY: int(self.engine.device_memory_size_v2),
            "layers": int(self.engine.num_layers),
            "timing": {
                "copies_included": self.options.include_copies,
                "cuda_graph": self.options.cuda_graph,
                "sync": "blocking" if self.options.blocking_sync else "spin",
                "launches_per_sample": self.options.launches,
                "gated": bool(timer.gated),
                "gate_problem": timer.gate_problem,
            },
            "gpu_telemetry": gpu_telemetry(),  # clocks and temperature after the measurement, if NVML is there
        }

    def layer_precisions(self) -> tuple[LayerPrecision, ...] | None:
        """Each engine layer's compute precision from TensorRT's engine inspector, at the profile's opt
        shapes: without input shapes it shows no format for dynamic dimensions. None once closed or
        where the library gives no inspector."""
        if self.engine is None or self.context is None:
            return None
        opt = self.case.profiles[self.profile_index].opt
        for spec in self.case.inputs:
            self.context.set_input_shape(spec.name, opt[spec.name])  # _bind sets each run's own shapes again
        report = self._inspector_report()
        return None if report is None else layer_precisions(report)

    def profile_layers(self, inputs: Mapping[str, np.ndarray], runs: int) -> LayerProfile:
        """`runs` executions of these inputs with an IProfiler on the context, each layer's median time joined
        with what the engine inspector says of the layer at these inputs' shapes. Never a timed sample: TensorRT
        times every layer on its own when profiling, and replays no CUDA graph, so each run is one synchronous
        enqueue; the profiler is taken off the context afterwards, whatever happens."""
        if runs < 1:
            raise ValueError(f"profile_layers needs at least one run, got {runs}")
        self._bind(inputs)
        self._upload(inputs)
        times = ProfileRuns()
        # Held here while set: the context keeps a pointer to the Python object, which must outlive the runs.
        profiler = _layer_profiler(self.trt, times)
        self.context.profiler = profiler
        try:
            for _ in range(runs):
                self._execute()
                self.stream.synchronize()
        finally:
            self.context.profiler = None
        del profiler  # only now: TensorRT reported to it until the last run
        report = self._inspector_report()
        described = _inspected_layers(report) if report is not None else {}
        layers = tuple(_layer_time(name, median, described.get(name)) for name, median in times.medians().items())
        return LayerProfile(layers, runs, PROFILE_SOURCE)

    def _inspector_report(self) -> str | None:
        """The engine inspector's JSON for every layer, at the shapes set on the context; None where the library
        gives no inspector."""
        inspector = self.engine.create_engine_inspector()
        if inspector is None:
            return None
        inspector.execution_context = self.context
        report: str = inspector.get_engine_information(self.trt.LayerInformationFormat.JSON)
        return report

    def _event_timer(self) -> Any:
        if self._timer is None:
            self._timer = self.cuda.EventTimer(self.stream, blocking_sync=self.options.blocking_sync)
        return self._timer

    def _bind(self, inputs: Mapping[str, np.ndarray]) -> None:
        """set_input_shape for every input (TensorRT refuses shapes outside the profile), output shapes
        from the context, device buffers large enough, and an address for every I/O tensor."""
        for name, array in inputs.items():
            if not self.context.set_input_shape(name, tuple(array.shape)):
                low, _, high = self.engine.get_tensor_profile_shape(name, self.profile_index)
                raise ShapeOutsideProfileError(
                    self.case.name,
                    f"TensorRT refused input '{name}' shape {list(array.shape)}: profile {self.profile_index} allows "
                    f"{list(low)} to {list(high)}; use a shape inside the profile ({self.logger.text()})",
                )
        for binding in self.bindings.values():
            binding.shape = tuple(self.context.get_tensor_shape(binding.name))
            if binding.device is None or binding.device.nbytes < binding.nbytes:
                if binding.device is not None:
                    binding.device.free()  # cuda_rt frees only when told: a dropped buffer would leak
                binding.device = self.cuda.DeviceBuffer(binding.nbytes)
            if not self.context.set_tensor_address(binding.name, binding.device.ptr):
                raise ExecutionError(f"TensorRT refused the address of tensor '{binding.name}': {self.logger.text()}")

    def _upload(self, inputs: Mapping[str, np.ndarray]) -> None:
        for name, array in inputs.items():
            expected = self.bindings[name].dtype
            self.cuda.copy_to_device(
                self.bindings[name].device, np.ascontiguousarray(array, dtype=expected), self.stream
            )

    def _execute(self) -> None:
        if not self.context.execute_async_v3(self.stream.handle):
            raise ExecutionError(f"execute_async_v3 returned False for case '{self.case.name}': {self.logger.text()}")

    def _enqueue_for_timing(self, inputs: Mapping[str, np.ndarray]) -> Callable[[], None]:
        """What one timed launch enqueues: the engine alone, or with its copies through pinned memory."""
        self._bind(inputs)
        self._upload(inputs)
        self._execute()  # a first launch outside any capture, as TensorRT requires before graph capture
        self.stream.synchronize()
        enqueue = self._execute
        if self.options.include_copies:
            enqueue = self._with_copies(inputs)
        if self.options.cuda_graph:
            if self.cuda.stream_is_capturing(self.stream.handle):
                raise ExecutionError("the engine's stream is already capturing a CUDA graph")
            graph = self.cuda.CudaGraph(self.stream, enqueue)
            self._graphs.append(graph)
            enqueue = graph.launch
        return enqueue

    def _with_copies(self, inputs: Mapping[str, np.ndarray]) -> Callable[[], None]:
        for binding in self.bindings.values():
            if binding.host is None or binding.host.nbytes < binding.nbytes:
                if binding.host is not None:
                    binding.host.free()  # its views were those of an earlier timer, replaced below
                binding.host = self.cuda.PinnedBuffer(binding.nbytes)
        staged = {
            name: self.bindings[name].host.view(self.bindings[name].dtype, array.shape)
            for name, array in inputs.items()
        }
        for name, view in staged.items():
            view[...] = inputs[name]
        outputs = [(b.host.view(b.dtype, b.shape), b.device) for b in self.bindings.values() if not b.is_input]

        def enqueue() -> None:
            for name, view in staged.items():
                self.cuda.copy_to_device(self.bindings[name].device, view, self.stream)
            self._execute()
            for view, device in outputs:
                self.cuda.copy_to_host(view, device, self.stream)

        return enqueue


class TensorRTBackend:
    """Builds plans with a TensorRT library's builder, through the ONNX parser or the network-definition API."""

    def __init__(
        self, options: BackendOptions, *, library: ModuleType, workflow: str, cuda: ModuleType = default_cuda
    ) -> None:
        self.options = options
        self.trt = library
        self.name = library.__name__  # "tensorrt" or "tensorrt_rtx": results, engine-cache folder, messages
        self.workflow = workflow  # "onnx-parser" or "network-api"
        self.cuda = cuda

    @property
    def clock(self) -> str:
        what = "engine with host<->device copies" if self.options.include_copies else "engine compute only"
        graph = ", replayed as a CUDA graph" if self.options.cuda_graph else ""
        return f"CUDA events on the engine's stream, gated by cuStreamWaitValue32: {what}{graph}"

    def version(self) -> str:
        return str(self.trt.__version__)

    def device(self) -> str:
        facts = self._local_gpu
        if facts is None:
            return "no GPU (ahead-of-time build)"
        return f"{facts['name']} (compute capability {facts['compute_capability']})"

    def runtime_problem(self) -> str | None:
        """Load a one-layer probe engine: the runtime's own reason if it refuses this GPU."""
        problem: str | None = self.cuda.gpu_problem()
        if problem is not None:
            return problem
        trt = self.trt
        logger = _Log(trt)
        builder = trt.Builder(logger.sink)
        network = builder.create_network(self._network_flags())
        probe = network.add_input("probe", trt.DataType.FLOAT, (1,))
        network.mark_output(network.add_identity(probe).get_output(0))
        plan = builder.build_serialized_network(network, builder.create_builder_config())
        if plan is None:
            return f"{self._label()} cannot build even a one-layer probe engine here: {logger.text()}"
        runtime = trt.Runtime(logger.sink)
        if runtime.deserialize_cuda_engine(bytes(plan)) is None:
            return f"{self._label()} cannot run engines on this GPU: {logger.text()}"
        return None

    def unsupported_reason(self, case: Case, precision: Precision) -> str | None:
        trt = self.trt
        if self.workflow == "network-api" and case.define_network is None:
            return "the case has no network-definition function (Case.define_network)"
        needs = row(precision)
        flag = needs.weak_typing_flag
        if self.options.weak_typing and flag is not None and not hasattr(trt.BuilderFlag, flag):
            return f"weak typing needs BuilderFlag.{flag}, which {self._label()} does not have"
        if self.options.weak_typing and not needs.weakly_typed:
            return (
                f"{precision.value} is built from a strongly typed network (casts, Q/DQ); weak typing has no such path"
            )
        if not hasattr(trt.DataType, needs.tensorrt_type):
            return f"{self._label()} has no {needs.compute_dtype} (DataType.{needs.tensorrt_type})"
        return None

    def key_parts(self, request: BuildRequest) -> Mapping[str, str]:
        facts = self._local_gpu
        parts = {
            # A library that builds without a GPU targets compute capabilities, not the machine's GPU.
            "gpu": str(facts["name"]) if facts else "none",
            "compute_capability": str(facts["compute_capability"]) if facts else "ahead-of-time",
            "workflow": self.workflow,
            "typing": "weak" if self.options.weak_typing else "strong",
            "profiling_verbosity": "detailed",  # a plan cached before builds set DETAILED shows only names: rebuild it
        }
        if self.workflow == "network-api" and request.case.define_network is not None:
            # The network is code: the source of its whole module (helpers, constants, weights()) is
            # part of what the plan was built from.
            module = inspect.getmodule(request.case.define_network)
            source = inspect.getsource(module) if module else inspect.getsource(request.case.define_network)
            parts["network_source_sha256"] = hashlib.sha256(source.encode()).hexdigest()
        return parts

    def build(self, request: BuildRequest) -> Artifact:
        trt = self.trt
        logger = _Log(trt)
        builder = trt.Builder(logger.sink)
        network = builder.create_network(self._network_flags())
        weights_owner = self._populate(network, request, logger)
        config = builder.create_builder_config()
        config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED  # per-layer types for layer_precisions
        self._set_precision(config, request.precision)
        self._add_profile(builder, config, request)
        timing_cache = self._attach_timing_cache(config)
        monitor = None
        if request.progress is not None and hasattr(trt, "IProgressMonitor"):
            monitor = _progress_monitor(trt, request.progress)
            config.progress_monitor = monitor
        plan = builder.build_serialized_network(network, config)
        del monitor  # only now: the builder called it until the plan was built
        if plan is None:
            raise BuildError(
                request.case.name,
                f"{self._label()} failed to build the {request.precision.value} engine "
                f"({self.workflow}): {logger.text()}",
            )
        if timing_cache is not None:
            _save_timing_cache(timing_cache, bytes(config.get_timing_cache().serialize()))
        del weights_owner  # only now: TensorRT read the network's weights until the plan was built
        return Artifact(bytes(plan), logger.warnings())

    def load(self, artifact: bytes, request: BuildRequest) -> TensorRTEngine:
        trt = self.trt
        logger = _Log(trt)
        runtime = trt.Runtime(logger.sink)
        engine = runtime.deserialize_cuda_engine(artifact)
        if engine is None:
            raise ArtifactIncompatibleError(f"{self._label()} cannot deserialize the plan: {logger.text()}")
        context = engine.create_execution_context()
        return TensorRTEngine(
            request.case, request.profile_index, engine, context, logger, self.cuda, self.options, runtime, trt
        )

    def _label(self) -> str:
        return f"{self.name} {self.version()}"

    @functools.cached_property
    def _local_gpu(self) -> Mapping[str, object] | None:
        """The GPU plans are built for; None on a machine without one (only a library that builds
        ahead of time, such as TensorRT for RTX, gets past its builder there). Asked once per backend:
        every cache key and every test's record read it."""
        return None if self.cuda.gpu_problem() else self.cuda.device_facts()

    def _network_flags(self) -> int:
        if self.options.weak_typing:
            return 0
        return 1 << int(self.trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)

    def _populate(self, network: Any, request: BuildRequest, logger: _Log) -> object:
        """Fill the network. Returned: what owns the network's weights, which TensorRT reads by reference until
        the build ends, so the caller keeps it alive until then: the ONNX parser ("the parser owns the memory
        occupied by the weights, and so the parser object should not be deleted until after the builder has
        run", TensorRT developer guide, "Importing a Model Using the ONNX Parser"), or the NetworkPrecision."""
        trt = self.trt
        if self.workflow == "network-api":
            define_network = request.case.define_network
            assert define_network is not None  # unsupported_reason skipped it otherwise
            # int8: the very scales of the harness's Q/DQ model (the request's model), so that both workflows agree.
            precision = NetworkPrecision(trt, network, request.precision, request.model.scales or {})
            try:
                define_network(network, trt, precision)
            except Exception as error:
                raise BuildError(request.case.name, self._network_failure(error, define_network, logger)) from error
            return precision
        parser = trt.OnnxParser(network, logger.sink)
        if not parser.parse(request.model_bytes):
            errors = [parser.get_error(i) for i in range(parser.num_errors)]
            details = "; ".join(
                f"node {e.node()} ({_node(e.node_operator(), e.node_name())}): {e.desc()}" for e in errors
            )
            refusal = self._refusal(parser, errors, details)
            if refusal is not None:
                raise ModelRefusedError(request.case.name, refusal)
            raise BuildError(
                request.case.name,
                f"{self._label()}'s ONNX parser rejected the {request.precision.value} model: "
                f"{details or logger.text()}; fix the case's ONNX model or the op the parser does not support",
            )
        shape_inputs = [
            network.get_input(i).name
            for i in range(network.num_inputs)
            if getattr(network.get_input(i), "is_shape_tensor", False)
        ]
        if shape_inputs:
            raise ModelRefusedError(
                request.case.name,
                f"input {', '.join(repr(name) for name in shape_inputs)} is a shape tensor for {self._label()} (its "
                "values, not only its shape, set the shapes of the network), and the harness's optimization profiles "
                "give input shapes only: shape-tensor inputs are not supported yet; make the shape a constant of the "
                "model",
            )
        return parser

    def _refusal(self, parser: Any, errors: list[Any], details: str) -> str | None:
        """Why the parser refused the model, where every error says the backend lacks something (a standard ONNX
        operator it has no importer for, an attribute value or data type it does not support); None where any
        error is a failure (an invalid node, an unknown operator, an internal error): that build fails."""
        import onnx

        lacking = sorted(
            {op for e in errors if (op := e.node_operator()) and onnx.defs.has(op) and not parser.supports_operator(op)}
        )
        codes = sorted({str(e.code()).rpartition(".")[2] for e in errors})

        def lacks(error: Any) -> bool:
            op = error.node_operator()
            if op and not onnx.defs.has(op):
                return False  # an operator ONNX does not define (a custom op whose plugin is missing): a failure
            return op in lacking or str(error.code()).rpartition(".")[2].startswith("UNSUPPORTED_")

        if not errors or not all(lacks(e) for e in errors):
            return None
        if lacking:
            what = f"has no importer for operator{'s' if len(lacking) > 1 else ''} {', '.join(lacking)}"
        else:
            what = f"does not support what the model uses ({', '.join(codes)})"
        return (
            f"{self._label()}'s ONNX parser {what}: {details}; run the model on a backend that supports it, or "
            "export it without that"
        )

    def _network_failure(self, error: Exception, define_network: Callable[..., None], logger: _Log) -> str:
        where = raising_line(error, define_network) or "define_network"
        if isinstance(error, AttributeError) and _from_library(error, self.trt):
            return (
                f"its define_network ({where}) uses a name that {self._label()} does not have ({error}); use only "
                "names every library the case runs on has, or check for it with hasattr"
            )
        logged = f"; {self._label()} logged: {logger.text()}" if logger.messages else ""
        return f"its define_network ({where}) raised {error!r}{logged}; fix the case's network function"

    def _set_precision(self, config: Any, precision: Precision) -> None:
        trt = self.trt
        flags = row(precision).builder_flags
        if "TF32" not in flags:
            config.clear_flag(trt.BuilderFlag.TF32)  # on by default since Ampere; fp32 must mean fp32
        for flag in flags:
            config.set_flag(getattr(trt.BuilderFlag, flag))
        weak_typing_flag = row(precision).weak_typing_flag
        if self.options.weak_typing and weak_typing_flag is not None:
            config.set_flag(getattr(trt.BuilderFlag, weak_typing_flag))  # present: unsupported_reason checked hasattr

    def _add_profile(self, builder: Any, config: Any, request: BuildRequest) -> None:
        profile = builder.create_optimization_profile()
        declared = request.case.profiles[request.profile_index]
        for spec in request.case.inputs:
            profile.set_shape(spec.name, declared.min[spec.name], declared.opt[spec.name], declared.max[spec.name])
        config.add_optimization_profile(profile)

    def _timing_cache_path(self) -> Path | None:
        if self.options.cache_dir is None:
            return None
        facts = self._local_gpu
        gpu = str(facts["name"]) if facts else "ahead-of-time"
        gpu = gpu.replace(" ", "_").replace("/", "_")
        return self.options.cache_dir / self.name / f"timing-{self.version()}-{gpu}.cache"

    def _attach_timing_cache(self, config: Any) -> Path | None:
        """Reuse the persisted timing cache so rebuilds skip tactic timing; a stale one is dropped.
        Returns where to save it after the build, None where there is nothing worth saving: no cache
        folder, or a library whose timing cache is a no-op (TensorRT for RTX announces that with a
        DeprecationWarning on first use)."""
        path = self._timing_cache_path()
        data = path.read_bytes() if path is not None and path.exists() else b""
        with warnings.catch_warnings(record=True) as announced:
            warnings.simplefilter("always", DeprecationWarning)
            cache = config.create_timing_cache(data) if data else None
            if cache is None or not config.set_timing_cache(cache, False):
                config.set_timing_cache(config.create_timing_cache(b""), False)
        if any(issubclass(w.category, DeprecationWarning) and "no-op" in str(w.message) for w in announced):
            return None
        return path


def _save_timing_cache(path: Path, data: bytes) -> None:
    """A timing cache that cannot be saved (a full disk) costs later builds time, never this build."""
    try:
        write_atomically(path, data)
    except OSError as error:
        warnings.warn(
            EngineCacheWarning(
                f"the timing cache {path} cannot be written ({error}); later builds will time tactics again"
            ),
            stacklevel=2,
        )


def _inspected_layers(report: str) -> dict[str, tuple[Mapping[str, Any], LayerPrecision]]:
    """The detailed layers of an engine inspector report by name, each with its precision; none where the plan
    was built without ProfilingVerbosity.DETAILED (bare names)."""
    precisions = layer_precisions(report)  # ValueError, saying why, where the report is not one
    entries = json.loads(report)["Layers"]
    return {
        precision.name: (entry, precision) for entry, precision in zip(entries, precisions) if isinstance(entry, dict)
    }


def _layer_time(name: str, median_us: float, described: tuple[Mapping[str, Any], LayerPrecision] | None) -> LayerTime:
    """One profiled layer with the inspector's word on it: its type, tactic (name, else value), input then output
    formats, precision and the ONNX nodes it computes. A layer the inspector does not name keeps its time only."""
    if described is None:
        return LayerTime(name, "", median_us)
    entry, precision = described
    tactic = entry.get("TacticName") or entry.get("TacticValue")
    tensors = [*entry.get("Inputs", ()), *entry.get("Outputs", ())]
    return LayerTime(
        name=name,
        kind=precision.layer_type,
        median_us=median_us,
        tactic=str(tactic) if tactic else None,
        formats=tuple(str(tensor.get("Format/Datatype", "")) for tensor in tensors),
        precision=None if precision.precision == UNKNOWN else precision.precision,
        fused=tuple(_ONNX_LAYER.findall(str(entry.get("Metadata", "")))),
    )


def _node(operator: str, name: str) -> str:
    return f"{operator} {name!r}" if name else operator


def _from_library(error: AttributeError, trt: ModuleType) -> bool:
    """Whether the missing name was looked up on the library or one of its objects, not on numpy or a
    case's own helper (an AttributeError there is the case's bug, not a name the library lacks)."""
    owner = getattr(error, "obj", None)
    if owner is trt:
        return True
    owner_class = owner if isinstance(owner, type) else type(owner)
    roots = {trt.__name__.split(".")[0], trt.Builder.__module__.split(".")[0]}  # the bindings' own package
    return owner_class.__module__.split(".")[0] in roots


def _workflow(library: str, workflow: str) -> Callable[[BackendOptions], TensorRTBackend]:
    def factory(options: BackendOptions) -> TensorRTBackend:
        return TensorRTBackend(options, library=importlib.import_module(library), workflow=workflow)

    factory.__doc__ = f"{library} with the {workflow} workflow"
    return factory


# The built-in backends' factories (harness.backends.BUILTIN_BACKENDS names them).
onnx_parser_backend = _workflow("tensorrt", "onnx-parser")  # `trt`: the ONNX parser over the case's model
network_api_backend = _workflow("tensorrt", "network-api")  # `trt-net`: the case's define_network, layer by layer
rtx_onnx_parser_backend = _workflow("tensorrt_rtx", "onnx-parser")  # `rtx`: TensorRT for RTX, ONNX parser
rtx_network_api_backend = _workflow("tensorrt_rtx", "network-api")  # `rtx-net`: TensorRT for RTX, network API
