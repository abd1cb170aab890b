"""What a session records: one TestRecord per harness test, kept in a ResultsLog until the session finishes.

The records are the session's own objects (a Point, a BuildRecord, Measurements); to_json gives a record of the
results file's "tests" list, whose format harness/results/document.py owns (and docs/results-format.md describes).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from harness.build import BuildRecord
from harness.compare import OutputErrors
from harness.drift import AAPair
from harness.gate import GateVerdict
from harness.matrix import Point
from harness.measure import Measurement
from harness.profile import LayerProfile


@dataclass
class TestRecord:
    name: str  # the test's id, e.g. test_accuracy[mnist-fp16-opt-ort]: the key of baselines
    nodeid: str
    point: Point
    backend_info: Mapping[str, object] = field(default_factory=dict)
    input_shapes: dict[str, list[int]] = field(default_factory=dict)
    build: BuildRecord | None = None
    accuracy: list[OutputErrors] | None = None
    # What the outputs were judged against: the case's ReferenceKind ("numpy reference", "onnxruntime fp32
    # reference", "stored outputs"; harness/case.py), the twin backend's short id in an agreement test, None
    # where a test compares no outputs (a build test).
    compared_with: str | None = None
    latency: Measurement | None = None
    host_latency: Measurement | None = None  # enqueue to completion, where the backend's clock is not the host's
    engine_facts: Mapping[str, object] = field(default_factory=dict)
    latency_threshold: float | None = None  # the gate's threshold for this test
    gate: GateVerdict | None = None  # the comparison with the baseline (harness/gate.py)
    aa_drift: AAPair | None = None  # an update run's two measurements of the latency (harness/drift.py)
    worker: str | None = None  # the xdist worker that ran it ("gw0"), None without xdist
    # How the harness derived the model (harness/precision/derive.py), in run and build tests: precision, opset
    # ("converted from opset 6 to 9" where the model was upgraded for the selected backends, else None), kept_fp32,
    # calibrator, scales; reference_opset where a spec case's ONNX Runtime reference ran an upgraded model.
    derivation: Mapping[str, object] | None = None
    layers: Mapping[str, object] | None = None  # per-layer precision as run, and the problems found (the proof)
    localization: Mapping[str, object] | None = None  # the first layer beyond tolerance, where localized
    # Per-layer times of a latency test's engine, profiled after its measurement (harness/profile.py); None where
    # its backend profiles no layers, profiles are off (--no-harness-profile), or the profiler failed: then why.
    layer_profile: LayerProfile | None = None
    layer_profile_error: str | None = None
    verdict: str = "error"  # until pytest reports otherwise: a record nobody finished is not a pass
    message: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.name,
            "nodeid": self.nodeid,
            "point": self.point.id,
            "case": self.point.case.name,
            "precision": self.point.precision.value,
            "profile": self.point.profile_index,
            "shape_point": self.point.shape_point.value,
            "shape": self.point.shape_label,  # the summary's label: a corner, or "fuzz" / "build" for a whole profile
            "input_shapes": self.input_shapes,
            "backend": self.point.backend,
            **{f"backend_{key}": value for key, value in self.backend_info.items()},
            "build": self.build.to_json() if self.build else None,
            "accuracy": [errors.to_json() for errors in self.accuracy] if self.accuracy is not None else None,
            "compared_with": self.compared_with,
            "latency": self.latency.to_json() if self.latency else None,
            "host_latency": self.host_latency.to_json() if self.host_latency else None,
            "engine": dict(self.engine_facts),
            "latency_threshold": self.latency_threshold,
            "gate": self.gate.to_json() if self.gate is not None else None,
            "aa_drift": self.aa_drift.to_json() if self.aa_drift is not None else None,
            "derivation": self.derivation,
            "layers": self.layers,
            "localization": self.localization,
            "layer_profile": self.layer_profile.to_json() if self.layer_profile else None,
            "layer_profile_error": self.layer_profile_error,
            "worker": self.worker,
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "verdict": self.verdict,
            "message": self.message,
        }


class ResultsLog:
    """Records of the session's harness tests, keyed by pytest node id."""

    def __init__(self) -> None:
        self.records: dict[str, TestRecord] = {}

    def open(self, name: str, nodeid: str, point: Point) -> TestRecord:
        record = TestRecord(name=name, nodeid=nodeid, point=point)
        self.records[nodeid] = record
        return record

    def settle(self, nodeid: str, when: str, outcome: str, message: str | None) -> None:
        """Fold one pytest report phase (setup / call / teardown) into the test's verdict."""
        record = self.records.get(nodeid)
        if record is None:
            return
        if outcome == "skipped":
            record.verdict, record.message = "skip", message
        elif outcome == "failed":
            record.verdict, record.message = ("fail" if when == "call" else "error"), message
        elif when == "call":
            record.verdict, record.message = "pass", None

    def tests(self) -> list[dict[str, object]]:
        return [record.to_json() for record in self.records.values()]
