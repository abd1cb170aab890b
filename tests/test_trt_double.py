"""The strict double of TensorRT (tests/trt_double): names against the real API snapshots, layers against
numpy, the execution protocol, plans, the ONNX parser, and the project's cases end to end."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import ModelProto, TensorProto, helper, numpy_helper

from cases import ALL_CASES
from cases.conv_add_relu import conv2d
from harness.case import Case, Precision, ShapePoint
from harness.compare import compare_outputs
from harness.precision.derive import PrecisionOptions, derive
from harness.precision.network import NetworkPrecision
from tests.trt_double import IMPLEMENTED, absent_from, make_tensorrt
from tests.trt_double.layers import round_tf32
from tests.trt_double.strict import SNAPSHOT_FILES, implemented_members, load_snapshot

VERSIONS = tuple(SNAPSHOT_FILES)
STREAM = 0x5100
Shape = tuple[int, ...]
Corners = Mapping[str, tuple[Shape, Shape, Shape]]


class FakeMemory:
    """Device memory as host byte arrays at fake addresses; streams listed in `capturing` are capturing."""

    def __init__(self) -> None:
        self._buffers: dict[int, bytearray] = {}
        self._next = 0x7000_0000
        self.capturing: set[int] = set()
        self.synchronized: list[int] = []

    def alloc(self, nbytes: int) -> int:
        address = self._next
        self._next += (nbytes // 256 + 2) * 256
        self._buffers[address] = bytearray(nbytes)
        return address

    def read_device(self, ptr: int, nbytes: int) -> bytes:
        return bytes(self._buffers[ptr][:nbytes])

    def write_device(self, ptr: int, data: bytes) -> None:
        self._buffers[ptr][: len(data)] = data

    def synchronize_stream(self, handle: int) -> None:
        self.synchronized.append(handle)

    def stream_is_capturing(self, handle: int) -> bool:
        return handle in self.capturing


@dataclass
class Double:
    trt: ModuleType
    memory: Any  # FakeMemory, or tests/cuda_host.py
    logger: Any

    def errors(self) -> list[str]:
        severity = self.trt.ILogger.Severity
        return [msg for level, msg in self.logger.messages if level in (severity.ERROR, severity.INTERNAL_ERROR)]


def make_double(version: str, memory: Any = None) -> Double:
    memory = FakeMemory() if memory is None else memory
    trt = make_tensorrt(version, memory)

    class RecordingLogger(trt.ILogger):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.messages: list[tuple[Any, str]] = []

        def log(self, severity: Any, msg: str) -> None:
            self.messages.append((severity, msg))

    return Double(trt, memory, RecordingLogger())


@pytest.fixture(params=("10.16", "11.4"))
def double(request: pytest.FixtureRequest) -> Double:
    return make_double(request.param)


def new_network(d: Double, *, strongly_typed: bool = True) -> tuple[Any, Any]:
    builder = d.trt.Builder(d.logger)
    flags = 1 << int(d.trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if strongly_typed else 0
    return builder, builder.create_network(flags)


def build(
    d: Double, builder: Any, network: Any, corners: Corners, *, tf32: bool = False, flags: tuple[str, ...] = ()
) -> Any:
    config = builder.create_builder_config()
    if not tf32:
        config.clear_flag(d.trt.BuilderFlag.TF32)
    for flag in flags:
        config.set_flag(getattr(d.trt.BuilderFlag, flag))
    profile = builder.create_optimization_profile()
    for name, (low, opt, high) in corners.items():
        profile.set_shape(name, low, opt, high)
    assert config.add_optimization_profile(profile) == 0
    return builder.build_serialized_network(network, config)


def parse(d: Double, network: Any, model: ModelProto) -> Any:
    """The parser, which the caller keeps until the build: it owns the network's weights, as TensorRT's does."""
    parser = d.trt.OnnxParser(network, d.logger)
    assert parser.parse(model.SerializeToString()), [parser.get_error(i).desc() for i in range(parser.num_errors)]
    return parser


def bind(
    d: Double, engine: Any, inputs: Mapping[str, np.ndarray]
) -> tuple[Any, dict[str, tuple[int, Shape, np.dtype]]]:
    """A context with every input shape and I/O address set, inputs written; the outputs' (address, shape, dtype)."""
    context = engine.create_execution_context()
    for name, array in inputs.items():
        assert context.set_input_shape(name, array.shape), d.errors()
    outputs = {}
    for name in (engine.get_tensor_name(i) for i in range(engine.num_io_tensors)):
        dtype = np.dtype(d.trt.nptype(engine.get_tensor_dtype(name)))
        shape = tuple(context.get_tensor_shape(name))
        address = d.memory.alloc(math.prod(shape) * dtype.itemsize)
        assert context.set_tensor_address(name, address)
        if name in inputs:
            d.memory.write_device(address, np.ascontiguousarray(inputs[name], dtype=dtype).tobytes())
        else:
            outputs[name] = (address, shape, dtype)
    return context, outputs


