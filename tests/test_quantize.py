"""Tests of harness/precision/quantize.py: Q/DQ int8 models of the built-in cases, their accuracy against the
float32 model in ONNX Runtime, TensorRT for RTX building them, the disk cache, and the errors on bad data."""

from __future__ import annotations

import functools
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import onnxruntime.quantization
import pytest
from onnx import numpy_helper

from cases import ALL_CASES, mnist
from harness.backends import BackendOptions, BuildRequest
from harness.backends.ort import OnnxRuntimeBackend
from harness.case import Precision, Tolerance
from harness.compare import output_errors
from harness.errors import CaseDefinitionError
from harness.precision.derive import DerivedModel
from harness.precision.quantize import (
    CALIBRATORS,
    CalibrationCacheWarning,
    Calibrator,
    QuantizedModel,
    cache_key,
    quantize_int8,
)
from tests.trt_support import RTX_MISSING, adapter_backend, rtx_library

REPO = Path(__file__).resolve().parents[1]
CASES = {case.name: case for case in ALL_CASES}
CALIBRATION_SEEDS = range(8)  # 8 feeds at the opt shapes: 32 mnist images, like the case's own CALIBRATION_IMAGES
QDQ = ("QuantizeLinear", "DequantizeLinear")

each_case = pytest.mark.parametrize("case_name", sorted(CASES))
each_weighted_case = pytest.mark.parametrize("case_name", ["conv_add_relu", "mnist"])
each_calibrator = pytest.mark.parametrize("calibrator", CALIBRATORS)


def float32_model(case_name: str) -> onnx.ModelProto:
    return CASES[case_name].model()


@functools.cache
def calibration(case_name: str) -> tuple[Mapping[str, np.ndarray], ...]:
    case = CASES[case_name]
    return tuple(case.make_inputs(case.profiles[0].opt, np.random.default_rng(seed)) for seed in CALIBRATION_SEEDS)


@functools.cache
def quantized(case_name: str, calibrator: Calibrator) -> QuantizedModel:
    """One quantization per case and calibrator for the whole file (mnist's takes a few tenths of a second)."""
    return quantize_int8(float32_model(case_name), calibration(case_name), calibrator, case_name=case_name)


def session(model_bytes: bytes) -> ort.InferenceSession:
    """The session the harness judges a model by: for a Q/DQ model the exact int8 one (harness/backends/ort.py),
    never ONNX Runtime's fused kernels, whose results depend on the CPU (tests/test_int8_any_cpu.py)."""
    return OnnxRuntimeBackend(BackendOptions()).exact_int8_session(model_bytes)


def initializers(model_bytes: bytes) -> dict[str, np.ndarray]:
    return {
        tensor.name: numpy_helper.to_array(tensor) for tensor in onnx.load_from_string(model_bytes).graph.initializer
    }


# --- the Q/DQ form TensorRT takes ---------------------------------------------------------------------------


@each_weighted_case
@each_calibrator
def test_every_zero_point_is_an_int8_zero(case_name: str, calibrator: Calibrator) -> None:
    model_bytes = quantized(case_name, calibrator).model_bytes
    nodes = [node for node in onnx.load_from_string(model_bytes).graph.node if node.op_type in QDQ]
    stored = initializers(model_bytes)
    assert nodes, "no Q/DQ node: nothing was quantized"
    for node in nodes:
        zero_point = stored[node.input[2]]
        assert zero_point.dtype == np.int8 and not zero_point.any(), f"{node.name}: zero point {zero_point}"


@each_weighted_case
@each_calibrator
def test_weights_have_one_scale_per_output_channel_and_activations_one_scale(
    case_name: str, calibrator: Calibrator
) -> None:
    graph = float32_model(case_name).graph
    weights = {tensor.name: tensor.dims for tensor in graph.initializer}
    # Conv weights are (out, in, kh, kw); the cases' Gemm weights are (in, out), used with transB=0.
    out_channels = {
        node.input[1]: weights[node.input[1]][0 if node.op_type == "Conv" else 1]
        for node in graph.node
        if node.op_type in ("Conv", "Gemm")
    }
    scales = quantized(case_name, calibrator).scales
    assert {name: len(value) for name, value in scales.items() if isinstance(value, list)} == out_channels
    activations = [name for name in scales if name not in out_channels]
    assert activations and all(isinstance(scales[name], float) for name in activations)


