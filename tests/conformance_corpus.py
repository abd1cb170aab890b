"""The builder-conformance corpus: networks, each with the verdict TensorRT for RTX gives it.

An entry defines a network through a library module `trt` (the numpy double of TensorRT 10.16 or
11.4, or the real `tensorrt_rtx`) and a Session, which records how far it got. The verdict is
"accepted" (build_serialized_network returned a plan and nothing raised) or "rejected at <stage>":
parse (the ONNX parser returned False), api (a network-definition call raised or returned None),
profile (add_optimization_profile refused the profile) or build (the build returned None).

Every network is strongly typed (the only kind TensorRT for RTX and TensorRT 11 build), with
BuilderFlag.TF32 cleared unless the entry asks for it, and an optimization profile for its
inputs unless the entry is about profiles. tests/test_builder_conformance.py runs the corpus.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np
import onnx
from onnx import ModelProto, TensorProto, helper, numpy_helper

from cases import ALL_CASES
from harness.case import Case, Precision
from harness.precision.derive import PrecisionOptions, derive
from harness.precision.network import NetworkPrecision

Shape = tuple[int, ...]
Corners = Mapping[str, tuple[Shape, Shape, Shape]]  # input name -> (min, opt, max)
ACCEPTED = "accepted"


class Rejected(Exception):
    """The library refused the network at `stage`; the message says how."""

    def __init__(self, stage: str, detail: str) -> None:
        super().__init__(f"rejected at {stage}: {detail}")
        self.stage = stage


@dataclass
class Session:
    """One network under construction with one library: builder, network, config, and the logged errors."""

    trt: ModuleType
    errors: list[str]
    logger: Any
    builder: Any
    network: Any
    config: Any
    notes: list[str] = field(default_factory=list)  # what happened that the verdict leaves out
    keep_alive: list[object] = field(default_factory=list)  # weights TensorRT reads by reference until the build

    def parse(self, model: ModelProto) -> None:
        parser = self.trt.OnnxParser(self.network, self.logger)
        self.keep_alive.append(parser)  # it owns the network's weights until the build (TensorRT developer guide)
        if not parser.parse(model.SerializeToString()):
            raise Rejected("parse", "; ".join(parser.get_error(i).desc() for i in range(parser.num_errors)))

    def add_profile(self, corners: Corners) -> None:
        profile = self.builder.create_optimization_profile()
        for name, (low, opt, high) in corners.items():
            profile.set_shape(name, low, opt, high)
        if self.config.add_optimization_profile(profile) < 0:
            raise Rejected("profile", self.last_error())

    def api(self, result: Any) -> Any:
        """A network-definition call's result; None is how the bindings report a refused call."""
        if result is None:
            raise Rejected("api", self.last_error())
        return result

    def last_error(self) -> str:
        return self.errors[-1] if self.errors else "(no error logged)"


def open_session(trt: ModuleType, *, tf32: bool = False) -> Session:
    """A strongly typed network and a config with TF32 as asked, logging errors into the session."""
    errors: list[str] = []

    class ErrorLog(trt.ILogger):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            trt.ILogger.__init__(self)

        def log(self, severity: Any, msg: str) -> None:
            # Without a GPU, TensorRT for RTX also logs CUDA-runtime errors while its CPU-only builds
            # succeed; they say nothing about the network, so they stay out of the record.
            if severity in (trt.ILogger.ERROR, trt.ILogger.INTERNAL_ERROR) and "Cuda Runtime" not in msg:
                errors.append(msg)

    logger = ErrorLog()
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    config = builder.create_builder_config()
    if tf32:
        config.set_flag(trt.BuilderFlag.TF32)
    else:
        config.clear_flag(trt.BuilderFlag.TF32)
    return Session(trt, errors, logger, builder, network, config)


def verdict(trt: ModuleType, entry: Entry) -> tuple[str, Session]:
    """Run `entry` with library `trt`: its verdict, and the session for the details."""
    session = open_session(trt, tf32=entry.tf32)
    try:
        entry.define(session)
        plan = session.builder.build_serialized_network(session.network, session.config)
    except Rejected as rejection:
        return f"rejected at {rejection.stage}", session
    except Exception as error:  # noqa: BLE001 - a raising API call is the library refusing the network
        session.notes.append(f"{type(error).__name__}: {error}")
        return "rejected at api", session
    return (ACCEPTED if plan is not None else "rejected at build"), session


