"""The TensorRT adapter (harness/backends/trt.py) end to end, on the strict double of TensorRT 10.16
and 11.4 (CI) and on real TensorRT (the `real` parameter, marked `gpu`: what GPU runners execute).

On the double only the tensorrt library is replaced; CUDA is the host stand-in here and real
cuda-python with HARNESS_TEST_CUDA=real. Nothing measured on the double is a TensorRT result."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from cases import ALL_CASES, conv_add_relu, identity, mnist
from harness.backends import ArtifactIncompatibleError, BackendOptions, BuildRequest
from harness.build import EngineCacheWarning, EngineStore
from harness.case import Case, Precision, ShapePoint
from harness.compare import compare_outputs
from harness.errors import BuildError, ShapeOutsideProfileError
from harness.run import run_engine
from tests.trt_support import DOUBLE_VERSIONS, adapter_on_double, cuda_module


@pytest.fixture(
    params=[*DOUBLE_VERSIONS, pytest.param("real", marks=pytest.mark.gpu)],
    ids=lambda version: "real-tensorrt" if version == "real" else f"double-{version}",
)
def adapter(request: pytest.FixtureRequest) -> ModuleType:
    """The adapter bound to a fresh double (the double itself is `adapter.trt`), or to real TensorRT."""
    if request.param == "real":
        pytest.importorskip("tensorrt", reason="real TensorRT is not installed: pip install 'trt-harness[gpu]'")
        from harness.backends import trt

        return trt
    return adapter_on_double(request.param)


def on_double(adapter: ModuleType) -> bool:
    return str(adapter.trt.__version__).endswith("+numpy-double")


def needs_double(adapter: ModuleType) -> None:
    if not on_double(adapter):
        pytest.skip("drives a fault knob of the double")


def backend(adapter: ModuleType, workflow: str = "onnx-parser", **options: object) -> object:
    from harness.backends import cuda_rt

    cuda = cuda_module() if on_double(adapter) else cuda_rt
    return adapter.TensorRTBackend(BackendOptions(**options), workflow=workflow, cuda=cuda)  # type: ignore[arg-type]


def inputs_for(case: Case, point: ShapePoint = ShapePoint.OPT) -> dict[str, np.ndarray]:
    shapes = case.profiles[0].shapes(point)
    return case.generate_inputs(shapes, np.random.default_rng(case.input_seed(0, point, 0)))


def errors_against_reference(store: EngineStore, trt_backend: object, case: Case, precision: Precision) -> list:
    engine = store.get(trt_backend, case, precision, 0).engine  # type: ignore[arg-type]
    inputs = inputs_for(case)
    outputs = run_engine(case, 0, engine, inputs)
    return compare_outputs(case, precision, outputs, case.reference(inputs))


@pytest.mark.parametrize("workflow", ["onnx-parser", "network-api"])
@pytest.mark.parametrize("precision", list(Precision), ids=lambda p: p.value)
@pytest.mark.parametrize("case", ALL_CASES, ids=lambda case: case.name)
def test_every_case_builds_and_matches_the_reference(
    adapter: ModuleType, case: Case, precision: Precision, workflow: str
) -> None:
    store = EngineStore(None)
    errors = errors_against_reference(store, backend(adapter, workflow), case, precision)
    assert [e.failure for e in errors] == [None] * len(errors), errors


@pytest.mark.parametrize("precision", list(Precision), ids=lambda p: p.value)
@pytest.mark.parametrize("case", ALL_CASES, ids=lambda case: case.name)
def test_network_api_and_onnx_parser_engines_agree(adapter: ModuleType, case: Case, precision: Precision) -> None:
    store = EngineStore(None)
    parser = store.get(backend(adapter, "onnx-parser"), case, precision, 0).engine  # type: ignore[arg-type]
    network = store.get(backend(adapter, "network-api"), case, precision, 0).engine  # type: ignore[arg-type]
    inputs = inputs_for(case, ShapePoint.MAX)
    errors = compare_outputs(case, precision, run_engine(case, 0, network, inputs), run_engine(case, 0, parser, inputs))
    assert [e.failure for e in errors] == [None] * len(errors), errors


def test_fp32_clears_tf32_and_tf32_sets_it(adapter: ModuleType) -> None:
    """TensorRT turns TF32 on by default; fp32 must turn it off, tf32 on (the double rounds to TF32)."""
    store = EngineStore(None)
    trt_backend = backend(adapter)
    fp32 = errors_against_reference(store, trt_backend, conv_add_relu.CASE, Precision.FP32)[0]
    tf32 = errors_against_reference(store, trt_backend, conv_add_relu.CASE, Precision.TF32)[0]
    assert fp32.mean_rel < 1e-6 and tf32.mean_rel < 1e-3
    if on_double(adapter):  # real TensorRT may pick a non-TF32 tactic even when allowed
        assert tf32.mean_rel > 1e-6


def test_shape_outside_profile_is_refused_by_tensorrt_naming_input_and_range(adapter: ModuleType) -> None:
    engine = EngineStore(None).get(backend(adapter), identity.CASE, Precision.FP32, 0).engine  # type: ignore[arg-type]
    with pytest.raises(
        ShapeOutsideProfileError, match=r"input 'x' shape \[7, 1, 1\]: profile 0 allows \[1, 1, 1\] to \[6, 8, 10\]"
    ):
        engine.infer({"x": np.zeros((7, 1, 1), np.float32)})


def test_parser_errors_become_the_build_error(adapter: ModuleType) -> None:
    def broken_model(dtype: np.dtype) -> object:
        model = identity.onnx_model(dtype)
        model.graph.node[-1].op_type = "NoSuchOp"
        return model

    import dataclasses

    case = dataclasses.replace(identity.CASE, name="unparsable", onnx_model=broken_model)
    with pytest.raises(
        BuildError, match=r"case 'unparsable': TensorRT's ONNX parser rejected the fp32 model:.*NoSuchOp"
    ):
        EngineStore(None).get(backend(adapter), case, Precision.FP32, 0)  # type: ignore[arg-type]


def test_builder_failure_carries_the_builder_log(adapter: ModuleType) -> None:
    needs_double(adapter)
    adapter.trt._faults.build_error = "out of memory while allocating 64 GiB of workspace"
    with pytest.raises(BuildError, match=r"case 'identity': TensorRT .* failed to build .*out of memory"):
        EngineStore(None).get(backend(adapter), identity.CASE, Precision.FP32, 0)  # type: ignore[arg-type]


def test_weak_typing_fp16_needs_the_builder_flag_of_10x(adapter: ModuleType) -> None:
    weak = backend(adapter, weak_typing=True)
    reason = weak.unsupported_reason(identity.CASE, Precision.FP16)  # type: ignore[attr-defined]
    if adapter.trt.__version__.startswith("11."):
        assert reason is not None and "no longer has" in reason
    else:
        assert reason is None
        errors = errors_against_reference(EngineStore(None), weak, conv_add_relu.CASE, Precision.FP16)
        assert errors[0].failure is None


def test_network_api_without_a_network_function_is_skipped_with_reason(adapter: ModuleType) -> None:
    import dataclasses

    case = dataclasses.replace(identity.CASE, define_network=None)
    reason = backend(adapter, "network-api").unsupported_reason(case, Precision.FP32)  # type: ignore[attr-defined]
    assert reason is not None and "network-definition function" in reason


@pytest.mark.parametrize("damage", ["truncated", "corrupted", "foreign-version"])
def test_bad_plan_in_the_cache_is_rebuilt_with_a_warning(adapter: ModuleType, tmp_path: Path, damage: str) -> None:
    trt_backend = backend(adapter, cache_dir=tmp_path)
    EngineStore(tmp_path).get(trt_backend, identity.CASE, Precision.FP32, 0)  # type: ignore[arg-type]
    (plan,) = (tmp_path / "tensorrt").glob("*.bin")
    data = plan.read_bytes()
    if damage == "truncated":
        plan.write_bytes(data[: len(data) // 2])
    elif damage == "corrupted":
        plan.write_bytes(data[:-8] + bytes(8))
    else:  # a plan from another TensorRT version under this key, with a sidecar that vouches for it
        foreign = _plan_of_other_version(adapter)
        plan.write_bytes(foreign)
        _rewrite_sidecar(plan, foreign)
    with pytest.warns(EngineCacheWarning, match=r"case 'identity': cached tensorrt artifact .* rebuilding"):
        built = EngineStore(tmp_path).get(trt_backend, identity.CASE, Precision.FP32, 0)  # type: ignore[arg-type]
    assert not built.record.cached
    again = EngineStore(tmp_path).get(trt_backend, identity.CASE, Precision.FP32, 0)  # type: ignore[arg-type]
    assert again.record.cached


def _plan_of_other_version(adapter: ModuleType) -> bytes:
    """A plan built by another TensorRT version: a double's, which real TensorRT rejects too."""
    other = next(v for v in DOUBLE_VERSIONS if not adapter.trt.__version__.startswith(v))
    other_backend = backend(adapter_on_double(other))
    request = BuildRequest(
        identity.CASE, Precision.FP32, 0, EngineStore(None).model_bytes(identity.CASE, Precision.FP32)
    )
    return other_backend.build(request)  # type: ignore[attr-defined,no-any-return]