def run(d: Double, plan: Any, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    assert plan is not None, d.errors()
    engine = d.trt.Runtime(d.logger).deserialize_cuda_engine(plan)
    assert engine is not None, d.errors()
    context, outputs = bind(d, engine, inputs)
    assert context.execute_async_v3(STREAM), d.errors()
    return {
        name: np.frombuffer(d.memory.read_device(address, math.prod(shape) * dtype.itemsize), dtype).reshape(shape)
        for name, (address, shape, dtype) in outputs.items()
    }


# --- strictness --------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_the_module_names_itself_tensorrt_and_can_never_pass_for_it(version: str) -> None:
    trt = make_tensorrt(version, FakeMemory())
    assert trt.__name__ == "tensorrt"
    assert trt.__version__ == f"{load_snapshot(version).version}+numpy-double"


def test_names_only_ten_has_exist_on_ten_and_raise_on_eleven() -> None:
    ten, eleven = make_tensorrt("10.16", FakeMemory()), make_tensorrt("11.4", FakeMemory())
    for enum_name, member in (("BuilderFlag", "FP16"), ("NetworkDefinitionCreationFlag", "EXPLICIT_BATCH")):
        assert getattr(getattr(ten, enum_name), member).name == member
        with pytest.raises(
            AttributeError,
            match=f"tensorrt 11.4.0.106 .double. has no attribute {enum_name}.{member}: not in the real API snapshot",
        ):
            getattr(getattr(eleven, enum_name), member)
    with pytest.raises(AttributeError, match="has no attribute IInt8Calibrator: not in the real API snapshot"):
        eleven.IInt8Calibrator  # noqa: B018
    with pytest.raises(NotImplementedError, match="double does not implement IInt8EntropyCalibrator2"):
        ten.IInt8EntropyCalibrator2()
    with pytest.raises(NotImplementedError, match="double does not implement ICudaEngine.device_memory_size"):
        ten.ICudaEngine.device_memory_size  # noqa: B018
    with pytest.raises(AttributeError, match="has no attribute ICudaEngine.device_memory_size: not in"):
        eleven.ICudaEngine.device_memory_size  # noqa: B018


def test_instances_expose_only_snapshot_members(double: Double) -> None:
    trt = double.trt
    builder, network = new_network(double)
    tensor = network.add_input("x", trt.DataType.FLOAT, (2, 3))
    plan = build(double, builder, network_with_output(network, tensor), {})
    with pytest.raises(AttributeError, match="has no attribute INetworkDefinition.bogus: not in the real API snapshot"):
        network.bogus  # noqa: B018
    with pytest.raises(AttributeError, match="has no attribute ITensor.colour"):
        tensor.colour = "red"
    with pytest.raises(AttributeError, match="has no attribute IHostMemory.decode"):
        plan.decode  # noqa: B018
    with pytest.raises(AttributeError, match="has no attribute Dims.index"):
        tensor.shape.index  # noqa: B018
    with pytest.raises(NotImplementedError, match="double does not implement INetworkDefinition.add_gather"):
        network.add_gather  # noqa: B018
    with pytest.raises(TypeError, match="No constructor defined"):
        trt.ICudaEngine()
    assert bytes(plan) == bytes(memoryview(plan)) and plan.nbytes == len(plan) and plan.dtype == trt.DataType.UINT8
    assert double.logger.messages == []  # a user subclass keeps its own attributes


def test_platform_queries_that_eleven_dropped_raise_there() -> None:
    eleven = make_double("11.4")
    with pytest.raises(AttributeError, match="has no attribute Builder.platform_has_tf32"):
        eleven.trt.Builder(eleven.logger).platform_has_tf32  # noqa: B018


@pytest.mark.parametrize("version", VERSIONS)
def test_module_names_and_enums_are_exactly_the_snapshots(version: str) -> None:
    trt, snapshot = make_tensorrt(version, FakeMemory()), load_snapshot(version)
    public = {name for name in vars(trt) if not name.startswith("_")}
    assert public == set(snapshot.classes) | set(snapshot.enums) | set(snapshot.functions) | set(snapshot.attributes)
    for name, members in snapshot.enums.items():
        assert set(getattr(trt, name).__members__) == set(members), name
    for alias, (owner, member) in snapshot.attributes.items():
        assert getattr(trt, alias) is getattr(getattr(trt, owner), member), alias
    assert trt.float32 is trt.DataType.FLOAT and trt.bfloat16 is trt.DataType.BF16
    assert set(trt.ILogger.Severity.__members__) == {"INTERNAL_ERROR", "ERROR", "WARNING", "INFO", "VERBOSE"}
    assert trt.ILogger.ERROR is trt.ILogger.Severity.ERROR is trt.Logger.ERROR


def _parameters(signature: str) -> tuple[str, ...]:
    """Parameter names of a pybind11 signature line "name(self: X, a: T = d) -> R", without self."""
    depth, parts, current = 0, [], ""
    for char in signature[signature.index("(") + 1 :]:
        if char == ")" and depth == 0:
            break
        if char in "([<":
            depth += 1
        elif char in ")]>":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    names = (part.split(":")[0].split("=")[0].strip() for part in parts)
    return tuple(name for name in names if name and name != "self")


def _implementation(cls: type, name: str) -> Any:
    return next(klass.__dict__[name] for klass in cls.__mro__ if name in klass.__dict__)


@pytest.mark.parametrize("version", VERSIONS)
def test_every_implemented_member_is_a_snapshot_member_of_the_same_kind_and_signature(version: str) -> None:
    trt, snapshot = make_tensorrt(version, FakeMemory()), load_snapshot(version)
    for impl in IMPLEMENTED:
        cls = getattr(trt, impl.__name__)
        members = snapshot.classes[impl.__name__]
        for name, kind in implemented_members(cls).items():
            assert name in members, f"{impl.__name__}.{name} is not in the {version} snapshot"
            assert kind == members[name].kind, (
                f"{impl.__name__}.{name} is a {kind}, TensorRT's is a {members[name].kind}"
            )
        for name in {*implemented_members(cls), "__init__"} & set(members):
            # Numbered lines are overloads, "1. name(...)"; other numbered doc lines are not signatures.
            sigs = [line for sig in members[name].sigs if (line := sig.split(". ", 1)[-1]).startswith(f"{name}(")]
            if members[name].kind != "method" or not sigs:
                continue
            function = _implementation(cls, name)
            mine = tuple(p for p in inspect.signature(function).parameters if p != "self")
            mine = tuple({"args": "*args", "kwargs": "**kwargs"}.get(p, p) for p in mine)
            assert mine in {_parameters(sig) for sig in sigs}, f"{impl.__name__}.{name}{mine} vs {sigs}"


def test_accesses_of_the_code_under_test_are_recorded_and_the_doubles_own_are_not() -> None:
    d = make_double("10.16")
    builder, network = new_network(d)
    _weights_owner = parse(d, network, small_model())
    builder.create_builder_config().set_flag(d.trt.BuilderFlag.FP16)
    accessed = d.trt._accessed
    assert {
        ("OnnxParser", "parse"),
        ("BuilderFlag", "FP16"),
        ("NetworkDefinitionCreationFlag", "STRONGLY_TYPED"),
    } <= accessed
    assert ("INetworkDefinition", "add_convolution_nd") not in accessed  # the parser's, not the caller's
    assert absent_from(accessed, "11.4") == ["BuilderFlag.FP16"]
    assert absent_from(accessed, "10.13") == []


def test_a_build_after_the_parser_is_gone_fails_as_freed_weights_would(double: Double) -> None:
    """TensorRT's developer guide: the parser owns the weights, so it must outlive the build. The double fails
    that build with a message instead of reading freed memory (the adapter keeps its parser; see trt.py)."""
    builder, network = new_network(double)
    parse(double, network, small_model())  # the parser is dropped at once
    assert build(double, builder, network, SMALL) is None
    assert "OnnxParser that filled this network was destroyed" in double.errors()[-1]
    builder, network = new_network(double)
    _weights_owner = parse(double, network, small_model())
    assert build(double, builder, network, SMALL) is not None


def test_a_logger_that_skips_ilogger_init_is_refused() -> None:
    trt = make_tensorrt("11.4", FakeMemory())

    class Careless(trt.ILogger):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            self.messages: list[str] = []

        def log(self, severity: Any, msg: str) -> None:
            self.messages.append(msg)

    with pytest.raises(TypeError, match="must call tensorrt.ILogger.__init__"):
        trt.Builder(Careless())


# --- one network, two workflows ----------------------------------------------------------------------

SMALL = {"x": ((1, 2, 8, 8), (2, 2, 8, 8), (3, 2, 8, 8)), "r": ((1, 4, 8, 8), (2, 4, 8, 8), (3, 4, 8, 8))}


def small_weights() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {
        "conv.w": rng.standard_normal((4, 2, 3, 3)).astype(np.float32),
        "conv.b": rng.standard_normal(4).astype(np.float32),
        "fc.w": (rng.standard_normal((5, 64)) * 0.2).astype(np.float32),  # (out, in): Gemm transB=1
        "fc.b": rng.standard_normal(5).astype(np.float32),
    }


def small_model() -> ModelProto:
    """Conv 3x3 pad 1 + residual Add + Relu + MaxPool 2/2 + Flatten + Gemm(transB) + Softmax and ArgMax."""
    node = helper.make_node
    nodes = [
        node("Conv", ["x", "conv.w", "conv.b"], ["conv"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        node("Add", ["conv", "r"], ["sum"]),
        node("Relu", ["sum"], ["relu"]),
        node("MaxPool", ["relu"], ["pool"], kernel_shape=[2, 2], strides=[2, 2]),
        node("Flatten", ["pool"], ["flat"], axis=1),
        node("Gemm", ["flat", "fc.w", "fc.b"], ["logits"], transB=1),
        node("Softmax", ["logits"], ["probabilities"], axis=1),
        node("ArgMax", ["logits"], ["label"], axis=1, keepdims=0),
    ]
    graph = helper.make_graph(
        nodes,
        "small",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 8, 8]),
            helper.make_tensor_value_info("r", TensorProto.FLOAT, ["N", 4, 8, 8]),
        ],
        [
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 5]),
            helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
        ],
        initializer=[numpy_helper.from_array(value, name) for name, value in small_weights().items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def define_small(trt: ModuleType, network: Any) -> None:
    """small_model() through the network-definition API, layer by layer."""
    w = small_weights()
    x = network.add_input("x", trt.DataType.FLOAT, (-1, 2, 8, 8))
    r = network.add_input("r", trt.DataType.FLOAT, (-1, 4, 8, 8))
    conv = network.add_convolution_nd(x, 4, (3, 3), w["conv.w"], w["conv.b"])
    conv.padding_nd = (1, 1)
    summed = network.add_elementwise(conv.get_output(0), r, trt.ElementWiseOperation.SUM)
    relu = network.add_activation(summed.get_output(0), trt.ActivationType.RELU)
    pool = network.add_pooling_nd(relu.get_output(0), trt.PoolingType.MAX, (2, 2))
    pool.stride_nd = (2, 2)
    flat = network.add_shuffle(pool.get_output(0))
    flat.reshape_dims = (0, -1)
    fc_w = network.add_constant(w["fc.w"].shape, w["fc.w"]).get_output(0)
    fc = network.add_matrix_multiply(flat.get_output(0), trt.MatrixOperation.NONE, fc_w, trt.MatrixOperation.TRANSPOSE)
    bias = network.add_constant((1, 5), w["fc.b"]).get_output(0)
    logits = network.add_elementwise(fc.get_output(0), bias, trt.ElementWiseOperation.SUM).get_output(0)
    softmax = network.add_softmax(logits)
    softmax.axes = 1 << 1
    probabilities = softmax.get_output(0)
    probabilities.name = "probabilities"
    top = network.add_topk(logits, trt.TopKOperation.MAX, 1, 1 << 1)
    label = network.add_shuffle(network.add_cast(top.get_output(1), trt.DataType.INT64).get_output(0))
    label.reshape_dims = (0,)
    label.get_output(0).name = "label"
    network.mark_output(probabilities)
    network.mark_output(label.get_output(0))


def small_reference(x: np.ndarray, r: np.ndarray) -> dict[str, np.ndarray]:
    w = {name: value.astype(np.float64) for name, value in small_weights().items()}
    h = np.maximum(conv2d(x.astype(np.float64), w["conv.w"], w["conv.b"], 1) + r, 0.0)
    n = len(h)
    h = h.reshape(n, 4, 4, 2, 4, 2).max(axis=(3, 5)).reshape(n, 64)
    logits = h @ w["fc.w"].T + w["fc.b"]
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return {"probabilities": exp / exp.sum(axis=1, keepdims=True), "label": logits.argmax(axis=1)}


def test_the_network_api_and_the_onnx_parser_give_identical_outputs_that_match_numpy(double: Double) -> None:
    rng = np.random.default_rng(3)
    inputs = {
        "x": rng.standard_normal((2, 2, 8, 8), dtype=np.float32),
        "r": rng.standard_normal((2, 4, 8, 8), dtype=np.float32),
    }
    builder, network = new_network(double)
    define_small(double.trt, network)
    by_api = run(double, build(double, builder, network, SMALL), inputs)
    builder, network = new_network(double)
    _weights_owner = parse(double, network, small_model())
    by_parser = run(double, build(double, builder, network, SMALL), inputs)
    for name in ("probabilities", "label"):
        np.testing.assert_array_equal(by_api[name], by_parser[name])
    expected = small_reference(inputs["x"], inputs["r"])
    np.testing.assert_allclose(by_parser["probabilities"], expected["probabilities"], rtol=1e-6)
    np.testing.assert_array_equal(by_parser["label"], expected["label"])
    assert by_parser["label"].dtype == np.int64


# --- layers against numpy ----------------------------------------------------------------------------

KERNEL = np.random.default_rng(11).standard_normal((3, 2, 3, 3)).astype(np.float32)
BIAS = np.array([0.5, -1.0, 0.25], dtype=np.float32)
FC = np.random.default_rng(12).standard_normal((4, 6)).astype(np.float32)  # (out, in), used transposed


def _windows(x: np.ndarray, size: int, stride: int, pad: int, fill: float) -> np.ndarray:
    """(N, C, H', W', size, size) windows, by explicit loops: independent of the double's own code."""
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=fill)
    rows = range(0, padded.shape[2] - size + 1, stride)
    cols = range(0, padded.shape[3] - size + 1, stride)
    windows: np.ndarray = np.array([[padded[:, :, i : i + size, j : j + size] for j in cols] for i in rows])
    ordered: np.ndarray = windows.transpose(2, 3, 0, 1, 4, 5)
    return ordered


