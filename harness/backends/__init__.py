"""The backend interface and the registry of backends.

A backend turns a case's ONNX model into an artifact (bytes the engine cache can keep on disk) and
loads an artifact into an `Engine` that runs inputs and times itself. Backend modules are the only
places that import an inference library; this module imports none and loads them on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from harness.errors import SelectionError

if TYPE_CHECKING:
    from harness.case import Case, Precision
    from harness.measure import Timer


@dataclass(frozen=True)
class BuildRequest:
    """Everything a backend may use to build one engine."""

    case: Case
    precision: Precision
    profile_index: int
    model_bytes: bytes  # the case's ONNX model at the precision's compute dtype


@dataclass(frozen=True)
class BackendOptions:
    """Session-wide settings a backend may use; each backend ignores what does not apply to it."""

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

    def unsupported_reason(self, case: Case, precision: Precision) -> str | None:
        """Why this backend cannot run a case at a precision (the test is skipped with it), or None."""
        ...

    def key_parts(self, request: BuildRequest) -> Mapping[str, str]:
        """Beyond model, precision and profile: what makes this backend's artifacts incompatible."""
        ...

    def build(self, request: BuildRequest) -> bytes:
        """Build the artifact; raise harness.errors.BuildError with the backend's log on failure."""
        ...

    def load(self, artifact: bytes, request: BuildRequest) -> Engine:
        """Deserialize an artifact; raise ArtifactIncompatibleError if it cannot be used here."""
        ...


class ArtifactIncompatibleError(Exception):
    """A cached artifact cannot be loaded (foreign version, corrupted): rebuild it."""


@dataclass(frozen=True)
class RegistryEntry:
    factory: str  # "module:callable" taking BackendOptions, imported on first use: collection imports no library
    needs_gpu: bool  # known without importing, so collection can mark tests `gpu`
    agrees_with: str | None = None  # a backend whose outputs this one must match (test_agreement)


# Keyed by short id, the name used in test ids and on the command line. More come from the
# pytest_harness_backends hook (harness/hookspecs.py).
BUILTIN_BACKENDS: Mapping[str, RegistryEntry] = {
    "ort": RegistryEntry("harness.backends.ort:OnnxRuntimeBackend", needs_gpu=False),
    "trt": RegistryEntry("harness.backends.trt:onnx_parser_backend", needs_gpu=True),
    "trt-net": RegistryEntry("harness.backends.trt:network_api_backend", needs_gpu=True, agrees_with="trt"),
}


class Registry:
    """The backends of a session: the built-in ones, overridden or extended by plugins."""

    def __init__(self, extra: Mapping[str, RegistryEntry] | None = None) -> None:
        self._entries = {**BUILTIN_BACKENDS, **(extra or {})}

    def known(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def entry(self, short_id: str) -> RegistryEntry:
        try:
            return self._entries[short_id]
        except KeyError:
            raise SelectionError(f"unknown backend '{short_id}'; known backends: {', '.join(self._entries)}") from None

    def load(self, short_id: str, options: BackendOptions) -> Backend:
        """Instantiate a backend; ImportError if its library is not installed."""
        module_name, factory = self.entry(short_id).factory.split(":")
        backend: Backend = getattr(importlib.import_module(module_name), factory)(options)
        return backend
