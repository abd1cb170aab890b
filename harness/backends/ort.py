"""ONNX Runtime on the CPU: the backend that runs anywhere. The only module that imports onnxruntime.

The cached artifact is the model as ONNX Runtime optimized it (graph optimization level ALL, saved
through `optimized_model_filepath`). Level ALL may rewrite the graph into CPU-specific layouts
(NCHWc for the ISA found), so the CPU model and ISA flags are part of the cache key. Loading an
artifact runs no graph optimization: a warm cache builds nothing.

A Q/DQ (int8) model runs in two sessions. ONNX Runtime fuses DequantizeLinear → Conv → QuantizeLinear into
its own int8 kernels, whose arithmetic depends on the CPU: without VNNI (AVX2 alone, e.g. AMD Zen 3) they sum
u8×s8 pairs in 16 bits and saturate, so the same model is 0.15–0.38 off on one machine and within 0.06 on
another. TensorRT multiplies int8 values and accumulates in 32 bits. So the outputs the harness judges come
from a session with that fusion off (`session.disable_quant_qdq`): each layer computes in float32 on the
dequantized int8 values with the model's scales — int8 products, summed without saturation, the same on every
CPU up to float32 rounding. Latency times the cached artifact, what ONNX Runtime makes of the model on this CPU.
It fuses a layer into an int8 kernel only where a QuantizeLinear follows it; TensorRT's placement (Q/DQ on the
inputs of compute layers, outputs float: harness/precision/quantize.py) leaves none, so most layers then run in
float32 on weights dequantized at every run. `facts()` says which session produced what, and counts the int8
kernels the timed one really has.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnxruntime as ort

from harness.backends import Artifact, ArtifactIncompatibleError, BackendOptions, BuildRequest
from harness.case import Case, Precision
from harness.environment import cpu_flags, cpu_model
from harness.errors import BuildError
from harness.measure import Timer

_PROVIDERS = ["CPUExecutionProvider"]
_QDQ_OPS = frozenset({"QuantizeLinear", "DequantizeLinear"})
# What the accuracy session of a Q/DQ model computes, as the results record it (facts()["sessions"]).
_EXACT_INT8 = (
    "Q/DQ fusion off (session.disable_quant_qdq = 1): each layer in float32 on the dequantized int8 values with "
    "the model's scales, int8 products accumulated without saturation, as TensorRT computes; the same on every CPU"
)
# ONNX Runtime's operators that compute on int8/uint8 values (its QDQ fusions make them; com.microsoft domain).
_INT8_KERNELS = frozenset({"ConvInteger", "MatMulInteger", "MatMulIntegerToFloat", "QGemm", "DynamicQuantizeMatMul"})
_FLOAT_COMPUTE = frozenset({"Conv", "ConvTranspose", "FusedConv", "Gemm", "FusedGemm", "MatMul", "FusedMatMul"})


class OnnxRuntimeEngine:
    """One session for everything, or for a Q/DQ model an accuracy session apart from the timed one."""

    def __init__(
        self,
        session: ort.InferenceSession,
        accuracy_session: ort.InferenceSession | None = None,
        timed_kernels: str | None = None,
    ) -> None:
        self._session: ort.InferenceSession | None = session
        self._accuracy_session = accuracy_session
        self._timed_kernels = timed_kernels  # what the timed session of a Q/DQ model runs (timed_kernels())
        self._output_names = [output.name for output in session.get_outputs()]

    @property
    def session(self) -> ort.InferenceSession:
        """The session timed: the cached artifact, optimized at level ALL."""
        if self._session is None:
            raise RuntimeError("this ONNX Runtime engine was closed")
        return self._session

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The outputs the harness judges: from the accuracy session where the model is Q/DQ."""
        session = self._accuracy_session or self.session
        results = session.run(self._output_names, dict(inputs))
        return dict(zip(self._output_names, results))

    def layer_precisions(self) -> None:
        """ONNX Runtime has no layer report: the proof reads the ONNX model it was given (harness/precision/proof.py)."""
        return

    def close(self) -> None:
        self._session = None  # the session's memory and thread pool go with the last reference
        self._accuracy_session = None

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
        if self._accuracy_session is not None:
            facts["sessions"] = {"accuracy": _EXACT_INT8, "latency": self._timed_kernels}
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
        if precision is Precision.TF32:
            return "tf32 is a TensorRT builder mode for tensor cores; ONNX Runtime's CPU provider has no such mode"
        if precision is Precision.BF16:
            # onnxruntime 1.32: "NOT_IMPLEMENTED : Could not find an implementation for Conv(22)"; building the
            # point anyway would either fail or, where a kernel exists, upcast silently: neither is bf16.
            return (
                "ONNX Runtime's CPU provider has no bfloat16 kernels for most operators (Conv, Gemm, MatMul among them)"
            )
        return None

    def key_parts(self, request: BuildRequest) -> Mapping[str, str]:
        return {"providers": ",".join(_PROVIDERS), "cpu": cpu_model(), "isa": cpu_flags()}

    def build(self, request: BuildRequest) -> Artifact:
        with tempfile.TemporaryDirectory(prefix="harness-ort-") as scratch:
            optimized = Path(scratch) / "optimized.onnx"
            options = ort.SessionOptions()
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
        options = self._options()
        # The artifact is already optimized; optimizing again would be a second build.
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        try:
            session = ort.InferenceSession(artifact, options, providers=_PROVIDERS)
        except Exception as error:
            raise ArtifactIncompatibleError(f"ONNX Runtime cannot load the cached model: {error}") from error
        if not has_qdq(request.model_bytes):
            return OnnxRuntimeEngine(session)
        return OnnxRuntimeEngine(session, self.exact_int8_session(request.model_bytes), timed_kernels(artifact))

    def exact_int8_session(self, model_bytes: bytes) -> ort.InferenceSession:
        """A session of a Q/DQ model that computes what TensorRT computes, whatever the CPU (module docstring)."""
        options = self._options()
        options.add_session_config_entry("session.disable_quant_qdq", "1")
        return ort.InferenceSession(model_bytes, options, providers=_PROVIDERS)

    def _options(self) -> ort.SessionOptions:
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        return options


