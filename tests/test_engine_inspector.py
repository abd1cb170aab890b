"""Proof of precision: the TensorRT adapter's engines report each layer's compute precision from the
engine inspector (harness/precision/layers.py). On the strict double of TensorRT 10.16 and 11.4,
whose inspector describes the layers it really runs; on TensorRT for RTX, only what its builder
shows without a GPU its runtime supports."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import numpy as np
import onnx
import pytest

from cases import ALL_CASES, conv_add_relu, identity, mnist
from harness.backends import BuildRequest
from harness.build import EngineStore
from harness.case import Case, Precision
from harness.precision.derive import DerivedModel
from harness.precision.layers import LayerPrecision, precision_problems, summary
from harness.run import run_engine
from tests.trt_support import DOUBLE_VERSIONS, RTX_MISSING, adapter_backend, double_library, rtx_library

# The case's own layers (the identity case has only an Identity): they must run at the engine's precision.
COMPUTE = {"Convolution", "MatrixMultiply", "ElementWise", "Activation", "Pooling", "Softmax", "Identity"}


def _layers(library: ModuleType, case: Case, precision: Precision, **options: object) -> tuple[LayerPrecision, ...]:
    engine = EngineStore(None).get(adapter_backend(library, **options), case, precision, 0).engine
    layers = engine.layer_precisions()
    assert layers is not None
    return layers


def _mislabelled(library: ModuleType, case: Case, **options: object) -> tuple[LayerPrecision, ...]:
    """An engine labelled fp16 whose model is the float32 one: the bug a label alone cannot catch."""
    backend = adapter_backend(library, **options)
    model = EngineStore(None).model_bytes(case, Precision.FP32)
    request = BuildRequest(case, Precision.FP16, 0, DerivedModel(Precision.FP32, model))
    layers = backend.load(backend.build(request).data, request).layer_precisions()
    assert layers is not None
    return layers


@pytest.mark.parametrize("precision", [Precision.FP32, Precision.FP16], ids=lambda p: p.value)
@pytest.mark.parametrize("case", ALL_CASES, ids=lambda case: case.name)
@pytest.mark.parametrize("version", DOUBLE_VERSIONS)
def test_every_case_reports_the_precision_its_layers_compute_in(version: str, case: Case, precision: Precision) -> None:
    layers = _layers(double_library(version), case, precision)
    expected = "Half" if precision is Precision.FP16 else "Float"
    computing = [layer for layer in layers if layer.layer_type in COMPUTE]
    assert computing, summary(layers)
    assert {layer.precision for layer in computing} == {expected}, summary(layers)
    if precision is Precision.FP16:
        assert precision_problems(layers, "Half") == [], summary(layers)
        casts = [layer for layer in layers if layer.layer_type == "Cast"]
        assert casts and all(layer.converts for layer in casts)  # the float32 I/O boundary


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda case: case.name)
@pytest.mark.parametrize("version", DOUBLE_VERSIONS)
def test_an_fp16_label_on_a_float32_model_is_caught(version: str, case: Case) -> None:
    problems = precision_problems(_mislabelled(double_library(version), case), "Half")
    assert problems and all("computes in Float, not Half" in line for line in problems), problems


def test_weak_typing_with_the_fp16_flag_computes_a_float32_model_in_half() -> None:
    """TensorRT 10's BuilderFlag.FP16 lowers float32 layers itself: the report shows it, the label is true."""
    layers = _mislabelled(double_library("10.16"), conv_add_relu.CASE, weak_typing=True)
    assert precision_problems(layers, "Half") == [], summary(layers)
    assert [layer.precision for layer in layers] == ["Half", "Half", "Half"]


def test_a_kept_float32_layer_is_not_a_problem() -> None:
    layers = _mislabelled(double_library("11.4"), identity.CASE)
    assert precision_problems(layers, "Half", kept=[layer.name for layer in layers]) == []
    assert summary(layers, kept=["identity"]) == "identity Float (kept)"


# --- the double's inspector, as the adapter does not drive it -----------------------------------------


