"""Per-layer profiles on ONNX Runtime (issue 20): its profiler's trace read as a LayerProfile, recorded by test_latency
and kept in the baselines, and the proof with injected changes on real ONNX Runtime timing: a layer made slower is
the first one diff() names, a prevented fusion shows as a fusion change."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from harness.backends import BackendOptions, BuildRequest
from harness.backends.ort import OnnxRuntimeBackend, OnnxRuntimeEngine
from harness.backends.ort_profile import TraceError, fused_nodes, layer_profile, node_times, read_trace
from harness.baselines import BaselineFile
from harness.build import EngineStore
from harness.case import Precision
from harness.precision.derive import DerivedModel
from harness.profile import LayerProfile, diff
from harness.results.document import load
from harness.suite import profile_runs

ROWS, WIDTH = 32, 384  # the MLP's batch and width: each MatMul about a millisecond on one thread
PADDING = 8  # the slowed MatMul computes PADDING times the columns it keeps: >= 5x that layer on a loaded machine
SPEC = '[[case]]\nname = "net"\nmodel = "net.onnx"\nprecisions = ["fp32"]\n[case.inputs.x]\nuniform = [-1.0, 1.0]\n'
QUICK = (
    "--harness-html",
    "off",
    "-p",
    "no:cacheprovider",
    "-p",
    "no:randomly",
    "--latency-budget",
    "0.2",
    "--precision",
    "fp32",
)


def _model(
    nodes: list[onnx.NodeProto],
    weights: list[np.ndarray],
    names: list[str],
    shapes: tuple[list[int], list[int]],
    *extra_outputs: str,
) -> bytes:
    """A float32 model of these nodes from input x to output y (and `extra_outputs`, shaped as y), shapes (x, y)."""
    shape, out_shape = shapes
    outputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, out_shape) for name in ("y", *extra_outputs)]
    graph = helper.make_graph(
        nodes,
        "net",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        outputs,
        [numpy_helper.from_array(weight, name) for weight, name in zip(weights, names)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def _weights(*shapes: tuple[int, ...]) -> list[np.ndarray]:
    rng = np.random.default_rng(20)
    return [(rng.standard_normal(shape) / np.sqrt(shape[0])).astype(np.float32) for shape in shapes]


def mlp(slowed: bool = False) -> bytes:
    """x -> mm1 -> relu1 -> mm2 -> relu2 -> mm3 -> y; `slowed`: mm2's weight padded with PADDING - 1 times its
    columns of zeros, and the padding sliced off after it: the same outputs, mm2 PADDING times the work."""
    w1, w2, w3 = _weights((WIDTH, WIDTH), (WIDTH, WIDTH), (WIDTH, WIDTH))
    mm2_out = "m2_padded" if slowed else "m2"
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["m1"], name="mm1"),
        helper.make_node("Relu", ["m1"], ["r1"], name="relu1"),
        helper.make_node("MatMul", ["r1", "w2"], [mm2_out], name="mm2"),
        helper.make_node("Relu", ["m2"], ["r2"], name="relu2"),
        helper.make_node("MatMul", ["r2", "w3"], ["y"], name="mm3"),
    ]
    weights, names = [w1, w2, w3], ["w1", "w2", "w3"]
    if slowed:
        weights[1] = np.concatenate([w2, np.zeros((WIDTH, WIDTH * (PADDING - 1)), np.float32)], axis=1)
        weights += [np.array([0], np.int64), np.array([WIDTH], np.int64), np.array([1], np.int64)]
        names += ["starts", "ends", "axes"]
        nodes.insert(3, helper.make_node("Slice", ["m2_padded", "starts", "ends", "axes"], ["m2"], name="unpad"))
    return _model(nodes, weights, names, ([ROWS, WIDTH], [ROWS, WIDTH]))


def conv_relu(fusion_prevented: bool = False) -> bytes:
    """x -> conv1 -> relu1 -> conv2 -> relu2 -> y, which ONNX Runtime fuses into two convolutions with their
    activation; `fusion_prevented`: conv1's output is also a graph output, so relu1 cannot be fused into conv1."""
    w1, w2 = _weights((16, 3, 3, 3), (16, 16, 3, 3))
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["y"], name="relu2"),
    ]
    return _model(
        nodes, [w1, w2], ["w1", "w2"], ([1, 3, 64, 64], [1, 16, 64, 64]), *(("c1",) if fusion_prevented else ())
    )