def timed_kernels(artifact: bytes) -> str:
    """What the optimized model times: its int8 kernels (ONNX Runtime's QLinear* and integer operators) and its
    compute layers left in float32, counted, e.g. "the cached artifact for this CPU: 1 int8 kernel (QLinearConv),
    0 float32 compute layers". Without VNNI (AVX2 alone) the int8 kernels sum u8×s8 pairs in 16 bits."""
    import onnx

    int8: Counter[str] = Counter()
    float32 = 0
    for node in onnx.load_from_string(artifact).graph.node:
        if node.op_type.startswith("QLinear") or node.op_type in _INT8_KERNELS:
            int8[node.op_type] += 1
        elif node.op_type in _FLOAT_COMPUTE:
            float32 += 1
    kernels = ", ".join(f"{op} ×{count}" if count > 1 else op for op, count in sorted(int8.items()))
    total = sum(int8.values())
    return (
        f"the cached artifact for this CPU: {total} int8 kernel{'s' if total != 1 else ''}"
        + (f" ({kernels})" if kernels else "")
        + f", {float32} float32 compute layer{'s' if float32 != 1 else ''} on dequantized values"
        + ("; without VNNI (AVX2 alone) the int8 kernels sum u8×s8 pairs in 16 bits and may saturate" if total else "")
    )


def has_qdq(model_bytes: bytes) -> bool:
    """Whether the model quantizes anything (QuantizeLinear / DequantizeLinear nodes in its main graph)."""
    import onnx

    return any(node.op_type in _QDQ_OPS for node in onnx.load_from_string(model_bytes).graph.node)