def test_the_scales_are_those_of_the_model() -> None:
    """The recorded scales are read back from the Q/DQ scale initializers, not computed beside them."""
    result = quantized("conv_add_relu", "max")
    stored = initializers(result.model_bytes)
    assert result.scales["x"] == float(stored["x_scale"])
    assert result.scales["conv.weight"] == stored["conv.weight_scale"].astype(np.float64).tolist()


# --- accuracy against the float32 model ---------------------------------------------------------------------

# Worst mean relative error (harness/compare.py's formula) of the int8 model against the float32 model over
# seeds 100-119 at min, opt and max, measured with onnxruntime 1.32.0 on x86-64: 0.054 (max) and 0.047
# (percentile), median 0.035. The output's int8 step is ~0.06 (scale of y), so ReLU outputs near 0 that
# come out one step off weigh heavily against the relative-error floor; 0.1 leaves ~1.9x headroom.
CONV_ADD_RELU_MEAN_REL = 0.1


@each_calibrator
@pytest.mark.parametrize("point", ["min", "opt", "max"])
def test_conv_add_relu_int8_is_close_to_float32(calibrator: Calibrator, point: str) -> None:
    case = CASES["conv_add_relu"]
    reference, int8 = (
        session(float32_model(case.name).SerializeToString()),
        session(quantized(case.name, calibrator).model_bytes),
    )
    for seed in (100, 101, 102):
        feed = case.make_inputs(getattr(case.profiles[0], point), np.random.default_rng(seed))
        (expected,), (actual,) = reference.run(None, feed), int8.run(None, feed)
        errors = output_errors("y", actual, expected, Tolerance(mean_rel=CONV_ADD_RELU_MEAN_REL))
        assert errors.mean_rel <= CONV_ADD_RELU_MEAN_REL, f"seed {seed}: {errors}"


# int8 moves mnist's logits by up to ~0.1: measured with onnxruntime 1.32.0 over 2000 noise images whose labels
# were only 0.05 apart in logits at worst, labels agreed on 98.75 % (max) and 98.25 % (percentile), and every
# flip was a near tie in float32 (top-2 gap at most 0.108). The case's generator now redraws gaps below 0.15
# (mnist.LABEL_MARGIN), and over its images int8 agrees on 100 % (1024 images, benchmarks/precision_errors.py);
# the test holds the target, 99 %, and that any flip is a near tie.
MNIST_IMAGES, MNIST_AGREEMENT, MNIST_NEAR_TIE = 200, 0.99, 0.15


@each_calibrator
def test_mnist_int8_labels_agree_with_float32(calibrator: Calibrator) -> None:
    case = CASES["mnist"]
    feed = case.make_inputs({"x": (MNIST_IMAGES, 1, mnist.IMAGE, mnist.IMAGE)}, np.random.default_rng(1000))
    (expected,) = session(float32_model(case.name).SerializeToString()).run(["label"], feed)
    (actual,) = session(quantized(case.name, calibrator).model_bytes).run(["label"], feed)
    agreement = float(np.mean(actual == expected))
    assert agreement >= MNIST_AGREEMENT
    logits = np.sort(mnist.logits(feed["x"]), axis=1)
    gaps = (logits[:, -1] - logits[:, -2])[actual != expected]
    assert np.all(gaps < MNIST_NEAR_TIE), f"labels flipped at float32 top-2 gaps {gaps}"