@dataclass(frozen=True)
class Entry:
    name: str
    expected: str  # the verdict TensorRT for RTX gives, as measured: "accepted" or "rejected at <stage>"
    define: Callable[[Session], None]
    tf32: bool = False


# --- the repo's cases ----------------------------------------------------------------------------------


def _profile_of(case: Case) -> dict[str, tuple[Shape, Shape, Shape]]:
    profile = case.profiles[0]
    return {name: (profile.min[name], profile.opt[name], profile.max[name]) for name in profile.min}


def _case_entry(case: Case, precision: Precision, workflow: str) -> Entry:
    """One case at one precision: the model the harness derives (harness/precision/), or the case's network
    definition through the same precision policy (NetworkPrecision)."""

    def define(session: Session) -> None:
        if workflow == "onnx":
            session.parse(onnx.load_from_string(derive(case, precision, PrecisionOptions()).model_bytes))
        else:
            assert case.define_network is not None, f"case {case.name} has no define_network"
            scales = derive(case, precision, PrecisionOptions()).scales if precision is Precision.INT8 else None
            precision_policy = NetworkPrecision(session.trt, session.network, precision, scales or {})
            session.keep_alive.append(precision_policy)  # its weights are read when the engine is built
            case.define_network(session.network, session.trt, precision_policy)
        session.add_profile(_profile_of(case))

    return Entry(f"{case.name}-{precision.value}-{workflow}", ACCEPTED, define, tf32=precision is Precision.TF32)


CASE_ENTRIES = tuple(
    _case_entry(case, precision, workflow)
    for case in ALL_CASES
    for precision in Precision
    for workflow in ("onnx", "network")
    if precision in case.precisions
)


# --- networks made through the network-definition API ----------------------------------------------------

KERNEL = np.random.default_rng(1).standard_normal((3, 2, 3, 3)).astype(np.float32)  # K=3, C=2, 3x3
BIAS = np.array([0.5, -1.0, 0.25], dtype=np.float32)
FIXED = (1, 2, 6, 6)


def _fixed_profile(session: Session, *names: str) -> None:
    session.add_profile({name: (FIXED, FIXED, FIXED) for name in names})


def _conv(kernel: np.ndarray, bias: Callable[[ModuleType], Any]) -> Callable[[Session], None]:
    def define(session: Session) -> None:
        trt, network = session.trt, session.network
        x = network.add_input("x", trt.float32, FIXED)
        layer = session.api(network.add_convolution_nd(x, 3, (3, 3), trt.Weights(kernel), bias(trt)))
        network.mark_output(layer.get_output(0))
        _fixed_profile(session, "x")

    return define


def _bf16_conv_in_network(as_pointer: bool) -> Callable[[Session], None]:
    """A bfloat16 convolution through the network API, its weights given as Weights(BF16, ptr, count) or as a
    numpy (ml_dtypes) bfloat16 array, which TensorRT for RTX's numpy bridge does not accept."""
    from ml_dtypes import bfloat16

    def define(session: Session) -> None:
        trt, network = session.trt, session.network
        kernel, bias = KERNEL.astype(bfloat16), BIAS.astype(bfloat16)
        session.keep_alive += [kernel, bias]
        x = network.add_cast(network.add_input("x", trt.float32, FIXED), trt.DataType.BF16).get_output(0)
        if as_pointer:
            weights = [trt.Weights(trt.DataType.BF16, array.ctypes.data, array.size) for array in (kernel, bias)]
        else:
            weights = [kernel, bias]
        layer = session.api(network.add_convolution_nd(x, 3, (3, 3), *weights))
        network.mark_output(network.add_cast(layer.get_output(0), trt.float32).get_output(0))
        _fixed_profile(session, "x")

    return define