def _conv_stride2(trt: ModuleType, network: Any, x: Any) -> list[Any]:
    layer = network.add_convolution_nd(x, 3, (3, 3), trt.Weights(KERNEL), trt.Weights(BIAS))
    layer.stride_nd, layer.padding_nd = (2, 2), (1, 1)
    return [layer.get_output(0)]


def _max_pool_padded(trt: ModuleType, network: Any, x: Any) -> list[Any]:
    layer = network.add_pooling_nd(x, trt.PoolingType.MAX, (3, 3))
    layer.stride_nd, layer.padding_nd = (2, 2), (1, 1)
    return [layer.get_output(0)]


def _gemm_transposed(trt: ModuleType, network: Any, x: Any) -> list[Any]:
    flat = network.add_shuffle(x)
    flat.reshape_dims = (-1, 6)
    weights = network.add_constant(FC.shape, FC).get_output(0)
    product = network.add_matrix_multiply(
        flat.get_output(0), trt.MatrixOperation.NONE, weights, trt.MatrixOperation.TRANSPOSE
    )
    return [product.get_output(0)]


def _softmax_axis0(trt: ModuleType, network: Any, x: Any) -> list[Any]:
    layer = network.add_softmax(x)
    layer.axes = 1
    return [layer.get_output(0)]


