"""Runs the real TensorRT adapter (harness/backends/trt.py) on the strict double.

Only the `tensorrt` library is replaced. CUDA is the host-memory stand-in (tests/cuda_host.py) on
machines without a GPU, or the real cuda-python module when HARNESS_TEST_CUDA=real (the H200 runs).
Results from here carry the double's version ("…+numpy-double") and are never TensorRT results.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import sys
from pathlib import Path
from types import ModuleType

from harness.backends import BackendOptions, RegistryEntry

DOUBLE_VERSIONS = ("10.16", "11.4")


def cuda_module() -> ModuleType:
    """The CUDA layer the adapter and the double share: real cuda-python or the host stand-in."""
    if os.environ.get("HARNESS_TEST_CUDA", "host") == "real":
        from harness.backends import cuda_rt

        return cuda_rt
    from tests import cuda_host

    return cuda_host


ADAPTER = Path(__file__).resolve().parents[1] / "harness" / "backends" / "trt.py"
_copies = itertools.count()


def adapter_on_double(version: str) -> ModuleType:
    """A private copy of harness/backends/trt.py bound to a fresh double of TensorRT `version`
    (its `trt` global). `tensorrt` is swapped in sys.modules only while the copy is imported, so no
    other code ever sees the double."""
    from tests.trt_double import make_tensorrt

    name = f"harness_trt_on_double_{version.replace('.', '_')}_{next(_copies)}"
    spec = importlib.util.spec_from_file_location(name, ADAPTER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is created
    saved = sys.modules.get("tensorrt")
    sys.modules["tensorrt"] = make_tensorrt(version, cuda_module())
    try:
        spec.loader.exec_module(module)
    finally:
        if saved is None:
            del sys.modules["tensorrt"]
        else:
            sys.modules["tensorrt"] = saved
    return module


def double_backend(options: BackendOptions, workflow: str) -> object:
    """A TensorRT backend on the double named by HARNESS_TEST_TRT_DOUBLE (default 10.16)."""
    adapter = adapter_on_double(os.environ.get("HARNESS_TEST_TRT_DOUBLE", DOUBLE_VERSIONS[0]))
    return adapter.TensorRTBackend(options, workflow=workflow, cuda=cuda_module())


def onnx_parser_on_double(options: BackendOptions) -> object:
    return double_backend(options, "onnx-parser")


def network_api_on_double(options: BackendOptions) -> object:
    return double_backend(options, "network-api")


# For a conftest's pytest_harness_backends hook: the matrix on the double, without a GPU.
DOUBLE_BACKENDS = {
    "trt": RegistryEntry("tests.trt_support:onnx_parser_on_double", needs_gpu=False),
    "trt-net": RegistryEntry("tests.trt_support:network_api_on_double", needs_gpu=False, agrees_with="trt"),
}