def _mixed_elementwise(session: Session) -> None:
    trt, network = session.trt, session.network
    a, b = network.add_input("a", trt.float32, FIXED), network.add_input("b", trt.float16, FIXED)
    network.mark_output(session.api(network.add_elementwise(a, b, trt.ElementWiseOperation.SUM)).get_output(0))
    _fixed_profile(session, "a", "b")


def _identity_of_dynamic(session: Session) -> None:
    x = session.network.add_input("x", session.trt.float32, (-1, 3))
    session.network.mark_output(session.api(session.network.add_identity(x)).get_output(0))


def _profile(corners: tuple[Shape, Shape, Shape]) -> Callable[[Session], None]:
    def define(session: Session) -> None:
        _identity_of_dynamic(session)
        session.add_profile({"x": corners})

    return define


def _garbage_timing_cache(session: Session) -> None:
    """The build's verdict is what is compared; whether set_timing_cache took the cache is only noted.

    TensorRT for RTX deprecates the timing-cache calls (a DeprecationWarning each), expected here.
    """
    _identity_of_dynamic(session)
    session.add_profile({"x": ((1, 3), (2, 3), (4, 3))})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        cache = session.config.create_timing_cache(b"this is not a timing cache")
        taken = session.config.set_timing_cache(cache, False)
    session.notes.append(f"set_timing_cache returned {taken}")


def _zero_point_in_network(zero: float) -> Callable[[Session], None]:
    """Q/DQ through the network API, the zero point given as input 2 of the quantize layer."""

    def define(session: Session) -> None:
        trt, network = session.trt, session.network
        x = network.add_input("x", trt.float32, FIXED)
        scale = network.add_constant((), np.array(0.05, dtype=np.float32)).get_output(0)
        zero_point = network.add_constant((), np.array(zero, dtype=np.float32)).get_output(0)
        quantize = session.api(network.add_quantize(x, scale, trt.int8))
        quantize.set_input(2, zero_point)
        network.mark_output(
            session.api(network.add_dequantize(quantize.get_output(0), scale, trt.float32)).get_output(0)
        )
        _fixed_profile(session, "x")

    return define


# --- networks parsed from ONNX -----------------------------------------------------------------------------

QDQ_OPSET = 21


def _model(nodes: list[Any], inputs: list[Any], outputs: list[Any], initializers: list[Any], opset: int) -> ModelProto:
    graph = helper.make_graph(nodes, "corpus", inputs, outputs, initializer=initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _single_op(op_type: str, shape: list[int], out_shape: list[int]) -> ModelProto:
    return _model(
        [helper.make_node(op_type, ["x"], ["y"], name="the_node")],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        [],
        QDQ_OPSET,
    )


def _qdq_conv(activation_zero: int, weight_zero: int) -> ModelProto:
    """Q/DQ int8 conv: per-tensor activation scale, per-channel (axis 0) weight scales, weights stored int8."""
    weights = np.random.default_rng(2).standard_normal((4, 2, 3, 3)).astype(np.float32)
    weight_scales = (np.abs(weights).reshape(4, -1).max(axis=1) / 127).astype(np.float32)
    quantized = np.clip(np.rint(weights / weight_scales[:, None, None, None]), -128, 127).astype(np.int8)
    node = helper.make_node
    return _model(
        [
            node("QuantizeLinear", ["x", "x_scale", "x_zero"], ["x_q"]),
            node("DequantizeLinear", ["x_q", "x_scale", "x_zero"], ["x_dq"]),
            node("DequantizeLinear", ["w_q", "w_scale", "w_zero"], ["w_dq"], axis=0),
            node("Conv", ["x_dq", "w_dq", "bias"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        ],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, 8, 8])],
        [
            numpy_helper.from_array(np.array(0.05, dtype=np.float32), "x_scale"),
            numpy_helper.from_array(np.array(activation_zero, dtype=np.int8), "x_zero"),
            numpy_helper.from_array(quantized, "w_q"),
            numpy_helper.from_array(weight_scales, "w_scale"),
            numpy_helper.from_array(np.full(4, weight_zero, dtype=np.int8), "w_zero"),
            numpy_helper.from_array(np.zeros(4, dtype=np.float32), "bias"),
        ],
        QDQ_OPSET,
    )


