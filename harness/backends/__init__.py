"""The backend interface and the registry of backends.

A backend turns a case's ONNX model into an artifact (bytes the engine cache can keep on disk) and
loads an artifact into an `Engine` that runs inputs and times itself. Backend modules are the only
places that import an inference library; this module imports none and loads them on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, get_type_hints

import numpy as np

from harness.errors import HarnessError, SelectionError
from harness.switch import switch_value

if TYPE_CHECKING:
    from harness.case import Case, Precision
    from harness.measure import Timer
    from harness.precision.derive import DerivedModel
    from harness.precision.layers import LayerPrecision
    from harness.profile import LayerProfile


@dataclass(frozen=True)
class BuildRequest:
    """Everything a backend may use to build one engine."""

    case: Case
    precision: Precision
    profile_index: int
    # The case's ONNX model at the precision's compute dtype, with what its derivation knows (int8's scales), so
    # that a backend building from the case's own network function needs not read them back from the bytes.
    model: DerivedModel
    # Told of the builder's phases where the library reports them (TensorRT's IProgressMonitor); not part
    # of what the engine is built from, so never compared or hashed.
    progress: BuildProgress | None = field(default=None, compare=False)

    @property
    def model_bytes(self) -> bytes:
        return self.model.model_bytes


class BuildProgress(Protocol):
    """A listener to one build's phases, as TensorRT's IProgressMonitor reports them."""

    def phase_started(self, phase: str, parent: str | None, steps: int) -> None: ...

    def step_done(self, phase: str, step: int) -> None: ...

    def phase_finished(self, phase: str) -> None: ...


@dataclass(frozen=True)
class Artifact:
    """What a build produced: the bytes the engine cache keeps, and the builder's warnings about them."""

    data: bytes
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class BackendOptions:
    """Session-wide settings a backend may use; each backend ignores what does not apply to it. A plugin backend
    adds its own in a frozen dataclass subclass, named by its descriptor's `options_type`."""

    cache_dir: Path | None = None  # where a backend may persist its own caches (TensorRT's timing cache)
    include_copies: bool = False  # time host<->device copies with the work (default: compute only)
    cuda_graph: bool = False  # replay the work as a captured CUDA graph
    blocking_sync: bool = False  # the host sleeps on completion instead of spinning
    launches: int = 1  # launches per timed sample (batch mode, for throughput)
    weak_typing: bool = False  # TensorRT builder precision flags instead of a strongly typed network
    cpu_threads: int = 1  # intra-op threads of CPU backends; 0 = the library's default (all cores)


class Engine(Protocol):
    """A loaded artifact for one (case, precision, profile), ready to run."""

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run once and return every output as a host array, keyed by output name."""
        ...

    def timer(self, inputs: Mapping[str, np.ndarray]) -> Timer:
        """A callable that runs these inputs once and returns the duration on this backend's clock."""
        ...

    def host_timer(self, inputs: Mapping[str, np.ndarray]) -> Timer | None:
        """The latency a caller sees (enqueue to completion), where it differs from timer()'s clock."""
        ...

    def facts(self) -> Mapping[str, object]:
        """What the results should record about this engine (memory, timing mode, GPU clocks...)."""
        ...

    def layer_precisions(self) -> tuple[LayerPrecision, ...] | None:
        """The precision each engine layer computes in, from the backend's own layer report (TensorRT's
        engine inspector), or None where the backend has none: the proof behind a precision label."""
        ...

    def close(self) -> None:
        """Free what the engine holds (streams, buffers, events, graphs); idempotent. Called when the engine
        store releases it (the least recently used beyond its limit) and at session end."""
        ...


class LayerProfilingEngine(Engine, Protocol):
    """An engine of a backend whose descriptor says `profiles_layers`: it can time each of its layers."""

    def profile_layers(self, inputs: Mapping[str, np.ndarray], runs: int) -> LayerProfile:
        """`runs` profiled runs of these inputs, apart from any timed sample (a profiler slows what it
        watches), and each layer's median time with what the backend says of it (harness/profile.py)."""
        ...