@each_calibrator
def test_a_model_with_nothing_to_quantize_comes_back_unchanged(calibrator: Calibrator) -> None:
    """identity has no operator ONNX Runtime quantizes (its percentile calibrator would raise "Histogram has
    not been collected"): the float model is returned as is, with no scales, and still runs."""
    result = quantized("identity", calibrator)
    assert result.model_bytes == float32_model("identity").SerializeToString()
    assert result.scales == {}
    x = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
    np.testing.assert_array_equal(session(result.model_bytes).run(None, {"x": x})[0], x)


@pytest.mark.parametrize("case_name", ["conv_add_relu", "mnist"])
def test_the_two_calibrators_give_different_activation_scales(case_name: str) -> None:
    by_max, by_percentile = quantized(case_name, "max").scales, quantized(case_name, "percentile").scales
    assert by_max.keys() == by_percentile.keys()
    assert [name for name in by_max if isinstance(by_max[name], float) and by_max[name] != by_percentile[name]]


# --- TensorRT for RTX builds them -----------------------------------------------------------------------------


@each_case
@each_calibrator
def test_tensorrt_for_rtx_builds_the_int8_model(case_name: str, calibrator: Calibrator) -> None:
    """RTX is strongly typed: the int8 precision comes from the Q/DQ nodes alone, built at Precision.FP32."""
    rtx = rtx_library()
    if rtx is None:
        pytest.skip(RTX_MISSING)
    model = DerivedModel(Precision.INT8, quantized(case_name, calibrator).model_bytes)
    request = BuildRequest(CASES[case_name], Precision.FP32, 0, model)
    assert adapter_backend(rtx).build(request).data


# --- the cache ----------------------------------------------------------------------------------------------


