"""The TensorRT adapter (harness/backends/trt.py) end to end: on the strict double of TensorRT 10.16
and 11.4 (CI), on TensorRT for RTX (a real NVIDIA builder: CI builds with it, and runs with it only
where its runtime accepts the GPU) and on real TensorRT (the `real` parameter, marked `gpu`: what
GPU runners execute).

On the double only the TensorRT library is replaced; CUDA is the host stand-in here and real
cuda-python with HARNESS_TEST_CUDA=real. Nothing measured on the double is a TensorRT result."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from cases import ALL_CASES, conv_add_relu, identity, mnist
from harness.backends import ArtifactIncompatibleError, BuildRequest
from harness.backends.trt import TensorRTBackend
from harness.build import EngineStore
from harness.case import Case, Precision, ShapePoint
from harness.compare import compare_outputs
from harness.errors import BuildError, EngineCacheWarning, ModelRefusedError, ShapeOutsideProfileError
from harness.precision.derive import DerivedModel
from harness.run import run_engine
from tests.trt_support import (
    DOUBLE_VERSIONS,
    RTX_MISSING,
    adapter_backend,
    double_library,
    is_double,
    rtx_library,
)

# TensorRT for RTX documents its timing cache as a no-op (the builder says so: "Timing cache operations
# are no-ops in TensorRT-RTX", a DeprecationWarning since TensorRT-RTX 1.2); see TIMING_CACHE_DOC.
TIMING_CACHE_DOC = "https://docs.nvidia.com/deeplearning/tensorrt-rtx/latest/_static/cpp-api/deprecated.html"


@pytest.fixture(
    params=[*DOUBLE_VERSIONS, "rtx", pytest.param("real", marks=pytest.mark.gpu)],
    ids=lambda version: {"real": "real-tensorrt", "rtx": "tensorrt-rtx"}.get(version, f"double-{version}"),
)
def library(request: pytest.FixtureRequest) -> ModuleType:
    """The TensorRT library the adapter builds with: a fresh double, TensorRT for RTX, or real TensorRT."""
    if request.param == "real":
        return pytest.importorskip("tensorrt", reason="real TensorRT is not installed: pip install 'trt-harness[gpu]'")
    if request.param == "rtx":
        rtx = rtx_library()
        if rtx is None:
            pytest.skip(RTX_MISSING)
        return rtx
    return double_library(request.param)


def needs_double(library: ModuleType) -> None:
    if not is_double(library):
        pytest.skip("drives a fault knob of the double")


# Every case at the precisions it declares, as the matrix runs them (identity declares no int8: its derivation
# refuses it, tests/test_cases.py).
each_declared_precision = pytest.mark.parametrize(
    ("case", "precision"),
    [(case, precision) for case in ALL_CASES for precision in Precision if precision in case.precisions],
    ids=lambda value: value.value if isinstance(value, Precision) else value.name,
)


def needs_runtime(library: ModuleType) -> None:
    """Skip, with the runtime's own reason, where this library's engines cannot run (TensorRT for RTX
    on a machine without a GPU it supports): the test runs engines, not just the builder."""
    problem = backend(library).runtime_problem()
    if problem is not None:
        pytest.skip(f"{library.__name__} cannot run engines here: {problem}")


def backend(library: ModuleType, workflow: str = "onnx-parser", **options: object) -> TensorRTBackend:
    return adapter_backend(library, workflow, **options)


def inputs_for(case: Case, point: ShapePoint = ShapePoint.OPT) -> dict[str, np.ndarray]:
    shapes = case.profiles[0].shapes(point)
    return case.generate_inputs(shapes, np.random.default_rng(case.input_seed(0, point, 0)))


def errors_against_reference(
    store: EngineStore, trt_backend: TensorRTBackend, case: Case, precision: Precision
) -> list:
    engine = store.get(trt_backend, case, precision, 0).engine
    inputs = inputs_for(case)
    outputs = run_engine(case, 0, engine, inputs)
    return compare_outputs(case, precision, outputs, case.reference(inputs))


@pytest.mark.parametrize("workflow", ["onnx-parser", "network-api"])
@each_declared_precision
def test_every_case_builds_in_both_workflows_at_every_precision(
    library: ModuleType, case: Case, precision: Precision, workflow: str
) -> None:
    """The builder alone: what CI proves on TensorRT for RTX, a real NVIDIA builder, without a GPU."""
    built = EngineStore(None).artifact(backend(library, workflow), case, precision, 0)
    assert built.record.artifact_bytes > 0 and not built.record.cached


@pytest.mark.parametrize("workflow", ["onnx-parser", "network-api"])
@each_declared_precision
def test_every_case_matches_the_reference(library: ModuleType, case: Case, precision: Precision, workflow: str) -> None:
    needs_runtime(library)
    store = EngineStore(None)
    errors = errors_against_reference(store, backend(library, workflow), case, precision)
    assert [e.failure for e in errors] == [None] * len(errors), errors


@each_declared_precision
def test_network_api_and_onnx_parser_engines_agree(library: ModuleType, case: Case, precision: Precision) -> None:
    needs_runtime(library)
    store = EngineStore(None)
    parser = store.get(backend(library, "onnx-parser"), case, precision, 0).engine
    network = store.get(backend(library, "network-api"), case, precision, 0).engine
    inputs = inputs_for(case, ShapePoint.MAX)
    errors = compare_outputs(case, precision, run_engine(case, 0, network, inputs), run_engine(case, 0, parser, inputs))
    assert [e.failure for e in errors] == [None] * len(errors), errors


def test_fp32_clears_tf32_and_tf32_sets_it(library: ModuleType) -> None:
    """TensorRT turns TF32 on by default; fp32 must turn it off, tf32 on (the double rounds to TF32)."""
    needs_runtime(library)
    store = EngineStore(None)
    trt_backend = backend(library)
    fp32 = errors_against_reference(store, trt_backend, conv_add_relu.CASE, Precision.FP32)[0]
    tf32 = errors_against_reference(store, trt_backend, conv_add_relu.CASE, Precision.TF32)[0]
    assert fp32.mean_rel < 1e-6 and tf32.mean_rel < 1e-3
    if is_double(library):  # real TensorRT may pick a non-TF32 tactic even when allowed
        assert tf32.mean_rel > 1e-6


def test_shape_outside_profile_is_refused_by_tensorrt_naming_input_and_range(library: ModuleType) -> None:
    needs_runtime(library)
    engine = EngineStore(None).get(backend(library), identity.CASE, Precision.FP32, 0).engine
    with pytest.raises(
        ShapeOutsideProfileError, match=r"input 'x' shape \[7, 1, 1\]: profile 0 allows \[1, 1, 1\] to \[6, 8, 10\]"
    ):
        engine.infer({"x": np.zeros((7, 1, 1), np.float32)})


def _with_unknown_op() -> object:
    model = identity.onnx_model()
    model.graph.node[-1].op_type = "NoSuchOp"
    return model


def test_parser_errors_become_the_build_error_with_the_parsers_own_messages(library: ModuleType) -> None:
    case = dataclasses.replace(identity.CASE, name="unparsable", onnx_model=_with_unknown_op)
    with pytest.raises(BuildError) as raised:
        EngineStore(None).artifact(backend(library), case, Precision.FP32, 0)
    assert not isinstance(raised.value, ModelRefusedError)  # an op ONNX does not define: a failure, not a refusal
    message = str(raised.value)
    assert message.startswith(f"case 'unparsable': {library.__name__} {library.__version__}'s ONNX parser rejected")
    # The parser's own description of the failure, as the library reports it when asked directly.
    assert _parser_errors(library, _with_unknown_op().SerializeToString())[0] in message
    assert "NoSuchOp" in message


def _parser_errors(library: ModuleType, model: bytes) -> list[str]:
    logger = library.Logger(library.Logger.WARNING)
    builder = library.Builder(logger)
    network = builder.create_network(1 << int(library.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = library.OnnxParser(network, logger)
    assert not parser.parse(model)
    return [parser.get_error(i).desc() for i in range(parser.num_errors)]


def test_an_op_the_parser_lacks_is_rejected_naming_the_op(library: ModuleType) -> None:
    """A real ONNX op outside TensorRT's parser: the failure names it and the case."""
    import onnx

    def with_unsupported_op() -> onnx.ModelProto:
        model = identity.onnx_model()
        node = model.graph.node[-1]
        node.op_type, node.domain = "StringNormalizer", ""  # strings: no TensorRT library has a kernel for it
        return model

    case = dataclasses.replace(identity.CASE, name="unsupported", onnx_model=with_unsupported_op)
    # A standard ONNX operator the backend lacks is a refusal (the test skips with it), not a build failure.
    with pytest.raises(
        ModelRefusedError, match=r"case 'unsupported': .*ONNX parser has no importer for operator StringNormalizer"
    ):
        EngineStore(None).artifact(backend(library), case, Precision.FP32, 0)


