"""ONNX Runtime on the CPU: the backend that runs anywhere. The only module that imports onnxruntime.

The cached artifact is the model as ONNX Runtime optimized it (graph optimization level ALL, saved
through `optimized_model_filepath`). Level ALL may rewrite the graph into CPU-specific layouts
(NCHWc for the ISA found), so the CPU model and ISA flags are part of the cache key. Loading an
artifact runs no graph optimization: a warm cache builds nothing.

A Q/DQ (int8) model is built with ONNX Runtime's Q/DQ fusion off (`session.disable_quant_qdq`). With it on,
ONNX Runtime fuses DequantizeLinear → Conv → QuantizeLinear into its own int8 kernels, whose arithmetic depends on
the CPU: without VNNI (AVX2 alone, e.g. AMD Zen 3) they sum u8×s8 pairs in 16 bits and saturate, so the same
model was 0.15–0.38 off on one machine and within 0.06 on another; TensorRT multiplies int8 values and
accumulates in 32 bits. With it off, each layer computes in float32 on the dequantized int8 values with the
model's scales (the weights' dequantization folded once, at build) — int8 products, no saturation, what TensorRT
computes, the same on every CPU up to float32 rounding. One session serves accuracy and latency: with TensorRT's
Q/DQ placement (compute-layer outputs float, harness/precision/quantize.py) ONNX Runtime would fuse nothing anyway,
and the fusion-on session dequantized every weight at every run (mnist int8 20x slower, its latency unstable).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from harness.atomic import scratch_folder
from harness.backends import Artifact, ArtifactIncompatibleError, BackendOptions, BuildRequest
from harness.backends.ort_profile import layer_profile, read_trace
from harness.case import Case, Precision
from harness.environment import cpu_flags, cpu_model
from harness.errors import BuildError
from harness.measure import Timer
from harness.precision.table import row
from harness.profile import LayerProfile

_PROVIDERS = ["CPUExecutionProvider"]
_QDQ_OPS = frozenset({"QuantizeLinear", "DequantizeLinear"})
# The compute types (a precision row's compute_dtype) whose kernels the CPU provider has for the common operators.
_KERNEL_DTYPES = frozenset({"float32", "float16"})
# The session config entry that keeps Q/DQ as written (module docstring), and what the results say of it.
_QDQ_FUSION_OFF = "session.disable_quant_qdq"
_EXACT_INT8 = (
    "Q/DQ fusion off (session.disable_quant_qdq = 1), for accuracy and latency alike: each layer in float32 on the "
    "dequantized int8 values with the model's scales, int8 products accumulated without saturation, as TensorRT "
    "computes; the same on every CPU. ONNX Runtime's own int8 kernels are not used (they saturate without VNNI)"
)


# Runs a profiled session makes before those it keeps: its first run allocates its buffers and is several times
# slower than the next (a conv 343 µs, then 95 µs, onnxruntime 1.32).
_PROFILE_WARMUP_RUNS = 1


@dataclass(frozen=True)
class ProfiledModel:
    """What a profiled session of an engine is made of: the engine's optimized model (its artifact), the options it
    was loaded with, and the model before optimization, whose node names say what a fused node computes."""

    artifact: bytes
    original: bytes
    options: Callable[[], ort.SessionOptions]


class OnnxRuntimeEngine:
    def __init__(
        self, session: ort.InferenceSession, quantized: bool = False, profiled: ProfiledModel | None = None
    ) -> None:
        self._session: ort.InferenceSession | None = session
        self._quantized = quantized  # a Q/DQ model, built with the fusion off
        self._output_names = [output.name for output in session.get_outputs()]
        self._profiled = profiled

    @property
    def session(self) -> ort.InferenceSession:
        if self._session is None:
            raise RuntimeError("this ONNX Runtime engine was closed")
        return self._session

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        results = self.session.run(self._output_names, dict(inputs))
        return dict(zip(self._output_names, results))

    def layer_precisions(self) -> None:
        """ONNX Runtime has no layer report: the proof reads the ONNX model it was given (harness/precision/proof.py)."""
        return

    def close(self) -> None:
        self._session = None  # the session's memory and thread pool go with the last reference

    def profile_layers(self, inputs: Mapping[str, np.ndarray], runs: int) -> LayerProfile:
        """`runs` runs of a separate session of the same optimized model with ONNX Runtime's profiler on (the
        engine's own session is never profiled: the profiler slows every run it watches), read as a LayerProfile."""
        if self._profiled is None:  # an engine a plugin made of a bare session (OnnxRuntimeEngine(session))
            raise RuntimeError(
                "this ONNX Runtime engine was made without its model (OnnxRuntimeEngine(session)): it cannot be "
                "profiled; pass profiled=ProfiledModel(...) as OnnxRuntimeBackend.load does, or --no-harness-profile"
            )
        feeds = dict(inputs)
        with scratch_folder("ort-profile") as scratch:
            options = self._profiled.options()
            options.enable_profiling = True
            options.profile_file_prefix = str(Path(scratch) / "profile")
            session = ort.InferenceSession(self._profiled.artifact, options, providers=_PROVIDERS)
            for _ in range(_PROFILE_WARMUP_RUNS + runs):
                session.run(self._output_names, feeds)
            events = read_trace(Path(session.end_profiling()))
        return layer_profile(events, self._profiled.artifact, self._profiled.original, _PROFILE_WARMUP_RUNS)

    def timer(self, inputs: Mapping[str, np.ndarray]) -> Timer:
        feeds = dict(inputs)
        run = self.session.run
        names = self._output_names

        def run_once() -> float:
            # ONNX Runtime's CPU run is synchronous: the host clock around it is the engine's latency.
            start = time.perf_counter()
            run(names, feeds)
            return time.perf_counter() - start

        return run_once

    def host_timer(self, inputs: Mapping[str, np.ndarray]) -> None:
        return None  # timer() already is the host latency a caller sees

    def facts(self) -> Mapping[str, object]:
        threads = self.session.get_session_options().intra_op_num_threads
        facts: dict[str, object] = {
            "graph_optimization": "all (in the cached artifact)",
            "providers": _PROVIDERS,
            "timing": {"intra_op_threads": threads},  # what conditions a latency: the gate compares it
        }
        if self._quantized:
            facts["int8"] = _EXACT_INT8
        return facts


