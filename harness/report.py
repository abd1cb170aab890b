"""The report step: one record per test, written as a versioned JSON file and summarized in a table.

The file's schema is documented in README.md ("Results file"); bump SCHEMA_VERSION on any change
that a reader of an older file would misread.
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.atomic import write_atomically
from harness.build import BuildRecord
from harness.compare import OutputErrors, json_safe
from harness.environment import describe
from harness.errors import HarnessError
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
    worker: str | None = None  # the xdist worker that ran it ("gw0"), None without xdist
    derivation: Mapping[str, object] | None = None  # how the harness derived the model (harness/precision/derive.py)
    layers: Mapping[str, object] | None = None  # per-layer precision as run, and the problems found (the proof)
    localization: Mapping[str, object] | None = None  # the first layer beyond tolerance, where localized
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
            "derivation": self.derivation,
            "layers": self.layers,
            "localization": self.localization,
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


def document(
    tests: Sequence[Mapping[str, object]],
    backends: Mapping[str, Mapping[str, object]],
    settings: Mapping[str, object],
) -> dict[str, object]:
    """A results file's contents: this machine's environment, the backends, the settings, the tests."""
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "environment": {**describe(), "backends": dict(backends)},
        "settings": dict(settings),
        "tests": list(tests),
    }


def write(path: Path, contents: Mapping[str, object]) -> None:
    """Strict JSON: a non-finite number anywhere is written as the string "nan", "inf" or "-inf"."""
    write_atomically(path, json.dumps(json_safe(contents), indent=1, allow_nan=False).encode())


class MergeError(HarnessError):
    """Results files that cannot be merged; the message names the files and the fix."""


def merge(documents: Sequence[tuple[str, Mapping[str, object]]], *, allow_mixed: bool = False) -> dict[str, object]:
    """One results document from several (xdist workers, CI shards), each given with its name.

    Every test id must come from one document only (a test measured twice has no single verdict), and
    a backend must have the same version and device everywhere unless `allow_mixed`: a merged file is
    then one run of one setup, which is what `compare` and the gate assume."""
    if not documents:
        raise MergeError("nothing to merge: give at least one results file")
    seen: dict[str, str] = {}
    backends: dict[str, Mapping[str, object]] = {}
    where: dict[str, str] = {}
    tests: list[Mapping[str, object]] = []
    for name, contents in documents:
        if contents.get("schema") != SCHEMA or contents.get("schema_version") != SCHEMA_VERSION:
            raise MergeError(f"{name} is not a trt-harness results file of schema_version {SCHEMA_VERSION}")
        for short_id, facts in _backends_of(contents).items():
            if short_id in backends and _setup(backends[short_id]) != _setup(facts) and not allow_mixed:
                raise MergeError(
                    f"backend '{short_id}' differs between {where[short_id]} ({_setup(backends[short_id])}) and {name} "
                    f"({_setup(facts)}): merge files of one setup, or pass --allow-mixed to merge them anyway"
                )
            backends.setdefault(short_id, facts)
            where.setdefault(short_id, name)
        for test in _tests_of(contents, name):
            test_id = str(test.get("id"))
            if test_id in seen:
                raise MergeError(
                    f"test {test_id} is in both {seen[test_id]} and {name}: shards must not overlap; "
                    "split the matrix so that each test runs in one shard"
                )
            seen[test_id] = name
            tests.append(test)
    first = documents[0][1]
    merged = {**first, "tests": tests}
    merged["environment"] = {**_mapping(first.get("environment")), "backends": backends}
    if len(documents) > 1:
        merged["merged_from"] = [name for name, _ in documents]
    return merged


def _setup(facts: Mapping[str, object]) -> str:
    return f"{facts.get('name')} {facts.get('version')} on {facts.get('device')}"


def _mapping(value: object) -> dict[str, object]:
    return dict(value) if isinstance(value, Mapping) else {}


def _backends_of(contents: Mapping[str, object]) -> dict[str, Mapping[str, object]]:
    backends = _mapping(contents.get("environment")).get("backends")
    return {str(k): v for k, v in backends.items() if isinstance(v, Mapping)} if isinstance(backends, Mapping) else {}


def _tests_of(contents: Mapping[str, object], name: str) -> list[Mapping[str, object]]:
    tests = contents.get("tests")
    if not isinstance(tests, list) or not all(isinstance(test, Mapping) for test in tests):
        raise MergeError(f'{name}: "tests" must be a list of test records')
    return tests


def is_build_record(test: Mapping[str, object]) -> bool:
    """A build test's record (test_build): it measures building, nothing the latency or accuracy gate reads."""
    return str(test.get("id", "")).startswith("test_build[")


def summary_table(tests: Iterable[Mapping[str, object]]) -> list[str]:
    """One row per point (its tests merged), as aligned text lines, from the records as written."""
    rows: dict[str, dict[str, str]] = {}
    for test in tests:
        verdict = str(test.get("verdict"))
        row = rows.setdefault(
            str(test.get("point")),
            {
                "case": str(test.get("case")),
                "precision": str(test.get("precision")),
                "shape": str(test.get("shape", test.get("shape_point"))),
                "backend": str(test.get("backend")),
                "median": "",
                "p99": "",
                "mean rel": "",
                "max rel": "",
                "build": "",
                "artifact": "",
                "vs baseline": "",
                "verdict": verdict,
            },
        )
        row["vs baseline"] = _gate_cell(_mapping(test.get("gate")), row["vs baseline"])
        if _SEVERITY.get(verdict, 0) > _SEVERITY.get(row["verdict"], 0):
            row["verdict"] = verdict
        latency = _mapping(test.get("latency"))
        if latency:
            row["median"] = _micros(float(latency["median_us"]))  # type: ignore[arg-type]
            row["p99"] = _micros(float(latency["p99_us"]))  # type: ignore[arg-type]
        build = _mapping(test.get("build"))
        if build and is_build_record(test):
            row["build"] = "cached" if build.get("cached") else f"{float(build['build_s']):.2f} s"  # type: ignore[arg-type]
            count = len(build.get("warnings") or [])  # type: ignore[arg-type]
            warned = f", {count} warning{'s' if count > 1 else ''}" if count else ""
            row["artifact"] = f"{_size(int(build['artifact_bytes']))}{warned}"  # type: ignore[call-overload]
        accuracy = test.get("accuracy")
        float_errors = [
            _mapping(errors)
            for errors in (accuracy if isinstance(accuracy, list) else [])
            if not _mapping(_mapping(errors).get("tolerance")).get("exact")
        ]
        if float_errors:
            row["mean rel"] = f"{max(float(e['mean_rel']) for e in float_errors):.2e}"  # type: ignore[arg-type]
            row["max rel"] = f"{max(float(e['max_rel']) for e in float_errors):.2e}"  # type: ignore[arg-type]
    return _aligned(list(rows.values()))


def _gate_cell(gate: Mapping[str, object], current: str) -> str:
    """The point's comparison with its baseline: the latency ratio, or what went wrong."""
    verdict = str(gate.get("verdict", ""))
    latency = gate.get("latency")
    if isinstance(latency, Mapping):
        ratio = float(latency["ratio"])
        return f"{ratio:.3f}× {verdict}".strip() if verdict != "pass" else f"{ratio:.3f}×"
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
