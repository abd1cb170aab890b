"""Per-layer profiles of TensorRT engines (TensorRTEngine.profile_layers): IProfiler on the execution context, joined
with the engine inspector; on the strict double of TensorRT 10.16 and 11.4 and, marked `gpu`, on real TensorRT.

The double's layer times come from its cost model (tests/trt_double/profiler.py), never from a clock: what these
tests prove on the double is the plumbing (every layer reported, joined, diffed), not any TensorRT timing."""

from __future__ import annotations

import json
from types import ModuleType

import numpy as np
import pytest

from cases import conv_add_relu, mnist
from harness.backends import BUILTIN_BACKENDS
from harness.backends.trt import PROFILE_SOURCE, TensorRTEngine, _inspected_layers, _layer_time
from harness.build import EngineStore
from harness.case import Case, Precision, ShapePoint
from harness.errors import BuildError
from harness.profile import diff
from tests.trt_double import absent_from
from tests.trt_support import DOUBLE_VERSIONS, adapter_backend, double_library, is_double


@pytest.fixture(
    params=[*DOUBLE_VERSIONS, pytest.param("real", marks=pytest.mark.gpu)],
    ids=lambda version: "real-tensorrt" if version == "real" else f"double-{version}",
)
def library(request: pytest.FixtureRequest) -> ModuleType:
    if request.param == "real":
        return pytest.importorskip("tensorrt", reason="real TensorRT is not installed: pip install 'trt-harness[gpu]'")
    return double_library(request.param)


@pytest.fixture(params=DOUBLE_VERSIONS, ids=lambda version: f"double-{version}")
def double(request: pytest.FixtureRequest) -> ModuleType:
    return double_library(request.param)


def inputs_for(case: Case) -> dict[str, np.ndarray]:
    shapes = case.profiles[0].shapes(ShapePoint.OPT)
    return case.generate_inputs(shapes, np.random.default_rng(case.input_seed(0, ShapePoint.OPT, 0)))


def engine_of(
    library: ModuleType, case: Case = conv_add_relu.CASE, workflow: str = "onnx-parser", **options: object
) -> TensorRTEngine:
    engine = EngineStore(None).get(adapter_backend(library, workflow, **options), case, Precision.FP16, 0).engine
    assert isinstance(engine, TensorRTEngine)
    return engine


def inspector_names(engine: TensorRTEngine) -> list[str]:
    precisions = engine.layer_precisions()
    assert precisions is not None
    return [layer.name for layer in precisions]


@pytest.mark.parametrize("case", [conv_add_relu.CASE, mnist.CASE], ids=lambda case: case.name)
def test_every_layer_is_timed_and_described_by_the_inspector(library: ModuleType, case: Case) -> None:
    engine = engine_of(library, case)
    profile = engine.profile_layers(inputs_for(case), runs=3)
    assert profile.source == PROFILE_SOURCE and profile.runs == 3
    assert [layer.name for layer in profile.layers] == inspector_names(engine)  # every layer, in execution order
    for layer in profile.layers:
        assert layer.median_us > 0 and layer.kind and layer.tactic and layer.formats and layer.precision
    # The ONNX parser marks its layers with the nodes they compute; the double fuses nothing: one node each.
    assert all(layer.fused for layer in profile.layers)
    if is_double(library):
        convolutions = [layer for layer in profile.layers if layer.kind == "Convolution"]
        assert convolutions and all(layer.tactic == "numpy_double_convolution_direct" for layer in convolutions)
        assert all(len(layer.fused) == 1 for layer in profile.layers)
        assert {layer.precision for layer in convolutions} == {"Half"}


def test_a_network_defined_in_code_has_no_onnx_nodes_so_its_layers_stand_for_themselves(library: ModuleType) -> None:
    engine = engine_of(library, workflow="network-api")
    profile = engine.profile_layers(inputs_for(conv_add_relu.CASE), runs=1)
    assert profile.layers and all(layer.fused == () for layer in profile.layers)
    assert all(layer.nodes == {layer.name} for layer in profile.layers)


def test_a_fused_layer_as_tensorrt_reports_it_computes_every_onnx_node_of_its_metadata() -> None:
    """The shape of a real engine's layer (trt-engine-explorer's example graphs): a convolution with its ReLU fused,
    tactic by name, channel-major formats; a reformat layer has a tactic value only and no metadata."""
    report = json.dumps(
        {
            "Layers": [
                {
                    "Name": "/conv/Conv + /relu/Relu",
                    "LayerType": "CaskConvolution",
                    "Inputs": [{"Name": "x", "Format/Datatype": "Channel major FP16 format where channel % 8 == 0"}],
                    "Outputs": [{"Name": "r", "Format/Datatype": "Channel major FP16 format where channel % 8 == 0"}],
                    "TacticName": "sm90_xmma_fprop_implicit_gemm_f16f16_f16f16_f16_nhwckrsc_nhwc",
                    "TacticValue": "0x2b9e8b3d1e5c0c5e",
                    "Metadata": "[ONNX Layer: /conv/Conv]\x1f[ONNX Layer: /relu/Relu]",
                },
                {
                    "Name": "Reformatting CopyNode for Output Tensor 0 to /conv/Conv + /relu/Relu",
                    "LayerType": "Reformat",
                    "Inputs": [{"Name": "r", "Format/Datatype": "Channel major FP16 format where channel % 8 == 0"}],
                    "Outputs": [{"Name": "y", "Format/Datatype": "Row major linear FP16 format"}],
                    "TacticValue": "0x00000000000003e8",
                },
            ],
            "Bindings": ["x", "y"],
        }
    )
    described = _inspected_layers(report)
    fused = _layer_time("/conv/Conv + /relu/Relu", 12.5, described["/conv/Conv + /relu/Relu"])
    assert fused.fused == ("/conv/Conv", "/relu/Relu") and fused.kind == "CaskConvolution"
    assert fused.tactic == "sm90_xmma_fprop_implicit_gemm_f16f16_f16f16_f16_nhwckrsc_nhwc"
    assert fused.precision == "Half" and len(fused.formats) == 2
    reformat_name = "Reformatting CopyNode for Output Tensor 0 to /conv/Conv + /relu/Relu"
    reformat = _layer_time(reformat_name, 1.0, described[reformat_name])
    assert reformat.tactic == "0x00000000000003e8" and reformat.fused == ()
    assert _layer_time("a layer the inspector does not name", 2.0, None).kind == ""