class Backend(Protocol):
    """One inference library. Implementations live in harness/backends/<library>.py."""

    name: str  # full name, recorded with results, e.g. "onnxruntime"

    @property
    def clock(self) -> str:
        """What its timer measures, recorded with the latency stats."""
        ...

    def version(self) -> str: ...

    def device(self) -> str:
        """The device engines run on, e.g. a CPU model name or a GPU name."""
        ...

    def runtime_problem(self) -> str | None:
        """Why engines of this backend cannot run on this machine (a runtime that refuses this GPU), or
        None. Asked once per session, before the first engine is loaded; building may still work."""
        ...

    def unsupported_reason(self, case: Case, precision: Precision) -> str | None:
        """Why this backend cannot run a case at a precision (the test is skipped with it), or None."""
        ...

    def key_parts(self, request: BuildRequest) -> Mapping[str, str]:
        """Beyond model, precision and profile: what makes this backend's artifacts incompatible."""
        ...

    def build(self, request: BuildRequest) -> Artifact:
        """Build the artifact; raise harness.errors.BuildError with the backend's log on failure."""
        ...

    def load(self, artifact: bytes, request: BuildRequest) -> Engine:
        """Deserialize an artifact; raise ArtifactIncompatibleError if it cannot be used here."""
        ...


class ArtifactIncompatibleError(Exception):
    """A cached artifact cannot be loaded (foreign version, corrupted): rebuild it."""


class DeviceKind(str, Enum):
    """Where a backend's engines run: it decides the gate's default threshold and the `gpu` marker."""

    CPU = "cpu"
    GPU = "gpu"


@dataclass(frozen=True)
class BackendDescriptor:
    """Everything the harness knows about a backend without importing its library: the one place for
    a backend's identity. Results record it, so `compare` judges plugin backends like built-in ones."""

    factory: str  # "module:callable" taking BackendOptions, imported on first use: collection imports no library
    library: str  # the Python module it runs on; --baseline-from LIBRARY-VERSION means this backend
    device_kind: DeviceKind
    latency_threshold: float  # the slowdown that regresses, unless a case or the command line says otherwise
    install_hint: str  # the command that installs the library, quoted in every "not installed" message
    build_needs_gpu: bool  # False: engines build on a CPU-only machine (TensorRT for RTX's ahead-of-time mode)
    run_needs_gpu: bool  # its run tests carry the `gpu` marker
    agrees_with: str | None = None  # a backend whose outputs this one must match (test_agreement)
    default_on: DeviceKind | None = None  # selected when --backend is not given: without --gpu (CPU) or with it
    # The oldest ONNX opset it runs: older models are upgraded to it (harness/precision/opset.py); 1 = any.
    min_opset: int = 1
    # Builds from the case's define_network, not from the derived ONNX model: what only the derivation does
    # (keeping nodes in float32) does not reach it, so such points are skipped.
    builds_from_code: bool = False
    # Builds any ONNX model in the model's own types (a strongly typed network), so localization may build the
    # point's model with every tensor marked as an output on this backend; not under weak typing
    # (BackendOptions.weak_typing), where builder flags, not the model, set the precision. False: localized on
    # ONNX Runtime.
    builds_exposed_onnx: bool = False
    # What its factory is given: a frozen dataclass subclass of BackendOptions whose added fields, each with a
    # default, are the backend's own options, set with --backend-option NAME=VALUE or a NAME=VALUE line of the
    # ini key harness_backend_options (README, Adding a backend).
    options_type: type[BackendOptions] = BackendOptions
    # Its engines are LayerProfilingEngines: per-layer times are recorded after each latency measurement
    # (harness/profile.py), unless --no-harness-profile.
    profiles_layers: bool = False

    def own_options(self) -> tuple[str, ...]:
        """The names of the options the backend adds to BackendOptions."""
        common = {option.name for option in fields(BackendOptions)}
        return tuple(option.name for option in fields(self.options_type) if option.name not in common)

    def options(self, common: BackendOptions, own: Mapping[str, str]) -> BackendOptions:
        """The options its factory is given: the session's common ones, and those of `own` (NAME -> VALUE as
        written) that it declares, converted to their field's type; BackendOptionError for a value that is not."""
        types = get_type_hints(self.options_type)
        # Any: each value is of its field's type, as _option_value converted it; mypy cannot see that per name.
        values: dict[str, Any] = {
            name: _option_value(name, own[name], types[name]) for name in self.own_options() if name in own
        }
        return self.options_type(**asdict(common), **values)

    def facts(self) -> dict[str, object]:
        """What the results file records about the backend, for readers that have no registry."""
        return {
            "library": self.library,
            "device_kind": self.device_kind.value,
            "default_latency_threshold": self.latency_threshold,
        }


