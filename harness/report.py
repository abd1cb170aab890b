"""The report step: one record per test, written as a versioned JSON file and summarized in a table.

The file's schema is documented in README.md ("Results file"); bump SCHEMA_VERSION on any change
that a reader of an older file would misread.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness.atomic import write_atomically
from harness.build import BuildRecord
from harness.compare import OutputErrors, json_safe
from harness.environment import describe
from harness.matrix import Point
from harness.measure import Measurement

SCHEMA = "trt-harness/results"
SCHEMA_VERSION = 1

# A point's verdict in the summary is the worst of its tests'.
_SEVERITY = {"skip": 0, "pass": 1, "fail": 2, "error": 3}


@dataclass
class TestRecord:
    name: str  # the test's id, e.g. test_accuracy[mnist-fp16-opt-ort]: the key of baselines
    nodeid: str
    point: Point
    backend_info: Mapping[str, object] = field(default_factory=dict)
    input_shapes: dict[str, list[int]] = field(default_factory=dict)
    build: BuildRecord | None = None
    accuracy: list[OutputErrors] | None = None
    compared_with: str = "reference"  # "reference" (the case's numpy reference) or a backend's short id
    latency: Measurement | None = None
    host_latency: Measurement | None = None  # enqueue to completion, where the backend's clock is not the host's
    engine_facts: Mapping[str, object] = field(default_factory=dict)
    latency_threshold: float | None = None  # the gate's threshold for this test
    gate: dict[str, object] | None = None  # the comparison with the baseline (harness/gate.py)
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
            "gate": self.gate,
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

    def document(
        self, backends: Mapping[str, Mapping[str, object]], settings: Mapping[str, object]
    ) -> dict[str, object]:
        return {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "environment": {**describe(), "backends": dict(backends)},
            "settings": dict(settings),
            "tests": [record.to_json() for record in self.records.values()],
        }

    def write(self, path: Path, backends: Mapping[str, Mapping[str, object]], settings: Mapping[str, object]) -> None:
        document = self.document(backends, settings)
        write_atomically(path, json.dumps(json_safe(document), indent=1, allow_nan=False).encode())


def summary_table(records: Iterable[TestRecord]) -> list[str]:
    """One row per point (its accuracy and latency tests merged), as aligned text lines."""
    rows: dict[str, dict[str, str]] = {}
    for record in records:
        point = record.point
        row = rows.setdefault(
            point.id,
            {
                "case": point.case.name,
                "precision": point.precision.value,
                "shape": point.shape_label,
                "backend": point.backend,
                "median": "",
                "p99": "",
                "mean rel": "",
                "max rel": "",
                "build": "",
                "artifact": "",
                "vs baseline": "",
                "verdict": record.verdict,
            },
        )
        row["vs baseline"] = _gate_cell(record, row["vs baseline"])
        if _SEVERITY[record.verdict] > _SEVERITY[row["verdict"]]:
            row["verdict"] = record.verdict
        if record.latency:
            row["median"] = _micros(record.latency.stats.median_us)
            row["p99"] = _micros(record.latency.stats.p99_us)
        if record.build and point.per_profile == "build":
            row["build"] = "cached" if record.build.cached else f"{record.build.build_s:.2f} s"
            count = len(record.build.warnings)
            warned = f", {count} warning{'s' if count > 1 else ''}" if count else ""
            row["artifact"] = f"{_size(record.build.artifact_bytes)}{warned}"
        float_errors = [errors for errors in record.accuracy or [] if not errors.tolerance.exact]
        if float_errors:
            row["mean rel"] = f"{max(e.mean_rel for e in float_errors):.2e}"
            row["max rel"] = f"{max(e.max_rel for e in float_errors):.2e}"
    return _aligned(list(rows.values()))


def _gate_cell(record: TestRecord, current: str) -> str:
    """The point's comparison with its baseline: the latency ratio, or what went wrong."""
    gate = record.gate or {}
    verdict = str(gate.get("verdict", ""))
    latency = gate.get("latency")
    if isinstance(latency, dict):
        return f"{latency['ratio']:.3f}× {verdict}".strip() if verdict != "pass" else f"{latency['ratio']:.3f}×"
    if verdict == "regression" or not current:
        return verdict
    return current


def _size(nbytes: int) -> str:
    return f"{nbytes / 1e3:,.1f} kB" if nbytes < 1_000_000 else f"{nbytes / 1e6:,.1f} MB"


def _micros(value: float) -> str:
    return f"{value:,.1f} µs" if value < 10_000 else f"{value / 1000:,.2f} ms"


def _aligned(rows: list[dict[str, str]]) -> list[str]:
    if not rows:
        return []
    headers = list(rows[0])
    widths = {h: max(len(h), *(len(row[h]) for row in rows)) for h in headers}
    numeric = {"median", "p99", "mean rel", "max rel", "build"}

    def line(cells: Mapping[str, str]) -> str:
        return "  ".join(cells[h].rjust(widths[h]) if h in numeric else cells[h].ljust(widths[h]) for h in headers)

    return [line({h: h for h in headers}), *(line(row) for row in rows)]
