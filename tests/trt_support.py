"""Runs the real TensorRT adapter (harness/backends/trt.py) on the strict double, or on TensorRT for RTX.

The adapter takes the library module it builds with, so the double is handed to it directly and
never enters sys.modules. CUDA is the host-memory stand-in (tests/cuda_host.py) on machines without
a GPU, or the real cuda-python module when HARNESS_TEST_CUDA=real (the H200 runs). Results from
the double carry its version ("…+numpy-double") and are never TensorRT results.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from types import ModuleType

from harness.backends import BUILTIN_BACKENDS, BackendOptions
from harness.backends.trt import TensorRTBackend

DOUBLE_VERSIONS = ("10.16", "11.4")
RTX_MISSING = "TensorRT for RTX is not installed: pip install 'trt-harness[rtx]'"


def cuda_module() -> ModuleType:
    """The CUDA layer the adapter and the double share: real cuda-python or the host stand-in."""
    if os.environ.get("HARNESS_TEST_CUDA", "host") == "real":
        from harness.backends import cuda_rt

        return cuda_rt
    from tests import cuda_host

    return cuda_host


def double_library(version: str) -> ModuleType:
    """A fresh double of TensorRT `version`, moving data through this machine's CUDA layer."""
    from tests.trt_double import make_tensorrt

    return make_tensorrt(version, cuda_module())


def is_double(library: ModuleType) -> bool:
    return str(library.__version__).endswith("+numpy-double")


def rtx_library() -> ModuleType | None:
    """The real `tensorrt_rtx` module, None where the `rtx` extra is not installed."""
    try:
        return importlib.import_module("tensorrt_rtx")
    except ImportError:
        return None


def adapter_backend(library: ModuleType, workflow: str = "onnx-parser", **options: object) -> TensorRTBackend:
    """The adapter bound to `library`: the double with this machine's CUDA layer, a real library with cuda_rt."""
    from harness.backends import cuda_rt

    cuda = cuda_module() if is_double(library) else cuda_rt
    return TensorRTBackend(BackendOptions(**options), library=library, workflow=workflow, cuda=cuda)  # type: ignore[arg-type]


def double_backend(options: BackendOptions, workflow: str) -> TensorRTBackend:
    """A TensorRT backend on the double named by HARNESS_TEST_TRT_DOUBLE (default 10.16)."""
    library = double_library(os.environ.get("HARNESS_TEST_TRT_DOUBLE", DOUBLE_VERSIONS[0]))
    return TensorRTBackend(options, library=library, workflow=workflow, cuda=cuda_module())


# What TensorRT for RTX's runtime said on the H200 (issue 8): the double says it when told to refuse.
REFUSED_GPU = (
    "The engine cannot run on this GPU, which has compute capability 9.0. "
    "Supported compute capabilities: 8.0 8.6 8.9 12.0 12.1 >12.0."
)


def refusing_runtime_on_double(options: BackendOptions) -> TensorRTBackend:
    """The double as a library whose runtime refuses this GPU while its builder works (RTX on an H200).
    Counts runtime probes in HARNESS_TEST_PROBES (a file path), to prove the decision is made once."""
    backend = double_backend(options, "onnx-parser")
    backend.trt._faults.runtime_refuses = REFUSED_GPU
    probes = os.environ.get("HARNESS_TEST_PROBES")
    if probes:
        ask = backend.runtime_problem

        def counted() -> str | None:
            with open(probes, "a") as log:
                log.write("probe\n")
            return ask()

        backend.runtime_problem = counted  # type: ignore[method-assign]
    return backend


def onnx_parser_on_double(options: BackendOptions) -> TensorRTBackend:
    return double_backend(options, "onnx-parser")


def network_api_on_double(options: BackendOptions) -> TensorRTBackend:
    return double_backend(options, "network-api")


# For a conftest's pytest_harness_backends hook: the matrix on the double, without a GPU. The
# descriptors are the built-in ones but for the factory and the GPU needs: the double runs anywhere.
DOUBLE_BACKENDS = {
    short_id: dataclasses.replace(
        BUILTIN_BACKENDS[short_id],
        factory=f"tests.trt_support:{factory}",
        build_needs_gpu=False,
        run_needs_gpu=False,
    )
    for short_id, factory in (("trt", "onnx_parser_on_double"), ("trt-net", "network_api_on_double"))
}