def test_a_plan_without_detailed_verbosity_gives_layer_names_only() -> None:
    assert _inspected_layers(json.dumps({"Layers": ["conv", "relu"], "Bindings": ["x", "y"]})) == {}
    with pytest.raises(ValueError, match="not JSON"):
        _inspected_layers("conv\nrelu")


def test_the_profiler_comes_off_and_profiling_never_replays_the_cuda_graph(library: ModuleType) -> None:
    engine = engine_of(library, cuda_graph=True)
    inputs = inputs_for(conv_add_relu.CASE)
    host_work_on_real_cuda = is_double(library) and engine.cuda.__name__.endswith("cuda_rt")
    if not host_work_on_real_cuda:  # the double computes on the host: a real CUDA graph cannot capture it
        engine.timer(inputs)()  # a captured graph exists before the profiled runs
    profile = engine.profile_layers(inputs, runs=2)
    assert engine.context.profiler is None
    assert len(profile.layers) == len(inspector_names(engine))
    np.testing.assert_array_equal(engine.infer(inputs)["y"], engine.infer(inputs)["y"])


def test_at_least_one_run_is_needed(library: ModuleType) -> None:
    with pytest.raises(ValueError, match="at least one run, got 0"):
        engine_of(library).profile_layers(inputs_for(conv_add_relu.CASE), runs=0)


def test_the_tensorrt_descriptors_say_they_profile_layers() -> None:
    assert all(BUILTIN_BACKENDS[name].profiles_layers for name in ("trt", "trt-net", "rtx", "rtx-net"))


def test_profiling_uses_only_names_every_snapshot_has(double: ModuleType) -> None:
    engine = engine_of(double)
    double._accessed.clear()
    engine.profile_layers(inputs_for(conv_add_relu.CASE), runs=1)
    assert ("IExecutionContext", "profiler") in double._accessed
    assert {version: absent_from(double._accessed, version) for version in ("10.13", "10.16", "11.4")} == {
        "10.13": [],
        "10.16": [],
        "11.4": [],
    }


def test_an_injected_slower_tactic_is_named_first_by_the_diff(double: ModuleType) -> None:
    """The double's builder picks the slower tactic for one layer (the test knob _faults.slower_tactic), as an
    upgrade may: the diff of the profiles before and after ranks that layer first, with its tactic change."""
    inputs = inputs_for(conv_add_relu.CASE)
    before = engine_of(double).profile_layers(inputs, runs=3)
    double._faults.slower_tactic = "conv"
    after = engine_of(double).profile_layers(inputs, runs=3)
    changes = diff(before, after)
    first = changes.top()[0]
    assert first.label == "conv"
    assert first.changes == ("tactic numpy_double_convolution_direct -> numpy_double_convolution_unrolled",)
    assert changes.share(first) == pytest.approx(1.0) and changes.grown() == (first,)  # the only one slower
    assert changes.changed_without_time() == ()  # and the only one changed


def test_a_slower_tactic_for_a_layer_the_network_lacks_fails_the_build_naming_the_layers(double: ModuleType) -> None:
    double._faults.slower_tactic = "no_such_layer"
    with pytest.raises(BuildError, match=r"_faults.slower_tactic names layer 'no_such_layer'.*one of \[.*'conv'"):
        engine_of(double)


def test_the_double_reports_each_layer_once_per_execution_to_a_profiler_subclass(double: ModuleType) -> None:
    engine = engine_of(double)
    reported: list[tuple[str, float]] = []

    class Recording(double.IProfiler):  # type: ignore[name-defined,misc]
        def __init__(self) -> None:
            double.IProfiler.__init__(self)

        def report_layer_time(self, layer_name: str, ms: float) -> None:
            reported.append((layer_name, ms))

    engine.infer(inputs_for(conv_add_relu.CASE))  # shapes and addresses set
    engine.context.profiler = Recording()
    for _ in range(2):
        assert engine.context.execute_async_v3(engine.stream.handle)
    assert [name for name, _ in reported] == inspector_names(engine) * 2
    assert all(ms > 0 for _, ms in reported)


def test_the_double_refuses_a_profiler_that_is_not_an_initialized_iprofiler(double: ModuleType) -> None:
    context = engine_of(double).context

    class Uninitialized(double.IProfiler):  # type: ignore[name-defined,misc]
        def __init__(self) -> None:
            pass

    with pytest.raises(TypeError, match="expected tensorrt.IProfiler"):
        context.profiler = object()
    with pytest.raises(TypeError, match=r"must call tensorrt.IProfiler.__init__\(self\)"):
        context.profiler = Uninitialized()
    with pytest.raises(RuntimeError, match="pure virtual"):
        double.IProfiler().report_layer_time("conv", 1.0)