def _topk_min(trt: ModuleType, network: Any, x: Any) -> list[Any]:
    layer = network.add_topk(x, trt.TopKOperation.MIN, 2, 1 << 3)
    return [layer.get_output(0), layer.get_output(1)]


def _reduce_avg(trt: ModuleType, network: Any, x: Any) -> list[Any]:
    return [network.add_reduce(x, trt.ReduceOperation.AVG, 0b1010, False).get_output(0)]


def _topk_reference(x: np.ndarray) -> list[np.ndarray]:
    order = np.argsort(x, axis=3, kind="stable")[..., :2]
    return [np.take_along_axis(x, order, axis=3), order]


LAYERS: dict[str, tuple[Callable[[ModuleType, Any, Any], list[Any]], Callable[[np.ndarray], list[np.ndarray]]]] = {
    "conv-stride2-pad1": (
        _conv_stride2,
        lambda x: [
            np.einsum("nchwij,kcij->nkhw", _windows(x, 3, 2, 1, 0.0), KERNEL.astype(np.float64)) + BIAS[:, None, None]
        ],
    ),
    "maxpool-3x3-stride2-pad1": (_max_pool_padded, lambda x: [_windows(x, 3, 2, 1, -np.inf).max(axis=(4, 5))]),
    "gemm-transB": (_gemm_transposed, lambda x: [x.reshape(-1, 6) @ FC.T.astype(np.float64)]),
    "softmax-axis0": (_softmax_axis0, lambda x: [np.exp(x) / np.exp(x).sum(axis=0, keepdims=True)]),
    "topk-min-2": (_topk_min, _topk_reference),
    "reduce-avg-axes-1-3": (_reduce_avg, lambda x: [x.mean(axis=(1, 3))]),
}


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_layers_match_numpy(double: Double, layer: str) -> None:
    define, reference = LAYERS[layer]
    x = np.random.default_rng(5).standard_normal((2, 2, 5, 6)).astype(np.float32)
    builder, network = new_network(double)
    outputs = define(double.trt, network, network.add_input("x", double.trt.DataType.FLOAT, x.shape))
    for index, tensor in enumerate(outputs):
        tensor.name = f"out{index}"
        network.mark_output(tensor)
    got = run(double, build(double, builder, network, {}), {"x": x})
    for index, expected in enumerate(reference(x.astype(np.float64))):
        np.testing.assert_allclose(got[f"out{index}"], expected, rtol=1e-6, atol=1e-6)


# --- precision ---------------------------------------------------------------------------------------


