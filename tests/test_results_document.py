"""harness/results/document.py's read API: what the session writes reads back as typed records, and a file that
cannot be read is one clear ResultsFileError naming it, the field and the fix."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cases import identity
from harness.case import Precision, ShapePoint
from harness.compare import output_errors
from harness.gate import GateVerdict
from harness.matrix import Point
from harness.measure import LatencyStats, Measurement
from harness.results import document as results_document
from harness.results.record import ResultsLog


def written(tmp_path: Path) -> Path:
    """A results file as a session writes it: one latency test gated against a baseline, one failing accuracy test."""
    log = ResultsLog()
    point = Point(identity.CASE, Precision.FP16, 0, ShapePoint.OPT, "ort")
    latency = log.open("test_latency[identity-fp16-opt-ort]", "t.py::test_latency[identity-fp16-opt-ort]", point)
    samples = [1e-5 * (1 + 0.01 * i) for i in range(40)]
    latency.latency = Measurement(LatencyStats.from_samples(samples), "ci", 3, 0.5, 0.4)
    latency.gate = GateVerdict.from_json(
        {"verdict": "regression", "reason": "slower", "latency": {"ratio": 1.3, "ratio_ci": [1.2, 1.4]}}
    )
    log.settle(latency.nodeid, "call", "failed", "Failed: regression")
    accuracy = log.open("test_accuracy[identity-fp16-opt-ort]", "t.py::test_accuracy[identity-fp16-opt-ort]", point)
    got, want = np.ones((2, 3), np.float32), np.full((2, 3), 2.0)
    accuracy.accuracy = [output_errors("y", got, want, identity.CASE.tolerance(Precision.FP16, "y"))]
    log.settle(accuracy.nodeid, "call", "passed", None)
    path = tmp_path / "results.json"
    results_document.write(
        path, results_document.assemble(log.tests(), {"ort": {"name": "onnxruntime", "version": "1"}}, {"seed": 0})
    )
    return path


def test_a_written_file_reads_back_typed(tmp_path: Path) -> None:
    document = results_document.load(written(tmp_path))
    assert document.source == str(tmp_path / "results.json") and document.settings == {"seed": 0}
    assert document.backends == {"ort": {"name": "onnxruntime", "version": "1"}}
    latency, accuracy = document.tests
    assert (latency.kind, latency.case, latency.precision, latency.shape, latency.backend) == (
        "latency",
        "identity",
        "fp16",
        "opt",
        "ort",
    )
    assert latency.verdict == "fail" and latency.message == "Failed: regression"
    assert latency.latency is not None and len(latency.latency.samples_us) == 40
    assert latency.latency.median_us == pytest.approx(np.median(np.array(latency.latency.samples_us)))
    assert latency.gate is not None and latency.gate.verdict == "regression"
    assert latency.gate.latency_ratio == 1.3 and latency.gate.latency_ratio_ci == (1.2, 1.4)
    assert accuracy.accuracy is not None and [output.output for output in accuracy.accuracy] == ["y"]
    assert accuracy.worst("mean_rel") == pytest.approx(0.5) and accuracy.latency is None
    tolerance = identity.CASE.tolerance(Precision.FP16, "y").mean_rel
    assert accuracy.tolerance_ratio == pytest.approx(0.5 / tolerance)
    assert set(document.records()) == {latency.id, accuracy.id}


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda data: {**data, "schema": "other"}, r'is not a trt-harness results file \(its "schema" is \'other\''),
        (lambda data: {**data, "schema_version": 99}, "with results schema_version 99; this harness reads 1"),
        (lambda data: {**data, "tests": [data["tests"][0]] * 2}, "holds test id 'test_latency"),
        (lambda data: {**data, "tests": {}}, '"tests" must be a list of records with an "id"'),
    ],
    ids=["schema", "version", "duplicate", "tests-not-a-list"],
)
def test_an_unusable_file_names_itself_and_the_fix(
    tmp_path: Path, damage: Callable[[dict[str, Any]], dict[str, Any]], message: str
) -> None:
    path = written(tmp_path)
    path.write_text(json.dumps(damage(json.loads(path.read_text()))))
    with pytest.raises(results_document.ResultsFileError, match=message) as raised:
        results_document.load(path)
    assert str(path) in str(raised.value)


def test_the_typed_views_of_layers_localization_and_thresholds() -> None:
    """What the HTML report reads: the per-layer proof, the localization's layers, the threshold that applied."""
    record = {
        "id": "test_accuracy[a-fp16-opt-ort]",
        "profile": 1,
        "backend_default_latency_threshold": 0.1,
        "layers": {"source": "ONNX model", "summary": "conv1 Half", "problems": ["conv1 ran in Float"]},
        "localization": {
            "layers": [{"node": "conv1", "op_type": "Conv", "tensor": "t", "mean_rel": "inf", "exceeds": True}],
            "tolerance": 0.01,
            "summary": "first layer beyond 0.01: conv1 (Conv)",
            "ran_on": "onnxruntime, unoptimized",
        },
        "accuracy": [
            {"output": "y", "mean_rel": "nan", "tolerance": {"mean_rel": 0.01}},
            {"output": "label", "mean_rel": 0.0, "tolerance": {"mean_rel": 0.0, "exact": True}},
        ],
    }
    test = results_document.TestResult.from_json(record)
    assert test.profile == 1 and test.threshold == 0.1 and test.latency_threshold is None
    assert results_document.TestResult.from_json({**record, "latency_threshold": 0.3}).threshold == 0.3
    assert test.layers == results_document.LayersResult("ONNX model", "conv1 Half", ("conv1 ran in Float",))
    assert test.localization is not None and test.localization.tolerance == 0.01
    (layer,) = test.localization.layers
    assert (layer.node, layer.op_type, layer.exceeds) == ("conv1", "Conv", True) and layer.mean_rel == float("inf")
    assert test.tolerance_ratio == float("inf")  # a NaN error is infinitely bad; the exact output has no ratio
    bare = results_document.TestResult.from_json({"id": "test_latency[a-fp16-opt-ort]"})
    assert bare.layers is None and bare.localization is None and bare.threshold is None and bare.profile is None