@pytest.mark.parametrize(
    ("corner", "shape"), [("min", (7, 8, 10)), ("opt", (7, 8, 10))], ids=["min-above-max", "opt-above-max"]
)
def test_a_profile_the_builder_refuses_fails_the_build_with_its_log(
    library: ModuleType, corner: str, shape: tuple[int, ...]
) -> None:
    declared = identity.CASE.profiles[0]
    broken = dataclasses.replace(declared, **{corner: {"x": shape}})
    case = dataclasses.replace(identity.CASE, name="bad-profile", profiles=(broken,))
    with pytest.raises(
        BuildError, match=rf"case 'bad-profile': {library.__name__} .* failed to build the fp32"
    ) as raised:
        EngineStore(None).artifact(backend(library), case, Precision.FP32, 0)
    assert "(TensorRT logged nothing)" not in str(raised.value)  # the builder's own words


def test_a_strongly_typed_network_with_mismatched_types_is_refused(library: ModuleType) -> None:
    def mismatched(network: object, trt: ModuleType, precision: object) -> None:
        x = network.add_input("x", trt.DataType.FLOAT, (-1, -1, -1))  # type: ignore[attr-defined]
        half = network.add_constant((1, 1, 1), trt.Weights(np.ones((1, 1, 1), np.float16))).get_output(0)  # type: ignore[attr-defined]
        total = network.add_elementwise(x, half, trt.ElementWiseOperation.SUM).get_output(0)  # type: ignore[attr-defined]
        network.mark_output(total)  # type: ignore[attr-defined]

    case = dataclasses.replace(identity.CASE, name="mismatched", define_network=mismatched)
    with pytest.raises(BuildError, match=r"case 'mismatched': "):
        EngineStore(None).artifact(backend(library, "network-api"), case, Precision.FP32, 0)