def _rewrite_sidecar(plan: Path, data: bytes) -> None:
    import hashlib

    sidecar = plan.with_suffix(".json")
    meta = json.loads(sidecar.read_text())
    meta["sha256"] = hashlib.sha256(data).hexdigest()
    sidecar.write_text(json.dumps(meta))


def test_foreign_plan_is_refused_by_load_with_tensorrts_message(adapter: ModuleType) -> None:
    plan = _plan_of_other_version(adapter)
    request = BuildRequest(identity.CASE, Precision.FP32, 0, b"")
    with pytest.raises(ArtifactIncompatibleError, match="not compatible with this version of TensorRT"):
        backend(adapter).load(plan, request)  # type: ignore[attr-defined]


def test_timing_cache_is_persisted_and_reused(adapter: ModuleType, tmp_path: Path) -> None:
    trt_backend = backend(adapter, cache_dir=tmp_path)
    EngineStore(tmp_path).get(trt_backend, identity.CASE, Precision.FP32, 0)  # type: ignore[arg-type]
    (timing,) = (tmp_path / "tensorrt").glob("timing-*.cache")
    first = timing.read_bytes()
    assert first
    EngineStore(tmp_path).get(trt_backend, mnist.CASE, Precision.FP32, 0)  # type: ignore[arg-type]
    assert timing.read_bytes() != first  # the second build added its tactics to the cache it loaded
    timing.write_bytes(b"garbage from another TensorRT")
    EngineStore(tmp_path).get(trt_backend, conv_add_relu.CASE, Precision.FP32, 0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "options",
    [{}, {"include_copies": True}, {"cuda_graph": True}, {"blocking_sync": True}, {"launches": 4}],
    ids=["compute", "copies", "graph", "blocking", "batch"],
)
def test_timers_measure_and_facts_describe_the_mode(adapter: ModuleType, options: dict[str, object]) -> None:
    engine = EngineStore(None).get(backend(adapter, **options), conv_add_relu.CASE, Precision.FP16, 0).engine  # type: ignore[arg-type]
    inputs = inputs_for(conv_add_relu.CASE)
    host_work_on_real_cuda = on_double(adapter) and cuda_module().__name__.endswith("cuda_rt")
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