def refuse_to_quantize(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("quantize_static was called: the cache was not used")

    monkeypatch.setattr(onnxruntime.quantization, "quantize_static", refuse)


@each_calibrator
def test_a_warm_call_reads_the_cache_without_calibrating(
    calibrator: Calibrator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, data = float32_model("mnist"), calibration("mnist")
    cold = quantize_int8(model, data, calibrator, case_name="mnist", cache_dir=tmp_path)
    refuse_to_quantize(monkeypatch)
    warm = quantize_int8(model, data, calibrator, case_name="mnist", cache_dir=tmp_path)
    assert warm == cold


def test_a_damaged_cache_entry_is_computed_again(tmp_path: Path) -> None:
    model, data = float32_model("conv_add_relu"), calibration("conv_add_relu")
    cold = quantize_int8(model, data, "max", case_name="conv_add_relu", cache_dir=tmp_path)
    (entry,) = tmp_path.glob("*.onnx")
    entry.write_bytes(entry.read_bytes()[:100])  # a half-written file left by some other tool
    with pytest.warns(CalibrationCacheWarning, match=rf"{entry} is unusable \(.*truncated or corrupted\)"):
        assert quantize_int8(model, data, "max", case_name="conv_add_relu", cache_dir=tmp_path) == cold
    assert entry.read_bytes() == cold.model_bytes


def test_the_key_covers_model_data_and_calibrator() -> None:
    model, data = float32_model("conv_add_relu").SerializeToString(), calibration("conv_add_relu")
    key = cache_key(model, data, "max")
    changed = dict(data[0], x=data[0]["x"].copy())
    changed["x"].flat[0] += 1.0
    others = [
        cache_key(model, data, "percentile"),
        cache_key(model + b" ", data, "max"),
        cache_key(model, data[:-1], "max"),
        cache_key(model, (changed, *data[1:]), "max"),
        cache_key(model, (dict(data[0], x=data[0]["x"].reshape(-1)), *data[1:]), "max"),  # same bytes, other shape
    ]
    assert key == cache_key(model, data, "max")
    assert len({key, *others}) == 1 + len(others)


def test_concurrent_callers_quantize_a_key_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The file lock lets one caller calibrate; the other waits and reads its result (xdist workers alike)."""
    calls: list[int] = []
    quantize_static = onnxruntime.quantization.quantize_static

    def counted(*args: object, **kwargs: object) -> None:
        calls.append(threading.get_ident())
        quantize_static(*args, **kwargs)

    monkeypatch.setattr(onnxruntime.quantization, "quantize_static", counted)
    model, data = float32_model("conv_add_relu"), calibration("conv_add_relu")
    results: list[QuantizedModel] = []

    def call() -> None:
        results.append(quantize_int8(model, data, "percentile", case_name="conv_add_relu", cache_dir=tmp_path))

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and len(results) == 3 and results[0] == results[1] == results[2]


# --- bad input ----------------------------------------------------------------------------------------------


def conv_feed(**changes: object) -> dict[str, object]:
    return {**calibration("conv_add_relu")[0], **changes}


@pytest.mark.parametrize(
    ("feed", "message"),
    [
        ({"x": np.zeros((1, 8, 4, 4), np.float32)}, "has the inputs ['x']; the model's inputs are ['residual', 'x']"),
        (conv_feed(extra=np.zeros(1, np.float32)), "the model's inputs are ['residual', 'x']: give exactly those"),
        (conv_feed(x=np.zeros((1, 8, 4, 4))), "input 'x': is float64, the model takes float32; convert it"),
        (
            conv_feed(x=np.zeros((8, 4, 4), np.float32)),
            "input 'x': has rank 3 (shape (8, 4, 4)), the model takes rank 4",
        ),
        (
            conv_feed(x=np.zeros((1, 3, 4, 4), np.float32)),
            "input 'x': has 3 at dim 1 (shape (1, 3, 4, 4)), the model fixes it at 8",
        ),
        (conv_feed(x=[[0.0]]), "input 'x': is a list, not a numpy array"),
    ],
    ids=["missing-input", "extra-input", "dtype", "rank", "fixed-dim", "not-an-array"],
)
def test_calibration_data_the_model_cannot_take_is_refused(feed: Mapping[str, np.ndarray], message: str) -> None:
    data = (*calibration("conv_add_relu")[:2], feed)
    with pytest.raises(CaseDefinitionError, match="case 'conv_add_relu': calibration sample 2") as raised:
        quantize_int8(float32_model("conv_add_relu"), data, "max", case_name="conv_add_relu")
    assert message in str(raised.value)


def test_empty_calibration_data_is_refused() -> None:
    with pytest.raises(CaseDefinitionError, match="case 'mnist': the calibration data is empty; give at least one"):
        quantize_int8(float32_model("mnist"), [], "max", case_name="mnist")


def test_an_unknown_calibrator_is_refused_naming_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="unknown calibrator 'entropy'; the calibrators are max, percentile"):
        quantize_int8(float32_model("mnist"), calibration("mnist"), "entropy", case_name="mnist")  # type: ignore[arg-type]


@each_calibrator
@pytest.mark.parametrize("zeroed", ["x"])  # residual feeds the Add, which int8 leaves float: it has no scale
def test_an_all_zero_calibration_input_gets_a_usable_scale(calibrator: Calibrator, zeroed: str) -> None:
    """ONNX Runtime gives a tensor whose calibrated range is [0, 0] the scale 1.0 (not 0): the model runs."""
    data = [{**feed, zeroed: np.zeros_like(feed[zeroed])} for feed in calibration("conv_add_relu")[:2]]
    result = quantize_int8(float32_model("conv_add_relu"), data, calibrator, case_name="conv_add_relu")
    assert result.scales[zeroed] == 1.0
    scales = [value for name, value in initializers(result.model_bytes).items() if name.endswith("_scale")]
    assert all(np.all(scale > 0) and np.all(np.isfinite(scale)) for scale in scales)
    (y,) = session(result.model_bytes).run(None, dict(calibration("conv_add_relu")[0]))
    assert np.all(np.isfinite(y))


def test_the_module_imports_without_onnxruntime_or_pytest() -> None:
    """Importing it stays cheap (ONNX Runtime's quantization tool loads on first use) and needs no pytest."""
    probe = (
        "import sys, harness.precision.quantize; print(sorted({'onnxruntime', 'onnx', 'pytest'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