def test_a_strongly_typed_float16_network_rounds_every_layer_output_to_float16(double: Double) -> None:
    trt = double.trt
    scale, offset = np.array([1.7, -0.3, 2.9], dtype=np.float16), np.array([0.1, 0.2, 0.3], dtype=np.float16)
    builder, network = new_network(double)
    x = network.add_input("x", trt.DataType.FLOAT, (4, 3))
    half = network.add_cast(x, trt.DataType.HALF).get_output(0)
    scaled = network.add_elementwise(
        half, network.add_constant((1, 3), scale).get_output(0), trt.ElementWiseOperation.PROD
    )
    shifted = network.add_elementwise(
        scaled.get_output(0), network.add_constant((1, 3), offset).get_output(0), trt.ElementWiseOperation.SUM
    )
    assert shifted.get_output(0).dtype == trt.DataType.HALF
    y = network.add_cast(shifted.get_output(0), trt.DataType.FLOAT).get_output(0)
    y.name = "y"
    network.mark_output(y)
    values = np.random.default_rng(2).standard_normal((4, 3)).astype(np.float32)
    got = run(double, build(double, builder, network, {}), {"x": values})["y"]
    h = values.astype(np.float16).astype(np.float32)
    p = (h * scale.astype(np.float32)).astype(np.float16).astype(np.float32)
    expected = (p + offset.astype(np.float32)).astype(np.float16).astype(np.float32)
    np.testing.assert_array_equal(got, expected)
    assert not np.array_equal(got, values * scale.astype(np.float32) + offset.astype(np.float32))


def test_a_strongly_typed_network_refuses_weights_of_another_type(double: Double) -> None:
    builder, network = new_network(double)
    x = network.add_input("x", double.trt.DataType.FLOAT, (1, 2, 5, 5))
    network.mark_output(network.add_convolution_nd(x, 3, (3, 3), KERNEL.astype(np.float16), BIAS).get_output(0))
    assert build(double, builder, network, {}) is None
    assert any("kernel weights are HALF but the input is FLOAT" in error for error in double.errors()), double.errors()


def test_tf32_changes_a_matrix_multiply_and_without_it_the_result_is_float32_math(double: Double) -> None:
    rng = np.random.default_rng(9)
    a, b = rng.standard_normal((16, 256)).astype(np.float32), rng.standard_normal((256, 8)).astype(np.float32)

    def product(tf32: bool) -> np.ndarray:
        builder, network = new_network(double)
        x = network.add_input("a", double.trt.DataType.FLOAT, a.shape)
        weights = network.add_constant(b.shape, b).get_output(0)
        y = network.add_matrix_multiply(
            x, double.trt.MatrixOperation.NONE, weights, double.trt.MatrixOperation.NONE
        ).get_output(0)
        y.name = "y"
        network.mark_output(y)
        return run(double, build(double, builder, network, {}, tf32=tf32), {"a": a})["y"]

    exact, tf32 = product(False), product(True)
    np.testing.assert_array_equal(exact, (a.astype(np.float64) @ b.astype(np.float64)).astype(np.float32))
    np.testing.assert_array_equal(
        tf32, (round_tf32(a).astype(np.float64) @ round_tf32(b).astype(np.float64)).astype(np.float32)
    )
    assert np.mean(np.abs(tf32 - exact) / np.abs(exact).max()) > 1e-5


def test_tf32_rounding_keeps_ten_mantissa_bits_rounding_ties_to_even() -> None:
    step = 2.0**-10
    values = np.array(
        [1 + step / 2, 1 + 3 * step / 2, 1 + step / 2 + 2.0**-20, -(1 + 3 * step / 2), np.inf], np.float32
    )
    np.testing.assert_array_equal(
        round_tf32(values), np.array([1, 1 + 2 * step, 1 + step, -(1 + 2 * step), np.inf], np.float32)
    )


def test_weak_typing_on_ten_computes_in_float16_with_the_fp16_flag() -> None:
    d = make_double("10.16")
    x = np.random.default_rng(4).standard_normal((2, 6)).astype(np.float32)

    def relu_scaled(flags: tuple[str, ...], strongly_typed: bool) -> Any:
        builder, network = new_network(d, strongly_typed=strongly_typed)
        tensor = network.add_input("x", d.trt.DataType.FLOAT, x.shape)
        scale = network.add_constant((1, 6), np.full(6, 1.1, dtype=np.float32)).get_output(0)
        y = network.add_elementwise(tensor, scale, d.trt.ElementWiseOperation.PROD).get_output(0)
        y.name = "y"
        network.mark_output(y)
        return build(d, builder, network, {}, flags=flags)

    half = run(d, relu_scaled(("FP16",), strongly_typed=False), {"x": x})["y"]
    expected = (
        (x.astype(np.float16).astype(np.float32) * np.float32(np.float16(1.1))).astype(np.float16).astype(np.float32)
    )
    np.testing.assert_array_equal(half, expected)
    assert relu_scaled(("FP16",), strongly_typed=True) is None
    assert any("cannot be used with a strongly typed network" in error for error in d.errors())


def test_the_module_level_dtype_aliases_declare_inputs(double: Double) -> None:
    builder, network = new_network(double)
    network_with_output(network, network.add_input("x", double.trt.float32, (2, 3)))
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(run(double, build(double, builder, network, {}), {"x": x})["y"], x)
    with pytest.raises(AttributeError, match="has no attribute float64: not in the real API snapshot"):
        double.trt.float64  # noqa: B018


def test_a_convolution_with_an_empty_bias_has_no_bias(double: Double) -> None:
    """TensorRT takes an empty trt.Weights() as "no bias" (measured on TensorRT for RTX)."""
    builder, network = new_network(double)
    x = network.add_input("x", double.trt.float32, (1, 2, 5, 6))
    layer = network.add_convolution_nd(x, 3, (3, 3), double.trt.Weights(KERNEL), double.trt.Weights())
    y = layer.get_output(0)
    y.name = "y"
    network.mark_output(y)
    values = np.random.default_rng(8).standard_normal((1, 2, 5, 6)).astype(np.float32)
    got = run(double, build(double, builder, network, {}), {"x": values})["y"]
    expected = np.einsum("nchwij,kcij->nkhw", _windows(values.astype(np.float64), 3, 1, 0, 0.0), KERNEL)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