def _build(trt: Any, verbosity: str | None) -> Any:
    """conv_add_relu (fp16, dynamic N, H, W) through the double's parser, at a profiling verbosity."""
    logger = _logger(trt)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    case = conv_add_relu.CASE
    parser = trt.OnnxParser(network, logger)  # kept until the build: it owns the network's weights
    assert parser.parse(EngineStore(None).model_bytes(case, Precision.FP16))
    config = builder.create_builder_config()
    if verbosity is not None:
        config.profiling_verbosity = getattr(trt.ProfilingVerbosity, verbosity)
    profile = builder.create_optimization_profile()
    shapes = case.profiles[0]
    for spec in case.inputs:
        profile.set_shape(spec.name, shapes.min[spec.name], shapes.opt[spec.name], shapes.max[spec.name])
    config.add_optimization_profile(profile)
    return trt.Runtime(logger).deserialize_cuda_engine(builder.build_serialized_network(network, config))


def _logger(trt: Any) -> Any:
    """A logger of this library: each double is a module of its own, with its own ILogger class."""

    class Logger(trt.ILogger):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity: Any, msg: str) -> None:
            if severity == trt.ILogger.ERROR:
                self.errors.append(msg)

    return Logger()


@pytest.mark.parametrize("version", DOUBLE_VERSIONS)
def test_the_default_verbosity_gives_names_only_and_none_gives_no_layers(version: str) -> None:
    trt = double_library(version)
    engine = _build(trt, None)
    assert engine.profiling_verbosity == trt.ProfilingVerbosity.LAYER_NAMES_ONLY
    inspector = engine.create_engine_inspector()
    report = json.loads(inspector.get_engine_information(trt.LayerInformationFormat.JSON))
    assert report["Layers"][:3] == ["x_cast_to_conv", "conv", "residual_cast_to_add"]
    assert report["Bindings"] == ["x", "residual", "y"]
    assert inspector.get_layer_information(1, trt.LayerInformationFormat.JSON) == "conv"
    silent = _build(trt, "NONE").create_engine_inspector()
    assert json.loads(silent.get_engine_information(trt.LayerInformationFormat.JSON))["Layers"] == []


@pytest.mark.parametrize("version", DOUBLE_VERSIONS)
def test_detailed_formats_need_the_input_shapes_of_an_execution_context(version: str) -> None:
    trt = double_library(version)
    engine = _build(trt, "DETAILED")
    inspector = engine.create_engine_inspector()
    conv = json.loads(inspector.get_layer_information(1, trt.LayerInformationFormat.JSON))
    assert conv["Inputs"] == [
        {
            "Name": "x_cast_to_conv",
            "Location": "Device",
            "Dimensions": [-1, 8, -1, -1],
            "Format/Datatype": "N/A due to dynamic shapes",
        }
    ]
    context = engine.create_execution_context()
    for name, shape in conv_add_relu.CASE.profiles[0].opt.items():
        context.set_input_shape(name, shape)
    inspector.execution_context = context
    conv = json.loads(inspector.get_layer_information(1, trt.LayerInformationFormat.JSON))
    assert (conv["Name"], conv["LayerType"], conv["ParameterType"]) == (
        "conv",
        "Convolution",
        "Convolution",
    )
    assert conv["Outputs"][0]["Dimensions"] == [4, 16, 32, 32]
    assert conv["Outputs"][0]["Format/Datatype"] == "Row major linear FP16 format"
    assert conv["Weights"] == {"Type": "Half", "Count": 16 * 8 * 3 * 3} and conv["Bias"] == {
        "Type": "Half",
        "Count": 16,
    }
    cast_in = json.loads(inspector.get_layer_information(0, trt.LayerInformationFormat.JSON))
    assert [t["Format/Datatype"] for t in cast_in["Inputs"] + cast_in["Outputs"]] == [
        "Row major linear FP32",
        "Row major linear FP16 format",
    ]