def test_device_and_version_never_pass_the_double_off_as_tensorrt(adapter: ModuleType) -> None:
    needs_double(adapter)
    trt_backend = backend(adapter)
    assert trt_backend.version().endswith("+numpy-double")  # type: ignore[attr-defined]
    if cuda_module().__name__.endswith("cuda_host"):
        assert "stand-in" in trt_backend.device()  # type: ignore[attr-defined]


def test_names_the_adapter_touches_exist_in_every_snapshot(adapter: ModuleType) -> None:
    """Recorded at run time by the strict double: every (class, member) used exists in 10.13, 10.16, 11.4."""
    needs_double(adapter)
    accessed = adapter.trt._accessed
    accessed.clear()
    store = EngineStore(None)
    for case in ALL_CASES:
        for workflow in ("onnx-parser", "network-api"):
            engine = store.get(backend(adapter, workflow), case, Precision.FP16, 0).engine  # type: ignore[arg-type]
            engine.infer(inputs_for(case))
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


def test_the_double_never_leaks_into_sys_modules(adapter: ModuleType) -> None:
    """The adapter copy holds the double; `import tensorrt` elsewhere never finds it."""
    import sys

    needs_double(adapter)
    module = sys.modules.get("tensorrt")
    assert module is None or not str(getattr(module, "__version__", "")).endswith("+numpy-double")
    assert adapter.trt.__version__.endswith("+numpy-double")