# --- quantization --------------------------------------------------------------------------------------

QDQ_SCALES = np.array([0.5, 0.25], dtype=np.float32)  # per channel (axis 1)


def _quantized_reference(x: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """int8 Q then DQ, written out: ties round to even, values saturate at -128 and 127."""
    q = np.clip(np.round(x / scale), -128, 127)  # np.round rounds half to even
    return (q * scale).astype(np.float32)


def _qdq_model(zero_point: int) -> ModelProto:
    node = helper.make_node
    graph = helper.make_graph(
        [
            node("QuantizeLinear", ["x", "s", "z"], ["q"], axis=1),
            node("DequantizeLinear", ["q", "s", "z"], ["y"], axis=1),
        ],
        "qdq",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 2])],
        initializer=[
            numpy_helper.from_array(QDQ_SCALES, "s"),
            numpy_helper.from_array(np.full(2, zero_point, dtype=np.int8), "z"),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])


QDQ_INPUT = np.array([[0.25, 0.125], [0.75, -0.375], [100.0, -40.0]], dtype=np.float32)  # ties and saturation


def test_quantize_dequantize_per_channel_rounds_ties_to_even_and_saturates(double: Double) -> None:
    trt = double.trt
    builder, network = new_network(double)
    x = network.add_input("x", trt.float32, (3, 2))
    scale = network.add_constant((2,), QDQ_SCALES).get_output(0)
    quantize = network.add_quantize(x, scale, trt.int8)
    quantize.axis = 1
    assert quantize.get_output(0).dtype == trt.int8
    dequantize = network.add_dequantize(quantize.get_output(0), scale, trt.float32)
    dequantize.axis = 1
    y = dequantize.get_output(0)
    y.name = "y"
    network.mark_output(y)
    by_api = run(double, build(double, builder, network, {}), {"x": QDQ_INPUT})["y"]
    builder, network = new_network(double)
    _weights_owner = parse(double, network, _qdq_model(0))
    by_parser = run(double, build(double, builder, network, {}), {"x": QDQ_INPUT})["y"]
    expected = _quantized_reference(QDQ_INPUT, QDQ_SCALES)
    np.testing.assert_array_equal(by_api, expected)
    np.testing.assert_array_equal(by_parser, expected)
    assert expected[0].tolist() == [0.0, 0.0] and expected[2].tolist() == [63.5, -32.0]


def test_a_per_channel_scale_needs_its_axis(double: Double) -> None:
    trt = double.trt
    builder, network = new_network(double)
    x = network.add_input("x", trt.float32, (3, 2))
    scale = network.add_constant((2,), QDQ_SCALES).get_output(0)
    network.mark_output(network.add_quantize(x, scale, trt.int8).get_output(0))  # axis stays -1
    assert build(double, builder, network, {}) is None
    assert "ScaleMode is illegal" in double.errors()[-1]


def test_a_non_zero_zero_point_is_refused_by_the_parser_and_by_the_builder(double: Double) -> None:
    """TensorRT's parser refuses it at parse time; a network-API zero point (set_input 2) fails the build."""
    _, network = new_network(double)
    parser = double.trt.OnnxParser(network, double.logger)
    assert not parser.parse(_qdq_model(3).SerializeToString())
    error = parser.get_error(0)
    assert (error.code(), error.node()) == (double.trt.ErrorCode.INVALID_NODE, 0)
    assert "Non-zero zero point is not supported" in error.desc()
    trt = double.trt
    for zero in (0.0, 3.0):
        builder, network = new_network(double)
        x = network.add_input("x", trt.float32, (3, 2))
        scale = network.add_constant((), np.array(0.5, dtype=np.float32)).get_output(0)
        zero_point = network.add_constant((), np.array(zero, dtype=np.float32)).get_output(0)
        quantize = network.add_quantize(x, scale, trt.int8)
        quantize.set_input(2, zero_point)
        network.mark_output(network.add_dequantize(quantize.get_output(0), scale, trt.float32).get_output(0))
        assert (build(double, builder, network, {}) is None) == bool(zero)
    assert "has `zero_point` whose coefficients aren't all zeros" in double.errors()[-1]


def test_add_quantize_without_output_type_exists_on_ten_only() -> None:
    for version, works in (("10.16", True), ("11.4", False)):
        d = make_double(version)
        _, network = new_network(d)
        x = network.add_input("x", d.trt.float32, (2,))
        scale = network.add_constant((), np.array(0.5, dtype=np.float32)).get_output(0)
        if works:
            assert network.add_quantize(x, scale).get_output(0).dtype == d.trt.int8
        else:
            with pytest.raises(TypeError, match="output_type is required"):
                network.add_quantize(x, scale)


def test_a_bfloat16_convolution_rounds_its_output_to_bfloat16(double: Double) -> None:
    """Cast to BF16, a BF16 convolution (bfloat16 weights, float32 accumulation), cast back: parsed from ONNX."""
    bfloat16 = pytest.importorskip("ml_dtypes").bfloat16
    node = helper.make_node
    graph = helper.make_graph(
        [
            node("Cast", ["x"], ["xb"], to=TensorProto.BFLOAT16),
            node("Conv", ["xb", "w", "b"], ["yb"], kernel_shape=[3, 3]),
            node("Cast", ["yb"], ["y"], to=TensorProto.FLOAT),
        ],
        "bf16",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 5, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 3, 4])],
        initializer=[
            numpy_helper.from_array(KERNEL.astype(bfloat16), "w"),
            numpy_helper.from_array(BIAS.astype(bfloat16), "b"),
        ],
    )
    builder, network = new_network(double)
    _weights_owner = parse(double, network, helper.make_model(graph, opset_imports=[helper.make_opsetid("", 22)]))
    values = np.random.default_rng(10).standard_normal((1, 2, 5, 6)).astype(np.float32)
    got = run(double, build(double, builder, network, {}), {"x": values})["y"]
    as_bf16 = [a.astype(bfloat16).astype(np.float32) for a in (values, KERNEL, BIAS)]
    conv = np.einsum("nchwij,kcij->nkhw", _windows(as_bf16[0], 3, 1, 0, 0.0), as_bf16[1]) + as_bf16[2][:, None, None]
    np.testing.assert_array_equal(got, conv.astype(np.float32).astype(bfloat16).astype(np.float32))