def _tensorrt_family(
    factory: str,
    library: str,
    install_hint: str,
    *,
    builds_without_gpu: bool,
    network_api: bool,
    agrees_with: str | None = None,
    default_on: DeviceKind | None = None,
) -> BackendDescriptor:
    """A backend of harness/backends/trt.py: its engines run on a GPU, are gated at 5 % and profile their layers.
    Its network-API workflow builds from code; its ONNX parser workflow builds a strongly typed network from any
    ONNX model."""
    return BackendDescriptor(
        f"harness.backends.trt:{factory}",
        library=library,
        device_kind=DeviceKind.GPU,
        latency_threshold=0.05,
        install_hint=install_hint,
        build_needs_gpu=not builds_without_gpu,
        run_needs_gpu=True,
        agrees_with=agrees_with,
        default_on=default_on,
        min_opset=9,  # the ONNX parser's backward support, TensorRT 10 and 11 alike (NVIDIA's opset guide)
        builds_from_code=network_api,
        builds_exposed_onnx=not network_api,
        profiles_layers=True,  # TensorRTEngine.profile_layers: IProfiler joined with the engine inspector
    )


_TENSORRT_HINT = "pip install 'trt-harness[gpu]' (TensorRT's builder needs NVIDIA's package index and a GPU machine)"
_RTX_HINT = "pip install 'trt-harness[rtx]'"

# Keyed by short id, the name used in test ids and on the command line. More come from the
# pytest_harness_backends hook (harness/hookspecs.py).
BUILTIN_BACKENDS: Mapping[str, BackendDescriptor] = {
    "ort": BackendDescriptor(
        "harness.backends.ort:OnnxRuntimeBackend",
        library="onnxruntime",
        device_kind=DeviceKind.CPU,
        latency_threshold=0.10,  # a shared CPU is noisier than a GPU
        install_hint="pip install trt-harness",
        build_needs_gpu=False,
        run_needs_gpu=False,
        default_on=DeviceKind.CPU,
        min_opset=7,  # "ONNX Runtime only *guarantees* support for models stamped with opset version 7 or above"
        profiles_layers=True,  # through its own profiler (harness/backends/ort.py, OnnxRuntimeEngine.profile_layers)
    ),
    # --gpu selects TensorRT's own two workflows; TensorRT for RTX runs only where asked for.
    "trt": _tensorrt_family(
        "onnx_parser_backend",
        "tensorrt",
        _TENSORRT_HINT,
        builds_without_gpu=False,
        network_api=False,
        default_on=DeviceKind.GPU,
    ),
    "trt-net": _tensorrt_family(
        "network_api_backend",
        "tensorrt",
        _TENSORRT_HINT,
        builds_without_gpu=False,
        network_api=True,
        agrees_with="trt",
        default_on=DeviceKind.GPU,
    ),
    "rtx": _tensorrt_family(
        "rtx_onnx_parser_backend", "tensorrt_rtx", _RTX_HINT, builds_without_gpu=True, network_api=False
    ),
    "rtx-net": _tensorrt_family(
        "rtx_network_api_backend",
        "tensorrt_rtx",
        _RTX_HINT,
        builds_without_gpu=True,
        network_api=True,
        agrees_with="rtx",
    ),
}