def engine_of(model: bytes) -> OnnxRuntimeEngine:
    from cases.identity import CASE  # any case: the request's model is what is built

    backend = OnnxRuntimeBackend(BackendOptions())
    request = BuildRequest(CASE, Precision.FP32, 0, DerivedModel(Precision.FP32, model))
    return backend.load(backend.build(request).data, request)


def feeds(shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    return {"x": np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)}


# profile_layers on real models


def test_a_real_model_profiles_every_node_of_its_optimized_graph_with_positive_times() -> None:
    from cases.mnist import CASE

    derived = EngineStore(None).derived(CASE, Precision.FP32)
    backend = OnnxRuntimeBackend(BackendOptions())
    request = BuildRequest(CASE, Precision.FP32, 0, derived)
    artifact = backend.build(request).data
    engine = backend.load(artifact, request)
    inputs = CASE.make_inputs(CASE.profiles[0].opt, np.random.default_rng(0))
    profile = engine.profile_layers(inputs, 5)
    engine.close()
    optimized = [node.name for node in onnx.load_from_string(artifact).graph.node]
    assert sorted(layer.name for layer in profile.layers) == sorted(optimized)  # in execution order, not the file's
    assert all(layer.median_us > 0 for layer in profile.layers), profile
    assert (profile.runs, profile.source) == (5, "onnxruntime profiler")
    kinds = {layer.kind for layer in profile.layers}
    assert {"Conv", "MaxPool", "Softmax"} <= kinds, kinds
    # both convolutions were fused with their ReLU (NCHWc), and fc1 with its ReLU (FusedGemm): said so, by name
    fused = {layer.fused for layer in profile.layers if len(layer.fused) > 1}
    assert {("conv1", "relu1"), ("conv2", "relu2"), ("fc1", "relu3")} <= fused, fused


def test_the_engine_profiles_in_a_session_of_its_own() -> None:
    """The engine's own session is left unprofiled (its latency is what the gate measures), and still runs."""
    engine = engine_of(conv_relu())
    before = engine.session
    engine.profile_layers(feeds((1, 3, 64, 64)), 2)
    assert engine.session is before and not engine.session.get_session_options().enable_profiling
    engine.close()
    with pytest.raises(RuntimeError, match="closed"):
        engine.infer(feeds((1, 3, 64, 64)))


def test_an_engine_made_of_a_bare_session_says_it_cannot_be_profiled_and_how_to_fix_it() -> None:
    """A plugin's engine wrapping OnnxRuntimeEngine(session) (tests/test_plugin.py's closing backend) has no model."""
    bare = OnnxRuntimeEngine(engine_of(conv_relu()).session)
    with pytest.raises(RuntimeError, match=r"made without its model .*profiled=ProfiledModel.*--no-harness-profile"):
        bare.profile_layers(feeds((1, 3, 64, 64)), 5)


# how many profiled runs


@pytest.mark.parametrize(
    ("median_us", "timed_s", "runs"),
    [
        (100.0, 1.0, 20),  # a fast model: the most runs, far within a tenth of its timing
        (10_000.0, 1.0, 10),  # 10 ms a run, 1 s timed: the runs that fit in 0.1 s
        (300_000.0, 9.0, 5),  # a slow model: 3 runs would fit, a median needs 5
        (0.0, 1.0, 20),  # a clock that said 0 µs: counted as 1 µs
    ],
)
def test_profiled_runs_fit_a_tenth_of_the_timed_phase_within_5_to_20(
    median_us: float, timed_s: float, runs: int
) -> None:
    measurement = SimpleNamespace(stats=SimpleNamespace(median_us=median_us), timed_s=timed_s)
    assert profile_runs(measurement) == runs  # type: ignore[arg-type]


# reading the trace


def _run(ts: int, *nodes: tuple[str, int]) -> list[dict[str, object]]:
    events: list[dict[str, object]] = [{"cat": "Session", "name": "model_run", "ts": ts, "dur": 1000}]
    return events + [{"cat": "Node", "name": f"{name}_kernel_time", "ts": ts + 1, "dur": dur} for name, dur in nodes]


def test_node_times_skip_the_warm_up_runs_and_sum_a_name_run_twice_in_one_run() -> None:
    events = _run(0, ("a", 900), ("b", 5)) + _run(2000, ("a", 10), ("b", 2), ("b", 3)) + _run(4000, ("a", 20), ("b", 7))
    times, kept = node_times(events, skip_runs=1)
    assert kept == 2
    assert times.times == {"a": [10.0, 20.0], "b": [5.0, 7.0]}


