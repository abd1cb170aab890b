"""A strict numpy double of the `tensorrt` Python module, for running the TensorRT adapter without TensorRT.

make_tensorrt("10.16" | "11.4" | "10.13", memory) returns a module named "tensorrt" that imitates that
version and exposes only names of its real API snapshot (tests/trt_api/, strict.py): classes, enums,
functions and the module-level DataType aliases (trt.float32, trt.bfloat16, ...). Its
__version__ is the real version plus "+numpy-double", so nothing it produces can pass for
TensorRT's. Engines run on the host in numpy (layers.py has the numerics) and move data through
`memory`, the CUDA module in use (tests/cuda_host.py, or harness.backends.cuda_rt on a GPU).

Layout: strict.py (snapshots, strictness, access records), layers.py (per-layer shapes, types,
values), graph.py (the network as data, the executor), network.py (network-definition API),
onnx_import.py (OnnxParser), builder.py (Builder, config, profiles, timing cache), plan.py (plan and
timing-cache formats), runtime.py (Runtime, engine, execution context), inspector.py (EngineInspector:
per-layer JSON at the build's ProfilingVerbosity), profiler.py (IProfiler, tactics, the modelled layer
times it reports), log.py (ILogger, Logger).

Private module attributes for tests: `_accessed`, the set of public (class or enum, member) names that
code outside this package touched, and `_faults` (strict.Faults: injected failures, and the slower tactic).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterable
from types import ModuleType
from typing import Any

from . import builder, inspector, log, network, onnx_import, profiler, runtime, strict
from .layers import NUMPY_TYPES

# Implemented classes, parents before children (a specialized class derives from its parents').
IMPLEMENTED: tuple[type, ...] = (
    log.ILogger,
    log.Logger,
    network.Dims,
    network.Permutation,
    network.Weights,
    network.ITensor,
    network.ILayer,
    network.IIdentityLayer,
    network.ICastLayer,
    network.IConvolutionLayer,
    network.IElementWiseLayer,
    network.IActivationLayer,
    network.IPoolingLayer,
    network.IShuffleLayer,
    network.IConstantLayer,
    network.IMatrixMultiplyLayer,
    network.ISoftMaxLayer,
    network.ITopKLayer,
    network.IReduceLayer,
    network.IQuantizeLayer,
    network.IDequantizeLayer,
    network.INetworkDefinition,
    onnx_import.ParserError,
    onnx_import.OnnxParser,
    builder.IHostMemory,
    builder.ITimingCache,
    builder.IOptimizationProfile,
    builder.IProgressMonitor,
    builder.IBuilderConfig,
    builder.Builder,
    runtime.Runtime,
    profiler.IProfiler,
    runtime.ICudaEngine,
    runtime.IExecutionContext,
    inspector.EngineInspector,
)


def make_tensorrt(version: str, memory: object) -> ModuleType:
    """A fresh double of TensorRT `version` ("10.13", "10.16" or "11.4") moving data through `memory`."""
    snapshot = strict.load_snapshot(version)
    api = strict.Api(snapshot, memory)
    for name, members in snapshot.enums.items():
        api.enums[name] = strict.make_enum(api, name, members, strict.KNOWN_VALUES.get(name, {}), record=True)
    api.severity = strict.make_enum(
        api, "ILogger.Severity", tuple(strict.SEVERITY_VALUES), strict.SEVERITY_VALUES, record=False
    )
    severity_names = {"Severity": api.severity, **{member.name: member for member in api.severity}}
    for impl in IMPLEMENTED:
        strict.specialize(api, impl, severity_names if impl is log.ILogger else None)
    for name in snapshot.classes:
        if name not in api.classes:
            strict.stub_class(api, name)
    functions = {name: strict.stub_function(name) for name in snapshot.functions}
    functions.update(nptype=functools.partial(_nptype, api), volume=_volume)

    module = ModuleType("tensorrt", __doc__)
    # Module-level aliases of enum members, as the snapshot lists them: trt.float32 is trt.DataType.FLOAT.
    attributes = {name: api.enums[owner][member] for name, (owner, member) in snapshot.attributes.items()}
    module.__dict__.update(
        {
            **{name: api.classes[name] for name in snapshot.classes},
            **api.enums,
            **functions,
            **attributes,
            "__version__": f"{snapshot.version}+numpy-double",
            "__getattr__": strict.module_getattr(api),
            "_accessed": api.accessed,
            "_faults": api.faults,
        }
    )
    return module


def _nptype(api: strict.Api, trt_type: Any) -> type:
    """trt.nptype: the numpy type of a DataType, TypeError for one numpy has no type for."""
    name = api.name_of("DataType", trt_type)
    if name not in NUMPY_TYPES:
        raise TypeError("Could not resolve TensorRT datatype to an equivalent numpy datatype.")
    return NUMPY_TYPES[name]


def _volume(iterable: Iterable[int]) -> int:
    """trt.volume: the product of a shape's dimensions."""
    return functools.reduce(operator.mul, iterable, 1)


def absent_from(accessed: Iterable[tuple[str, str]], version: str) -> list[str]:
    """The recorded names ("Owner.member") that TensorRT `version` does not have, sorted."""
    snapshot = strict.load_snapshot(version)
    return sorted({f"{owner}.{name}" for owner, name in accessed if not snapshot.has(owner, name)})


__all__ = ["absent_from", "make_tensorrt"]
