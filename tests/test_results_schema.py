"""harness/results/schema.py's read API: what the session writes reads back as typed records, and a file that
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
from harness.matrix import Point
from harness.measure import LatencyStats, Measurement
from harness.results import schema


def written(tmp_path: Path) -> Path:
    """A results file as a session writes it: one latency test gated against a baseline, one failing accuracy test."""
    log = schema.ResultsLog()
    point = Point(identity.CASE, Precision.FP16, 0, ShapePoint.OPT, "ort")
    latency = log.open("test_latency[identity-fp16-opt-ort]", "t.py::test_latency[identity-fp16-opt-ort]", point)
    samples = [1e-5 * (1 + 0.01 * i) for i in range(40)]
    latency.latency = Measurement(LatencyStats.from_samples(samples), "ci", 3, 0.5)
    latency.gate = {"verdict": "regression", "reason": "slower", "latency": {"ratio": 1.3, "ratio_ci": [1.2, 1.4]}}
    log.settle(latency.nodeid, "call", "failed", "Failed: regression")
    accuracy = log.open("test_accuracy[identity-fp16-opt-ort]", "t.py::test_accuracy[identity-fp16-opt-ort]", point)
    got, want = np.ones((2, 3), np.float32), np.full((2, 3), 2.0)
    accuracy.accuracy = [output_errors("y", got, want, identity.CASE.tolerance(Precision.FP16, "y"))]
    log.settle(accuracy.nodeid, "call", "passed", None)
    path = tmp_path / "results.json"
    schema.write(path, schema.document(log.tests(), {"ort": {"name": "onnxruntime", "version": "1"}}, {"seed": 0}))
    return path


def test_a_written_file_reads_back_typed(tmp_path: Path) -> None:
    document = schema.load(written(tmp_path))
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
    with pytest.raises(schema.ResultsFileError, match=message) as raised:
        schema.load(path)
    assert str(path) in str(raised.value)