def test_a_trace_without_node_times_is_refused_naming_what_is_missing() -> None:
    with pytest.raises(TraceError, match="no node times for the 0 runs kept"):
        layer_profile(_run(0, ("a", 1)), conv_relu(), conv_relu(), skip_runs=1)


def test_an_unreadable_trace_is_refused_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "cut.json").write_text('[{"cat": "Node"')
    with pytest.raises(TraceError, match=r"profile .*cut\.json cannot be read"):
        read_trace(tmp_path / "cut.json")
    (tmp_path / "object.json").write_text("{}")
    with pytest.raises(TraceError, match=r"object\.json is not a list of trace events"):
        read_trace(tmp_path / "object.json")


def test_unnamed_nodes_of_the_optimized_graph_take_their_kind_from_the_trace() -> None:
    # Seen on mnist at fp16: the saved optimized graph kept the Softmax's expansion unnamed, ONNX Runtime named
    # those nodes "ReduceMax_8", … when it loaded them, and the profile recorded them with no kind.
    w1, w2 = _weights((WIDTH, WIDTH), (WIDTH, WIDTH))
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["m1"]),
        helper.make_node("Relu", ["m1"], ["r1"]),
        helper.make_node("MatMul", ["r1", "w2"], ["y"]),
    ]
    profile = engine_of(_model(nodes, [w1, w2], ["w1", "w2"], ([ROWS, WIDTH], [ROWS, WIDTH]))).profile_layers(
        feeds((ROWS, WIDTH)), 2
    )
    assert {layer.kind for layer in profile.layers} == {"MatMul", "Relu"}, profile.layers


def test_a_node_the_optimized_graph_lacks_is_named_by_the_trace_s_operator() -> None:
    events = _run(0, ("a", 1)) + _run(2000, ("Sub_9", 4))
    events[-1]["args"] = {"op_name": "Sub"}
    assert [layer.kind for layer in layer_profile(events, conv_relu(), conv_relu(), skip_runs=1).layers] == ["Sub"]


# which original nodes a fused node computes


def test_fused_nodes_say_which_convolution_and_activation_each_computes() -> None:
    engine = engine_of(conv_relu())
    profile = engine.profile_layers(feeds((1, 3, 64, 64)), 2)
    assert [layer.nodes for layer in profile.layers if layer.kind == "Conv"] == [
        frozenset({"conv1", "relu1"}),
        frozenset({"conv2", "relu2"}),
    ]


def test_a_float16_model_s_nchwc_convolution_is_traced_back_through_the_cast_insertion_s_name() -> None:
    # Seen on every real model at fp16: the NCHWc Conv computing relu1's output "r1" is "InsertedPrecisionFreeCast_r1_nchwc".
    original = onnx.load_from_string(conv_relu()).graph
    conv = helper.make_node("Conv", ["x", "w1"], ["y"], name="InsertedPrecisionFreeCast_r1_nchwc", activation="Relu")
    optimized = helper.make_graph([conv], "g", [], [])
    assert fused_nodes(optimized, original) == {"InsertedPrecisionFreeCast_r1_nchwc": ("conv1", "relu1")}


def test_a_node_onnxruntime_invented_is_said_to_compute_only_itself() -> None:
    original = onnx.load_from_string(conv_relu()).graph
    invented = helper.make_graph([helper.make_node("ReorderOutput", ["a"], ["b"], name="ReorderOutput")], "g", [], [])
    assert fused_nodes(invented, original) == {}


# the proof: injected changes on real ONNX Runtime timing


def test_a_slowed_layer_is_the_first_one_the_diff_names() -> None:
    baseline, slowed = engine_of(mlp()), engine_of(mlp(slowed=True))
    inputs = feeds((ROWS, WIDTH))
    np.testing.assert_allclose(slowed.infer(inputs)["y"], baseline.infer(inputs)["y"], rtol=1e-4, atol=1e-5)
    changes = diff(baseline.profile_layers(inputs, 10), slowed.profile_layers(inputs, 10))
    first = changes.top(1)[0]
    assert first.label == "mm2", changes
    assert first.new_us > 3 * first.old_us, first  # PADDING x the work; well above noise even on a loaded machine
    assert [entry.changes for entry in changes.entries if entry.label == "unpad"] == [("appeared",)]


