"""The CUDA runtime through cuda-python. The only module that calls cuda-python."""

from __future__ import annotations

from types import ModuleType


def _runtime() -> ModuleType:
    """cuda-python's runtime bindings: `cuda.bindings.runtime` (12.6+), else the older `cuda.cudart`."""
    try:
        from cuda.bindings import runtime
    except ImportError:
        from cuda import cudart as runtime
    module: ModuleType = runtime
    return module


def gpu_problem() -> str | None:
    """Why no CUDA GPU can be used here, or None when one can."""
    try:
        runtime = _runtime()
    except ImportError:
        return "cuda-python is not installed; install it with: pip install 'trt-harness[gpu]'"
    error, count = runtime.cudaGetDeviceCount()
    if error != runtime.cudaError_t.cudaSuccess or count == 0:
        return f"no usable CUDA GPU: cudaGetDeviceCount returned {error.name} with {count} devices"
    return None