class OnnxRuntimeBackend:
    name = "onnxruntime"
    clock = "host perf_counter around a synchronous InferenceSession.run"

    def __init__(self, options: BackendOptions) -> None:
        # One intra-op thread by default: with more, latency depends on whether another core happens to
        # be free, and on a shared 2-core machine it jumps 1.5-2x between measurements seconds apart.
        self.threads = options.cpu_threads

    def version(self) -> str:
        return str(ort.__version__)

    def device(self) -> str:
        return cpu_model()

    def runtime_problem(self) -> str | None:
        return None  # the CPU provider runs wherever the wheel installs

    def unsupported_reason(self, case: Case, precision: Precision) -> str | None:
        needs = row(precision)
        if needs.builder_flags:
            return (
                f"{precision.value} is a TensorRT builder mode for tensor cores; ONNX Runtime's CPU provider has no "
                "such mode"
            )
        if needs.compute_dtype not in _KERNEL_DTYPES:
            # onnxruntime 1.32: "NOT_IMPLEMENTED : Could not find an implementation for Conv(22)"; building the
            # point anyway would either fail or, where a kernel exists, upcast silently: neither is bf16.
            return (
                f"ONNX Runtime's CPU provider has no {needs.compute_dtype} kernels for most operators (Conv, Gemm, "
                "MatMul among them)"
            )
        return None

    def key_parts(self, request: BuildRequest) -> Mapping[str, str]:
        # qdq: artifacts built with the Q/DQ fusion on (before it was turned off) must never be found again.
        return {"providers": ",".join(_PROVIDERS), "cpu": cpu_model(), "isa": cpu_flags(), "qdq": "fusion off"}

    def build(self, request: BuildRequest) -> Artifact:
        with scratch_folder("ort") as scratch:
            optimized = Path(scratch) / "optimized.onnx"
            options = self._options(quantized=has_qdq(request.model_bytes))
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            options.optimized_model_filepath = str(optimized)
            try:
                ort.InferenceSession(request.model_bytes, options, providers=_PROVIDERS)
            except Exception as error:  # ORT raises its own Fail/InvalidGraph/NotImplemented types
                raise BuildError(
                    request.case.name,
                    f"ONNX Runtime could not build the {request.precision.value} model: {error}; "
                    "fix the case's ONNX model (run onnx.checker.check_model on it) or skip this precision",
                ) from error
            return Artifact(optimized.read_bytes())

    def load(self, artifact: bytes, request: BuildRequest) -> OnnxRuntimeEngine:
        quantized = has_qdq(request.model_bytes)

        def loading_options() -> ort.SessionOptions:
            options = self._options(quantized=quantized)
            # The artifact is already optimized; optimizing again would be a second build.
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            return options

        try:
            session = ort.InferenceSession(artifact, loading_options(), providers=_PROVIDERS)
        except Exception as error:
            raise ArtifactIncompatibleError(f"ONNX Runtime cannot load the cached model: {error}") from error
        return OnnxRuntimeEngine(session, quantized, ProfiledModel(artifact, request.model_bytes, loading_options))

    def exact_int8_session(self, model_bytes: bytes) -> ort.InferenceSession:
        """A session of a Q/DQ model that computes what TensorRT computes, whatever the CPU (module docstring), as
        the engines of this backend do; for a float model an ordinary session."""
        return ort.InferenceSession(model_bytes, self._options(quantized=True), providers=_PROVIDERS)

    def _options(self, *, quantized: bool = False) -> ort.SessionOptions:
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        if quantized:
            options.add_session_config_entry(_QDQ_FUSION_OFF, "1")
        return options


def has_qdq(model_bytes: bytes) -> bool:
    """Whether the model quantizes anything (QuantizeLinear / DequantizeLinear nodes in its main graph)."""
    import onnx

    return any(node.op_type in _QDQ_OPS for node in onnx.load_from_string(model_bytes).graph.node)