# --- the execution protocol --------------------------------------------------------------------------


def network_with_output(network: Any, tensor: Any) -> Any:
    y = network.add_identity(tensor).get_output(0)
    y.name = "y"
    network.mark_output(y)
    return network


def dynamic_engine(d: Double) -> Any:
    """y = identity(x) for x of shape (-1, 4), profile (1, 4) .. (3, 4)."""
    builder, network = new_network(d)
    network_with_output(network, network.add_input("x", d.trt.DataType.FLOAT, (-1, 4)))
    plan = build(d, builder, network, {"x": ((1, 4), (2, 4), (3, 4))})
    return d.trt.Runtime(d.logger).deserialize_cuda_engine(plan)


def test_execute_refuses_unset_shapes_and_addresses_and_a_capturing_stream(double: Double) -> None:
    engine = dynamic_engine(double)
    context = engine.create_execution_context()
    assert tuple(context.get_tensor_shape("y")) == (-1, 4)
    assert not context.execute_async_v3(STREAM)
    assert "input tensors' dimensions are not specified: x" in double.errors()[-1]
    assert context.set_input_shape("x", (2, 4))
    assert tuple(context.get_tensor_shape("y")) == (2, 4)
    context.set_tensor_address("x", double.memory.alloc(32))
    assert not context.execute_async_v3(STREAM)
    assert "Address is not set for output tensor y" in double.errors()[-1]
    context.set_tensor_address("y", double.memory.alloc(32))
    double.memory.capturing.add(STREAM)
    assert not context.execute_async_v3(STREAM)
    assert "cannot be captured into a CUDA graph" in double.errors()[-1]
    assert double.memory.synchronized == []
    double.memory.capturing.clear()
    assert context.execute_async_v3(STREAM)
    assert double.memory.synchronized == [STREAM]


def test_set_input_shape_refuses_shapes_outside_the_profile_naming_the_tensor_and_range(double: Double) -> None:
    context = dynamic_engine(double).create_execution_context()
    assert not context.set_input_shape("x", (5, 4))
    assert "input 'x'" in double.errors()[-1] and "min [1,4] to max [3,4]" in double.errors()[-1]
    assert not context.set_input_shape("x", (2, 4, 1))
    assert "has rank 2" in double.errors()[-1] and "min [1,4] to max [3,4]" in double.errors()[-1]
    assert not context.set_input_shape("y", (2, 4))
    assert not context.all_binding_shapes_specified


def test_the_engine_describes_its_io_and_profiles(double: Double) -> None:
    engine = dynamic_engine(double)
    trt = double.trt
    assert [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)] == ["x", "y"]
    assert (
        engine.get_tensor_mode("x") == trt.TensorIOMode.INPUT and engine.get_tensor_mode("y") == trt.TensorIOMode.OUTPUT
    )
    assert engine.get_tensor_dtype("y") == trt.DataType.FLOAT
    assert [tuple(dims) for dims in engine.get_tensor_profile_shape("x", 0)] == [(1, 4), (2, 4), (3, 4)]
    assert engine.num_optimization_profiles == 1 and engine.num_layers == 1
    assert engine.device_memory_size_v2 == 0  # identity: no intermediate tensor


# --- plans, timing caches, faults --------------------------------------------------------------------


def identity_plan(d: Double) -> Any:
    builder, network = new_network(d)
    return build(d, builder, network_with_output(network, network.add_input("x", d.trt.DataType.FLOAT, (2, 3))), {})


def test_a_plan_round_trips_through_serialize() -> None:
    d = make_double("10.16")
    plan = identity_plan(d)
    engine = d.trt.Runtime(d.logger).deserialize_cuda_engine(plan)
    assert bytes(engine.serialize()) == bytes(plan)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(run(d, engine.serialize(), {"x": x})["y"], x)


def test_plans_of_another_version_or_damaged_ones_are_refused_with_an_error() -> None:
    ten, eleven = make_double("10.16"), make_double("11.4")
    plan = bytes(identity_plan(ten))
    runtime = eleven.trt.Runtime(eleven.logger)
    assert runtime.deserialize_cuda_engine(plan) is None
    assert (
        "The engine plan file is not compatible with this version of TensorRT, expecting library version 11.4.0.106 "
        "got 10.16.1.11, please rebuild." in eleven.errors()[-1]
    )
    runtime = ten.trt.Runtime(ten.logger)
    corrupted = plan[:-40] + bytes([plan[-40] ^ 1]) + plan[-39:]
    for damaged, message in ((plan[:-7], "truncated"), (corrupted, "corrupted"), (b"not a plan", "Magic tag")):
        assert runtime.deserialize_cuda_engine(damaged) is None
        assert message in ten.errors()[-1]


