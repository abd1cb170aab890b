"""The backend interface and the registry of backends.

A backend turns a case's ONNX model into an artifact (bytes the engine cache can keep on disk) and
loads an artifact into an `Engine` that runs inputs and times itself. Backend modules are the only
places that import an inference library; this module imports none and loads them on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
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


class Engine(Protocol):
    """A loaded artifact for one (case, precision, profile), ready to run."""

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run once and return every output as a host array, keyed by output name."""
        ...

    def timer(self, inputs: Mapping[str, np.ndarray]) -> Timer:
        """A callable that runs these inputs once and returns the duration on this backend's clock."""
        ...


class Backend(Protocol):
    """One inference library. Implementations live in harness/backends/<library>.py."""

    name: str  # full name, recorded with results, e.g. "onnxruntime"
    clock: str  # what its timer measures, recorded with the latency stats

    def version(self) -> str: ...

    def device(self) -> str:
        """The device engines run on, e.g. a CPU model name or a GPU name."""
        ...

    def unsupported_reason(self, precision: Precision) -> str | None:
        """Why this backend cannot run a precision (the test is skipped with it), or None."""
        ...

    def key_parts(self) -> Mapping[str, str]:
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
    target: str  # "module:class", imported on first use so that collection never imports a library
    needs_gpu: bool  # known without importing, so collection can mark tests `gpu`


# Keyed by short id, the name used in test ids and on the command line.
_REGISTRY: Mapping[str, RegistryEntry] = {
    "ort": RegistryEntry("harness.backends.ort:OnnxRuntimeBackend", needs_gpu=False),
}


def known_backends() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def registry_entry(short_id: str) -> RegistryEntry:
    try:
        return _REGISTRY[short_id]
    except KeyError:
        raise SelectionError(f"unknown backend '{short_id}'; known backends: {', '.join(known_backends())}") from None


def load_backend(short_id: str) -> Backend:
    """Instantiate a backend by its short id; ImportError if its library is not installed."""
    module_name, class_name = registry_entry(short_id).target.split(":")
    backend: Backend = getattr(importlib.import_module(module_name), class_name)()
    return backend