@pytest.mark.parametrize("version", DOUBLE_VERSIONS)
def test_the_inspector_is_strict(version: str) -> None:
    trt = double_library(version)
    inspector = _build(trt, "DETAILED").create_engine_inspector()
    with pytest.raises(AttributeError, match="not in the real API snapshot"):
        inspector.get_layer_info  # noqa: B018
    with pytest.raises(AttributeError, match="not in the real API snapshot"):
        trt.ProfilingVerbosity.VERBOSE  # noqa: B018
    with pytest.raises(TypeError, match="expected tensorrt.ProfilingVerbosity"):
        trt.Builder(_logger(trt)).create_builder_config().profiling_verbosity = 2
    with pytest.raises(NotImplementedError, match="only for LayerInformationFormat.JSON"):
        inspector.get_engine_information(trt.LayerInformationFormat.ONELINE)
    with pytest.raises(NotImplementedError, match="EngineInspector.error_recorder"):
        inspector.error_recorder  # noqa: B018
    assert inspector.get_layer_information(99, trt.LayerInformationFormat.JSON) == ""


# --- TensorRT for RTX: a real builder, whose runtime needs a GPU it supports ---------------------------


def test_tensorrt_for_rtx_builds_with_detailed_verbosity_and_has_the_inspector() -> None:
    rtx = rtx_library()
    if rtx is None:
        pytest.skip(RTX_MISSING)
    assert {"DETAILED", "LAYER_NAMES_ONLY", "NONE"} == set(rtx.ProfilingVerbosity.__members__)
    assert hasattr(rtx.ICudaEngine, "create_engine_inspector") and hasattr(rtx, "EngineInspector")
    config = rtx.Builder(_logger(rtx)).create_builder_config()
    assert config.profiling_verbosity == rtx.ProfilingVerbosity.LAYER_NAMES_ONLY  # the documented default
    config.profiling_verbosity = rtx.ProfilingVerbosity.DETAILED
    assert config.profiling_verbosity == rtx.ProfilingVerbosity.DETAILED
    backend = adapter_backend(rtx)
    case = conv_add_relu.CASE
    request = BuildRequest(case, Precision.FP16, 0, EngineStore(None).derived(case, Precision.FP16))
    artifact = backend.build(request)  # the adapter sets DETAILED: the builder accepts it without a GPU
    assert len(artifact.data) > 0
    problem = backend.runtime_problem()
    if problem is not None:
        pytest.skip(f"the inspector needs a deserialized engine; {rtx.__name__} cannot run engines here: {problem}")
    layers = backend.load(artifact.data, request).layer_precisions()
    assert layers is not None and precision_problems(layers, "Half") == [], summary(layers or ())


@pytest.mark.parametrize("workflow", ("onnx-parser", "network-api"))
@pytest.mark.parametrize("case", [conv_add_relu.CASE, mnist.CASE], ids=lambda case: case.name)
def test_int8_engines_prove_int8_in_both_workflows_and_agree(case: Case, workflow: str) -> None:
    """The network API's Q/DQ layers (NetworkPrecision, with the Q/DQ model's scales) and the parsed Q/DQ model
    give the same engine on the double: every quantized node runs in an Int8 layer, and the outputs match."""
    from harness.precision.proof import problems, quantized_nodes

    store = EngineStore(None)
    engine = store.get(adapter_backend(double_library("11.4"), workflow), case, Precision.INT8, 0).engine
    parsed = store.get(adapter_backend(double_library("11.4")), case, Precision.INT8, 0).engine
    model = onnx.load_from_string(store.model_bytes(case, Precision.INT8))
    layers = engine.layer_precisions()
    assert layers is not None
    assert problems(layers, Precision.INT8, (), quantized_nodes(model)) == [], summary(layers)
    inputs = case.make_inputs(case.profiles[0].opt, np.random.default_rng(0))
    ours, theirs = run_engine(case, 0, engine, inputs), run_engine(case, 0, parsed, inputs)
    for name in ours:
        np.testing.assert_array_equal(ours[name], theirs[name])


def test_an_int8_engine_without_int8_layers_is_caught() -> None:
    """A float32 engine under an int8 label (the Q/DQ pairs dropped) fails the proof naming the nodes."""
    from harness.precision.proof import problems

    layers = [LayerPrecision("conv", "Convolution", "Float"), LayerPrecision("relu", "Activation", "Float")]
    found = problems(layers, Precision.INT8, (), {"conv"})
    assert found == ["node 'conv' was quantized but runs in no Int8 layer (conv Float)"]