class Registry:
    """The backends of a session: the built-in ones, overridden or extended by plugins."""

    def __init__(self, extra: Mapping[str, BackendDescriptor] | None = None) -> None:
        for short_id, descriptor in (extra or {}).items():
            _check_descriptor(short_id, descriptor)
        self._entries = {**BUILTIN_BACKENDS, **(extra or {})}

    def known(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def defaults(self, kind: DeviceKind) -> tuple[str, ...]:
        """The backends a session selects when --backend is not given."""
        return tuple(short_id for short_id, descriptor in self._entries.items() if descriptor.default_on is kind)

    def descriptor(self, short_id: str) -> BackendDescriptor:
        try:
            return self._entries[short_id]
        except KeyError:
            raise SelectionError(f"unknown backend '{short_id}'; known backends: {', '.join(self._entries)}") from None

    def load(self, short_id: str, options: BackendOptions, own: Mapping[str, str] | None = None) -> Backend:
        """Instantiate a backend with the common options and its own from `own`; ImportError if its library is not
        installed."""
        descriptor = self.descriptor(short_id)
        module_name, factory = descriptor.factory.split(":")
        module = importlib.import_module(module_name)
        if not hasattr(module, factory):
            raise ImportError(f"{module_name} has no {factory!r}, the factory backend '{short_id}' names")
        backend: Backend = getattr(module, factory)(descriptor.options(options, own or {}))
        return backend


class BackendDescriptorError(HarnessError):
    """A plugin registered a backend the harness cannot use; the message names it and the fix."""


class BackendOptionError(HarnessError):
    """A backend's own option has a value its type refuses; the message names the option and the type."""


def _switch(text: str) -> bool:
    meaning = switch_value(text)
    if meaning is None:
        raise ValueError(text)
    return meaning


# The types a backend's own option may have: how a message names each, and what converts the text of
# --backend-option NAME=VALUE to it.
_OPTION_TYPES: Mapping[object, tuple[str, Callable[[str], object]]] = {
    str: ("text", str),
    int: ("a whole number", int),
    float: ("a number", float),
    Path: ("a path", Path),
    bool: ("yes or no", _switch),
}


def _option_value(name: str, text: str, kind: object) -> object:
    what, convert = _OPTION_TYPES[kind]  # the descriptor's check let no other type through
    try:
        return convert(text)
    except ValueError:
        raise BackendOptionError(f"--backend-option {name} takes {what}, got {text!r}") from None


def _check_descriptor(short_id: str, descriptor: object) -> None:
    fix = "return harness.backends.BackendDescriptor(...) from pytest_harness_backends (README, Adding a backend)"
    if not isinstance(descriptor, BackendDescriptor):
        raise BackendDescriptorError(f"backend '{short_id}' is a {type(descriptor).__name__}, not a descriptor: {fix}")
    options_problem = _options_type_problem(descriptor.options_type)
    if options_problem:
        raise BackendDescriptorError(f"backend '{short_id}': options_type {options_problem}; {fix}")
    module_name, colon, factory = descriptor.factory.partition(":")
    if not (colon and module_name and factory.isidentifier()):
        raise BackendDescriptorError(
            f"backend '{short_id}': factory {descriptor.factory!r} is not 'module:callable'; {fix}"
        )


def _options_type_problem(options_type: type[BackendOptions]) -> str | None:
    """Why an options type cannot carry a backend's own options, or None."""
    if not (isinstance(options_type, type) and issubclass(options_type, BackendOptions) and is_dataclass(options_type)):
        return "must be a dataclass subclass of harness.backends.BackendOptions"
    types = get_type_hints(options_type)
    common = {option.name for option in fields(BackendOptions)}
    for option in fields(options_type):
        if option.name in common:
            continue
        if types[option.name] not in _OPTION_TYPES:
            return f"field {option.name!r} must be a str, int, float, bool or Path (set from --backend-option text)"
        if option.default is MISSING and option.default_factory is MISSING:
            return f"field {option.name!r} needs a default (the value without --backend-option)"
    return None