def test_the_timing_cache_round_trips_and_foreign_caches_are_refused() -> None:
    d, other = make_double("11.4"), make_double("10.16")
    builder, network = new_network(d)
    network_with_output(network, network.add_input("x", d.trt.DataType.FLOAT, (2, 3)))
    config = builder.create_builder_config()
    assert config.set_timing_cache(config.create_timing_cache(b""), False)
    assert builder.build_serialized_network(network, config) is not None
    saved = bytes(config.get_timing_cache().serialize())
    reloaded = builder.create_builder_config()
    assert reloaded.set_timing_cache(reloaded.create_timing_cache(saved), False)
    assert bytes(reloaded.get_timing_cache().serialize()) == saved
    foreign = bytes(other.trt.Builder(other.logger).create_builder_config().create_timing_cache(b"").serialize())
    for data, message in ((b"garbage", "not a timing cache"), (foreign, "created by TensorRT 10.16.1.11")):
        assert not reloaded.set_timing_cache(reloaded.create_timing_cache(data), False)
        assert message in d.errors()[-1]


def test_the_build_error_fault_fails_the_next_build_only(double: Double) -> None:
    double.trt._faults.build_error = "Error Code 2: OutOfMemory (Requested size was 1073741824 bytes.)"
    assert identity_plan(double) is None
    assert "OutOfMemory" in double.errors()[-1]
    assert identity_plan(double) is not None


def test_the_parser_reshapes_and_broadcasts_lower_ranks_as_onnx_does(double: Double) -> None:
    """Reshape with 0 and -1; MatMul and Add against lower-rank operands (an initializer and an input)."""
    rng = np.random.default_rng(6)
    weight, offset = rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal(4).astype(np.float32)
    node = helper.make_node
    graph = helper.make_graph(
        [
            node("Reshape", ["x", "shape"], ["grouped"]),
            node("MatMul", ["grouped", "w"], ["product"]),
            node("Add", ["product", "b"], ["shifted"]),
            node("Sub", ["shifted", "offset"], ["y"]),
        ],
        "broadcast",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, [4]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2, 4])],
        initializer=[
            numpy_helper.from_array(np.array([0, -1, 3], dtype=np.int64), "shape"),
            numpy_helper.from_array(weight, "w"),
            numpy_helper.from_array(offset, "offset"),
        ],
    )
    builder, network = new_network(double)
    _weights_owner = parse(double, network, helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    corners = {"x": ((1, 6), (2, 6), (4, 6)), "b": ((4,), (4,), (4,))}
    x, b = rng.standard_normal((3, 6)).astype(np.float32), rng.standard_normal(4).astype(np.float32)
    got = run(double, build(double, builder, network, corners), {"x": x, "b": b})["y"]
    expected = x.astype(np.float64).reshape(3, 2, 3) @ weight.astype(np.float64) + b - offset
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


def test_the_parser_reports_an_op_it_has_no_importer_for(double: Double) -> None:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Frobnicate", ["a"], ["y"], name="frob")],
        "unknown",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    _, network = new_network(double)
    parser = double.trt.OnnxParser(network, double.logger)
    assert not parser.parse(helper.make_model(graph).SerializeToString())
    assert parser.num_errors == 1
    error = parser.get_error(0)
    assert "No importer registered for op: Frobnicate" in error.desc()
    assert (error.code(), error.node(), error.node_name()) == (double.trt.ErrorCode.UNSUPPORTED_NODE, 1, "frob")
    assert "Frobnicate" in double.errors()[-1]


# --- the project's cases -----------------------------------------------------------------------------


def _case_engine(d: Double, case: Case, precision: Precision, workflow: str) -> Any:
    builder, network = new_network(d)
    if workflow == "onnx-parser":
        _weights_owner = parse(
            d, network, onnx.load_from_string(derive(case, precision, PrecisionOptions()).model_bytes)
        )
    else:
        assert case.define_network is not None
        scales = derive(case, precision, PrecisionOptions()).scales if precision is Precision.INT8 else None
        weights_in_use = NetworkPrecision(d.trt, network, precision, scales or {})
        case.define_network(network, d.trt, weights_in_use)
    profile = case.profiles[0]
    corners = {
        spec.name: (profile.min[spec.name], profile.opt[spec.name], profile.max[spec.name]) for spec in case.inputs
    }
    return build(d, builder, network, corners, tf32=precision is Precision.TF32)


@pytest.mark.parametrize("workflow", ("onnx-parser", "network-api"))
@pytest.mark.parametrize("precision", list(Precision), ids=lambda p: p.value)
@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.name)
def test_the_cases_match_their_references_within_tolerance(
    double: Double, case: Case, precision: Precision, workflow: str
) -> None:
    if workflow == "network-api" and case.define_network is None:
        pytest.skip(f"case {case.name} has no network definition")
    if precision not in case.precisions:
        pytest.skip(f"case {case.name} has no {precision.value}")
    inputs = case.generate_inputs(case.profiles[0].shapes(ShapePoint.OPT), np.random.default_rng(0))
    outputs = run(double, _case_engine(double, case, precision, workflow), inputs)
    failures = [e.failure for e in compare_outputs(case, precision, outputs, case.reference(inputs)) if e.failure]
    assert failures == []


def test_the_double_runs_on_the_host_cuda_stand_in() -> None:
    cuda = pytest.importorskip("tests.cuda_host")
    d = make_double("11.4", cuda)
    trt, builder = d.trt, d.trt.Builder(d.logger)
    network = builder.create_network(0)
    network_with_output(network, network.add_input("x", trt.DataType.FLOAT, (2, 3)))
    engine = trt.Runtime(d.logger).deserialize_cuda_engine(
        builder.build_serialized_network(network, builder.create_builder_config())
    )
    context, stream = engine.create_execution_context(), cuda.Stream()
    x, y = np.arange(6, dtype=np.float32).reshape(2, 3), np.zeros((2, 3), dtype=np.float32)
    buffers = {name: cuda.DeviceBuffer(24) for name in ("x", "y")}
    for name, buffer in buffers.items():
        assert context.set_tensor_address(name, buffer.ptr)
    assert context.set_input_shape("x", x.shape)
    cuda.copy_to_device(buffers["x"], x, stream)
    assert context.execute_async_v3(stream.handle)
    cuda.copy_to_host(y, buffers["y"], stream)
    stream.synchronize()
    np.testing.assert_array_equal(y, x)