def test_a_prevented_fusion_shows_as_a_fusion_lost() -> None:
    inputs = feeds((1, 3, 64, 64))
    fused, split = engine_of(conv_relu()), engine_of(conv_relu(fusion_prevented=True))
    changes = diff(fused.profile_layers(inputs, 5), split.profile_layers(inputs, 5))
    (lost,) = [entry for entry in changes.entries if any("fusion lost" in change for change in entry.changes)]
    # one fused layer (NCHWc "r1_nchwc" on x86, FusedConv "conv1" elsewhere) became a convolution and relu1
    assert len(lost.old) == 1 and len(lost.new) == 2 and "relu1" in lost.new, lost


# end to end: pytest sessions record the profile, --update-baselines keeps it


def _session(pytester: pytest.Pytester, model: bytes, results: str, *extra: str) -> dict[str, object]:
    (pytester.path / "net.onnx").write_bytes(model)
    pytester.runpytest("--harness-spec", "models.toml", "-k", "latency", "--results", results, *QUICK, *extra)
    records = json.loads((pytester.path / results).read_text())["tests"]
    (record,) = [test for test in records if test["id"].startswith("test_latency")]
    return dict(record)


def test_a_session_records_the_profile_and_its_baseline_keeps_it_for_the_slowed_run(pytester: pytest.Pytester) -> None:
    (pytester.path / "models.toml").write_text(SPEC)
    recorded = _session(pytester, mlp(), "base.json", "--update-baselines", "--baselines", "baselines")
    assert recorded["verdict"] == "pass" and recorded["layer_profile_error"] is None, recorded["message"]
    (baseline_file,) = (pytester.path / "baselines").glob("*/ort-*.json")
    (entry,) = BaselineFile.load(baseline_file).entries.values()
    assert entry["layer_profile"] == recorded["layer_profile"]
    assert "layer_profile_error" not in entry
    _session(pytester, mlp(slowed=True), "slowed.json", "--baselines", "baselines")
    (slowed,) = [test for test in load(pytester.path / "slowed.json").tests if test.kind == "latency"]
    old, new = LayerProfile.from_json(entry["layer_profile"]), slowed.layer_profile  # the results' typed view
    assert old is not None and new is not None
    assert slowed.gate is not None and slowed.gate.verdict == "regression", slowed.gate  # mm2 alone: ~3x the model
    assert diff(old, new).top(1)[0].label == "mm2"


def test_no_harness_profile_and_the_ini_key_turn_profiles_off(pytester: pytest.Pytester) -> None:
    (pytester.path / "models.toml").write_text(SPEC)
    off = _session(pytester, conv_relu(), "off.json", "--no-harness-profile")
    assert (off["layer_profile"], off["layer_profile_error"], off["verdict"]) == (None, None, "pass")
    pytester.makeini("[pytest]\nharness_profile = no\n")
    assert _session(pytester, conv_relu(), "ini.json")["layer_profile"] is None
    pytester.makeini("[pytest]\nharness_profile = yes\n")
    assert _session(pytester, conv_relu(), "on.json")["layer_profile"] is not None


def test_a_bad_harness_profile_ini_value_is_a_usage_error_naming_the_key(pytester: pytest.Pytester) -> None:
    (pytester.path / "models.toml").write_text(SPEC)
    (pytester.path / "net.onnx").write_bytes(conv_relu())
    pytester.makeini("[pytest]\nharness_profile = sometimes\n")
    result = pytester.runpytest("--harness-spec", "models.toml", *QUICK)
    result.stderr.fnmatch_lines(["*harness_profile takes yes or no, got 'sometimes'*harness_profile = no*"])


def test_a_failing_profiler_fails_nothing_and_the_record_says_why(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: OnnxRuntimeEngine, inputs: object, runs: int) -> LayerProfile:
        raise TraceError("onnxruntime's profile p.json cannot be read: truncated")

    monkeypatch.setattr(OnnxRuntimeEngine, "profile_layers", broken)
    (pytester.path / "models.toml").write_text(SPEC)
    (pytester.path / "net.onnx").write_bytes(conv_relu())
    result = pytester.runpytest("--harness-spec", "models.toml", "-k", "latency", "--results", "r.json", *QUICK)
    (record,) = json.loads((pytester.path / "r.json").read_text())["tests"]
    assert record["verdict"] == "pass" and record["layer_profile"] is None
    result.stdout.fnmatch_lines(
        ["layer profile: none for test_latency[[]net-fp32-opt-ort[]]: the per-layer profile failed*"]
    )
    assert record["layer_profile_error"] == (
        "the per-layer profile failed: TraceError: onnxruntime's profile p.json cannot be read: truncated"
    )