BF16_OPSET = 22  # Conv admits bfloat16 from opset 22 (onnx.checker refuses it at 21; TensorRT parses both)


def _bf16_conv() -> ModelProto:
    from ml_dtypes import bfloat16

    weights = np.random.default_rng(3).standard_normal((4, 2, 3, 3)).astype(bfloat16)
    node = helper.make_node
    return _model(
        [
            node("Cast", ["x"], ["x_bf16"], to=TensorProto.BFLOAT16),
            node("Conv", ["x_bf16", "w", "b"], ["y_bf16"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
            node("Cast", ["y_bf16"], ["y"], to=TensorProto.FLOAT),
        ],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, 8, 8])],
        [numpy_helper.from_array(weights, "w"), numpy_helper.from_array(np.zeros(4, dtype=bfloat16), "b")],
        BF16_OPSET,
    )


NCHW_PROFILE: Corners = {"x": ((1, 2, 8, 8), (2, 2, 8, 8), (4, 2, 8, 8))}


def _parsed(model: Callable[[], ModelProto], corners: Corners) -> Callable[[Session], None]:
    def define(session: Session) -> None:
        session.parse(model())
        session.add_profile(corners)

    return define


FIXED_2x3: Corners = {"x": ((2, 3), (2, 3), (2, 3))}
FIXED_DET: Corners = {"x": ((2, 3, 3), (2, 3, 3), (2, 3, 3))}

CRAFTED_ENTRIES = (
    Entry("conv-empty-bias", ACCEPTED, _conv(KERNEL, lambda trt: trt.Weights())),
    Entry("conv-wrong-kernel-count", "rejected at build", _conv(KERNEL[..., :2].copy(), lambda trt: trt.Weights(BIAS))),
    Entry(
        "conv-float16-weights-float32-input",
        "rejected at build",
        _conv(KERNEL.astype(np.float16), lambda trt: trt.Weights(BIAS.astype(np.float16))),
    ),
    Entry("elementwise-float32-plus-float16", "rejected at build", _mixed_elementwise),
    Entry("dynamic-input-without-profile", "rejected at build", _identity_of_dynamic),
    Entry("profile-min-above-max", "rejected at profile", _profile(((4, 3), (2, 3), (1, 3)))),
    Entry("profile-opt-outside-min-max", "rejected at profile", _profile(((1, 3), (5, 3), (4, 3)))),
    Entry("onnx-made-up-op", "rejected at parse", _parsed(lambda: _single_op("Frobnicate", [2, 3], [2, 3]), FIXED_2x3)),
    # Det is a standard ONNX op (opset 11) that TensorRT's parser has no importer for (supports_operator: False).
    Entry("onnx-det-unsupported", "rejected at parse", _parsed(lambda: _single_op("Det", [2, 3, 3], [2]), FIXED_DET)),
    Entry("garbage-timing-cache", ACCEPTED, _garbage_timing_cache),
    Entry("qdq-int8-conv-zero-point-0", ACCEPTED, _parsed(lambda: _qdq_conv(0, 0), NCHW_PROFILE)),
    Entry("qdq-activation-zero-point-3", "rejected at parse", _parsed(lambda: _qdq_conv(3, 0), NCHW_PROFILE)),
    Entry("qdq-weight-zero-point-3", "rejected at parse", _parsed(lambda: _qdq_conv(0, 3), NCHW_PROFILE)),
    Entry("qdq-network-api-zero-point-0", ACCEPTED, _zero_point_in_network(0.0)),
    Entry("qdq-network-api-zero-point-3", "rejected at build", _zero_point_in_network(3.0)),
    Entry("bf16-conv", ACCEPTED, _parsed(_bf16_conv, NCHW_PROFILE)),
    Entry("bf16-conv-network-weights-by-pointer", ACCEPTED, _bf16_conv_in_network(as_pointer=True)),
    Entry("bf16-conv-network-numpy-bfloat16", "rejected at api", _bf16_conv_in_network(as_pointer=False)),
)

ENTRIES: tuple[Entry, ...] = CASE_ENTRIES + CRAFTED_ENTRIES