def test_a_name_the_library_lacks_fails_that_case_naming_the_name_and_library(library: ModuleType) -> None:
    def uses_a_missing_name(network: object, trt: ModuleType, precision: object) -> None:
        trt.BuilderFlag.NO_SUCH_FLAG  # noqa: B018 - the access is the point

    case = dataclasses.replace(identity.CASE, name="missing-name", define_network=uses_a_missing_name)
    store = EngineStore(None)
    with pytest.raises(BuildError) as raised:
        store.artifact(backend(library, "network-api"), case, Precision.FP32, 0)
    assert "NO_SUCH_FLAG" in str(raised.value)
    assert f"{library.__name__} {library.__version__} does not have" in str(raised.value)
    assert f"test_trt_backend.py:{uses_a_missing_name.__code__.co_firstlineno + 1}" in str(raised.value)
    assert store.artifact(backend(library, "network-api"), identity.CASE, Precision.FP32, 0).record.artifact_bytes


def test_a_bug_of_the_case_itself_is_not_blamed_on_the_library_and_names_the_line(library: ModuleType) -> None:
    def numpy_typo(network: object, trt: ModuleType, precision: object) -> None:
        np.dtype(np.float32).no_such_attribute  # noqa: B018 - the case's own bug, not TensorRT's

    case = dataclasses.replace(identity.CASE, name="typo", define_network=numpy_typo)
    with pytest.raises(BuildError) as raised:
        EngineStore(None).artifact(backend(library, "network-api"), case, Precision.FP32, 0)
    message = str(raised.value)
    assert "does not have" not in message and "raised AttributeError" in message and "no_such_attribute" in message
    assert f"test_trt_backend.py:{numpy_typo.__code__.co_firstlineno + 1}" in message