def test_a_session_document_reads_as_its_file_would(tmp_path: Path) -> None:
    """from_session normalizes what the session holds in memory (tuples, numpy scalars, non-finite floats) as
    write() writes it."""
    record = {
        "id": "test_accuracy[a-fp16-opt-ort]",
        "accuracy": [{"output": "y", "mean_rel": np.float32(0.25), "max_rel": float("inf")}],
        "localization": {"layers": ({"node": "n", "mean_rel": np.float32(0.5)},), "tolerance": 0.1},
    }
    contents = results_document.assemble([record], {}, {})
    path = tmp_path / "r.json"
    results_document.write(path, contents)
    in_memory, from_file = results_document.from_session(contents, "session"), results_document.load(path)
    assert in_memory.tests[0].localization == from_file.tests[0].localization
    assert in_memory.tests[0].localization is not None and in_memory.tests[0].localization.layers[0].mean_rel == 0.5
    assert in_memory.tests[0].accuracy == from_file.tests[0].accuracy
    assert in_memory.tests[0].worst("max_rel") == float("inf")


def test_input_errors_are_merged_once_and_read_back(tmp_path: Path) -> None:
    """xdist workers each collect the same bad spec entry: the merged file lists it once, typed when read."""
    error = {"id": "harness-spec-error-0", "message": "bad.toml: case[0].latency_treshold: unknown key"}
    other = {"id": "harness-selection-error-0", "message": "unknown backend 'tr' in --backend / ini"}
    worker = results_document.assemble([], {}, {}, [error])
    merged = results_document.merge([("gw0", worker), ("gw1", results_document.assemble([], {}, {}, [error, other]))])
    assert merged["input_errors"] == [error, other]
    results_document.write(tmp_path / "r.json", merged)
    assert results_document.load(tmp_path / "r.json").input_errors == (
        results_document.InputError(error["id"], error["message"]),
        results_document.InputError(other["id"], other["message"]),
    )