def test_builder_failure_carries_the_builder_log(library: ModuleType) -> None:
    needs_double(library)
    library._faults.build_error = "out of memory while allocating 64 GiB of workspace"
    with pytest.raises(BuildError, match=r"case 'identity': tensorrt .* failed to build .*out of memory"):
        EngineStore(None).get(backend(library), identity.CASE, Precision.FP32, 0)


def test_weak_typing_fp16_needs_the_builder_flag_of_10x(library: ModuleType) -> None:
    weak = backend(library, weak_typing=True)
    reason = weak.unsupported_reason(identity.CASE, Precision.FP16)
    if not hasattr(library.BuilderFlag, "FP16"):  # TensorRT 11 and TensorRT for RTX
        assert reason is not None and "does not have" in reason
    else:
        assert reason is None
        errors = errors_against_reference(EngineStore(None), weak, conv_add_relu.CASE, Precision.FP16)
        assert errors[0].failure is None


def test_network_api_without_a_network_function_is_skipped_with_reason(library: ModuleType) -> None:
    case = dataclasses.replace(identity.CASE, define_network=None)
    reason = backend(library, "network-api").unsupported_reason(case, Precision.FP32)
    assert reason is not None and "network-definition function" in reason


@pytest.mark.parametrize("damage", ["truncated", "corrupted"])
def test_damaged_plan_in_the_cache_is_rebuilt_with_a_warning(library: ModuleType, tmp_path: Path, damage: str) -> None:
    trt_backend = backend(library, cache_dir=tmp_path)
    EngineStore(tmp_path).artifact(trt_backend, identity.CASE, Precision.FP32, 0)
    (plan,) = (tmp_path / library.__name__).glob("*.bin")
    data = plan.read_bytes()
    plan.write_bytes(data[: len(data) // 2] if damage == "truncated" else data[:-8] + bytes(8))
    with pytest.warns(EngineCacheWarning, match=rf"case 'identity': cached {library.__name__} artifact .* rebuilding"):
        built = EngineStore(tmp_path).artifact(trt_backend, identity.CASE, Precision.FP32, 0)
    assert not built.record.cached
    assert EngineStore(tmp_path).artifact(trt_backend, identity.CASE, Precision.FP32, 0).record.cached


def test_foreign_plan_vouched_for_by_its_sidecar_is_refused_by_load_and_rebuilt(
    library: ModuleType, tmp_path: Path
) -> None:
    """A plan of another TensorRT version under this key, with a sidecar that vouches for it: only
    the runtime can tell, so it refuses at load and the store rebuilds."""
    needs_runtime(library)
    trt_backend = backend(library, cache_dir=tmp_path)
    EngineStore(tmp_path).get(trt_backend, identity.CASE, Precision.FP32, 0)
    (plan,) = (tmp_path / library.__name__).glob("*.bin")
    foreign = _plan_of_other_version(library)
    plan.write_bytes(foreign)
    _rewrite_sidecar(plan, foreign)
    with pytest.warns(EngineCacheWarning, match=rf"case 'identity': cached {library.__name__} artifact .* rebuilding"):
        built = EngineStore(tmp_path).get(trt_backend, identity.CASE, Precision.FP32, 0)
    assert not built.record.cached
    assert EngineStore(tmp_path).get(trt_backend, identity.CASE, Precision.FP32, 0).record.cached


def test_a_plan_of_another_library_or_version_is_rebuilt_never_loaded(library: ModuleType, tmp_path: Path) -> None:
    """The engine-cache key holds the library and its version: another's plan is never even looked up."""
    other = next(v for v in DOUBLE_VERSIONS if not str(library.__version__).startswith(v))
    other_backend = backend(double_library(other), cache_dir=tmp_path)
    foreign = EngineStore(tmp_path).artifact(other_backend, identity.CASE, Precision.FP32, 0).read()
    this_backend = backend(library, cache_dir=tmp_path)
    loaded: list[bytes] = []
    original_load = this_backend.load
    this_backend.load = lambda artifact, request: loaded.append(artifact) or original_load(artifact, request)  # type: ignore[method-assign]
    built = EngineStore(tmp_path).artifact(this_backend, identity.CASE, Precision.FP32, 0)
    assert not built.record.cached and built.read() != foreign
    assert foreign not in loaded


def _plan_of_other_version(library: ModuleType) -> bytes:
    """A plan built by another TensorRT version: a double's, which every real library rejects too."""
    other = next(v for v in DOUBLE_VERSIONS if not str(library.__version__).startswith(v))
    request = BuildRequest(identity.CASE, Precision.FP32, 0, EngineStore(None).derived(identity.CASE, Precision.FP32))
    return backend(double_library(other)).build(request).data


def _rewrite_sidecar(plan: Path, data: bytes) -> None:
    import hashlib

    sidecar = plan.with_suffix(".json")
    meta = json.loads(sidecar.read_text())
    meta["sha256"] = hashlib.sha256(data).hexdigest()
    sidecar.write_text(json.dumps(meta))


def test_foreign_plan_is_refused_by_load_with_the_runtimes_message(library: ModuleType) -> None:
    needs_runtime(library)
    plan = _plan_of_other_version(library)
    request = BuildRequest(identity.CASE, Precision.FP32, 0, DerivedModel(Precision.FP32, b""))
    with pytest.raises(ArtifactIncompatibleError, match="not compatible with this version of TensorRT"):
        backend(library).load(plan, request)


def test_timing_cache_is_persisted_and_reused(library: ModuleType, tmp_path: Path) -> None:
    trt_backend = backend(library, cache_dir=tmp_path)
    EngineStore(tmp_path).artifact(trt_backend, identity.CASE, Precision.FP32, 0)
    timing_files = list((tmp_path / library.__name__).glob("timing-*.cache"))
    if library.__name__ == "tensorrt_rtx":
        # A documented difference, not a gap in the double: TensorRT for RTX's timing cache is a no-op
        # (TIMING_CACHE_DOC), so the adapter keeps none and every build still works beside garbage.
        assert timing_files == []
        (tmp_path / library.__name__ / "timing-garbage.cache").write_bytes(b"garbage")
        assert EngineStore(tmp_path).artifact(trt_backend, mnist.CASE, Precision.FP32, 0).record.artifact_bytes
        return
    (timing,) = timing_files
    first = timing.read_bytes()
    assert first
    EngineStore(tmp_path).artifact(trt_backend, mnist.CASE, Precision.FP32, 0)
    assert timing.read_bytes() != first  # the second build added its tactics to the cache it loaded
    timing.write_bytes(b"garbage from another TensorRT")
    EngineStore(tmp_path).artifact(trt_backend, conv_add_relu.CASE, Precision.FP32, 0)


@pytest.mark.parametrize(
    "options",
    [{}, {"include_copies": True}, {"cuda_graph": True}, {"blocking_sync": True}, {"launches": 4}],
    ids=["compute", "copies", "graph", "blocking", "batch"],
)
def test_timers_measure_and_facts_describe_the_mode(library: ModuleType, options: dict[str, object]) -> None:
    needs_runtime(library)
    engine = EngineStore(None).get(backend(library, **options), conv_add_relu.CASE, Precision.FP16, 0).engine
    inputs = inputs_for(conv_add_relu.CASE)
    host_work_on_real_cuda = is_double(library) and backend(library).cuda.__name__.endswith("cuda_rt")
    if options.get("cuda_graph") and host_work_on_real_cuda:
        pytest.skip("the double computes on the host and cannot be captured into a real CUDA graph")
    samples = [engine.host_timer(inputs)() for _ in range(3)]
    # The double synchronizes the stream inside execute_async_v3, which the gate holds: on real CUDA
    # only its host timer applies (benchmarks/gpu_timer.py validates the gated timer on real work).
    if not host_work_on_real_cuda:
        samples += [engine.timer(inputs)() for _ in range(3)]
    assert all(sample > 0 for sample in samples)
    facts = engine.facts()
    assert facts["device_memory_bytes"] > 0
    assert facts["timing"]["copies_included"] is bool(options.get("include_copies"))
    assert facts["timing"]["launches_per_sample"] == options.get("launches", 1)
    np.testing.assert_array_equal(engine.infer(inputs)["y"], engine.infer(inputs)["y"])


def test_close_frees_streams_buffers_events_and_graphs(library: ModuleType) -> None:
    """Seen through the host stand-in's registries of live streams and allocations."""
    needs_double(library)
    trt_backend = backend(library, cuda_graph=True, include_copies=True)
    cuda = trt_backend.cuda
    if not cuda.__name__.endswith("cuda_host"):
        pytest.skip("reads the host stand-in's registries of live streams and allocations")
    store = EngineStore(None)
    engine = store.get(trt_backend, identity.CASE, Precision.FP32, 0).engine
    engine.timer(inputs_for(identity.CASE))()
    held = [memory for b in engine.bindings.values() for memory in (b.device, b.host)]
    stream, timer, graphs = engine.stream, engine._timer, list(engine._graphs)
    assert graphs and stream.handle in cuda._LIVE_STREAMS and all(m.ptr in cuda._MEMORY._live for m in held)
    store.close()
    assert stream.handle not in cuda._LIVE_STREAMS and not any(m.ptr in cuda._MEMORY._live for m in held)
    assert timer.closed
    for graph in graphs:
        with pytest.raises(cuda.CudaError, match="closed"):
            graph.launch()
    engine.close()  # idempotent: the session may close what a test closed


def test_growing_shapes_reuse_or_free_device_memory_never_leak_it(library: ModuleType) -> None:
    """Found by benchmarks/soak.py on the H200 (+4 MiB of device memory per session): a buffer outgrown by
    a larger shape was replaced without being freed."""
    needs_double(library)
    trt_backend = backend(library)
    cuda = trt_backend.cuda
    if not cuda.__name__.endswith("cuda_host"):
        pytest.skip("reads the host stand-in's registry of live allocations")
    engine = EngineStore(None).get(trt_backend, identity.CASE, Precision.FP32, 0).engine
    live_before = len(cuda._MEMORY._live)
    for size in range(1, 7):  # each shape larger than the last: every binding is outgrown each time
        engine.infer({"x": np.ones((size, size, size), np.float32)})
    assert len(cuda._MEMORY._live) - live_before == len(engine.bindings)  # one buffer per binding, no more
    engine.close()
    assert len(cuda._MEMORY._live) == live_before


def test_the_log_stays_bounded_and_goes_with_its_library(library: ModuleType) -> None:
    """The process-wide sink (TensorRT keeps only the first logger) must not grow without bound over a
    long session, nor keep alive a library module nobody uses (the soak builds a double per session)."""
    import gc
    import weakref

    from harness.backends import trt as adapter

    needs_double(library)
    log = adapter._Log(library)
    sink = log.sink
    for index in range(3 * adapter._KEPT_MESSAGES):
        sink.log(library.ILogger.Severity.WARNING, f"warning {index}")
    assert len(sink.messages) <= adapter._KEPT_MESSAGES
    assert log.messages[-1][1] == f"warning {3 * adapter._KEPT_MESSAGES - 1}"
    other = double_library("11.4")
    adapter._Log(other)
    gone = weakref.ref(other)
    del other
    gc.collect()
    assert gone() is None


def test_device_and_version_never_pass_the_double_off_as_tensorrt(library: ModuleType) -> None:
    needs_double(library)
    trt_backend = backend(library)
    assert trt_backend.version().endswith("+numpy-double")
    if trt_backend.cuda.__name__.endswith("cuda_host"):
        assert "stand-in" in trt_backend.device()


def test_names_the_adapter_touches_exist_in_every_snapshot(library: ModuleType) -> None:
    """Recorded at run time by the strict double: every (class, member) used exists in 10.13, 10.16, 11.4."""
    needs_double(library)
    accessed = library._accessed
    accessed.clear()
    store = EngineStore(None)
    for case in ALL_CASES:
        for workflow in ("onnx-parser", "network-api"):
            engine = store.get(backend(library, workflow), case, Precision.FP16, 0).engine
            engine.infer(inputs_for(case))
    backend(library).runtime_problem()
    snapshots = {
        version: json.loads(Path(__file__).with_name("trt_api").joinpath(f"api-{version}.json").read_text())
        for version in ("10.13", "10.16", "11.4")
    }
    missing = {
        version: sorted(
            f"{owner}.{member}"
            for owner, member in accessed
            if member not in api["classes"].get(owner, {}) and member not in api["enums"].get(owner, [])
        )
        for version, api in snapshots.items()
    }
    assert missing == {version: [] for version in snapshots}


def test_runtime_problem_is_none_where_engines_run_and_the_runtimes_reason_where_not(library: ModuleType) -> None:
    problem = backend(library).runtime_problem()
    if is_double(library):
        assert problem is None  # the double's runtime runs on the host stand-in or any CUDA GPU
    elif problem is not None:  # e.g. TensorRT for RTX on a CPU-only machine or on an H200 (compute capability 9.0)
        assert problem.strip() and "TensorRT logged nothing" not in problem


def test_the_double_never_enters_sys_modules(library: ModuleType) -> None:
    """The adapter is handed the double; `import tensorrt` elsewhere never finds it."""
    import sys

    needs_double(library)
    EngineStore(None).artifact(backend(library), identity.CASE, Precision.FP32, 0)
    module = sys.modules.get("tensorrt")
    assert module is None or not str(getattr(module, "__version__", "")).endswith("+numpy-double")


class RecordedProgress:
    """A BuildProgress that keeps every event the adapter relays."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, object]] = []

    def phase_started(self, phase: str, parent: str | None, steps: int) -> None:
        self.events.append(("start", phase, (parent, steps)))

    def step_done(self, phase: str, step: int) -> None:
        self.events.append(("step", phase, step))

    def phase_finished(self, phase: str) -> None:
        self.events.append(("finish", phase, None))


def test_the_builder_reports_its_phases_to_the_build_progress(library: ModuleType) -> None:
    """The adapter hands the builder an IProgressMonitor that relays every phase: each phase started is
    finished, inside its parent, and steps count up inside their phase; the plan still builds."""
    progress = RecordedProgress()
    request = BuildRequest(
        conv_add_relu.CASE,
        Precision.FP32,
        0,
        EngineStore(None).derived(conv_add_relu.CASE, Precision.FP32),
        progress=progress,
    )
    assert backend(library).build(request).data
    started = [phase for kind, phase, _ in progress.events if kind == "start"]
    finished = [phase for kind, phase, _ in progress.events if kind == "finish"]
    assert started and sorted(started) == sorted(finished)
    open_phases: list[str] = []
    for kind, phase, detail in progress.events:
        if kind == "start":
            parent, _ = detail  # type: ignore[misc]
            assert parent is None or parent in open_phases
            open_phases.append(phase)
        elif kind == "step":
            assert phase in open_phases
        else:
            open_phases.remove(phase)
    assert not open_phases
