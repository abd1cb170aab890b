"""The results file's one owner: the records a session writes, and the typed view every reader gets.

Writing: one TestRecord per harness test (ResultsLog), a document() around them, written as strict JSON
(write) and merged from xdist workers or CI shards (merge). Reading: load(path) or from_json(data) give a
ResultsDocument of TestResult records, validated once here so that renderers (terminal, markdown, html)
and the CLI read typed fields instead of raw dicts; pool() joins the rounds of `python -m harness ab`.

The format is documented in docs/results-format.md; bump SCHEMA_VERSION on any change that a reader
of an older file would misread.
"""

from __future__ import annotations

import datetime
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.atomic import write_atomically
from harness.baselines import is_number
from harness.build import BuildRecord
from harness.compare import OutputErrors, json_safe, recorded_number
from harness.environment import describe
from harness.errors import HarnessError
from harness.gate import GateVerdict
from harness.matrix import Point
from harness.measure import Measurement
from harness.naming import shape_label

SCHEMA = "trt-harness/results"
SCHEMA_VERSION = 1


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
    worker: str | None = None  # the xdist worker that ran it ("gw0"), None without xdist
    # How the harness derived the model (harness/precision/derive.py), in run and build tests: precision, opset
    # ("converted from opset 6 to 9" where the model was upgraded for the selected backends, else None), kept_fp32,
    # calibrator, scales; reference_opset where a spec case's ONNX Runtime reference ran an upgraded model.
    derivation: Mapping[str, object] | None = None
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
            "gate": self.gate.to_json() if self.gate is not None else None,
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
    input_errors: Sequence[Mapping[str, str]] = (),
) -> dict[str, object]:
    """A results file's contents: this machine's environment, the backends, the settings, the tests, and the bad
    input the session found outside the matrix ({id, message}: a spec entry, an unknown --backend name)."""
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "environment": {**describe(), "backends": dict(backends)},
        "settings": dict(settings),
        "input_errors": [dict(error) for error in input_errors],
        "tests": list(tests),
        "interrupted": False,
        "interrupted_test": None,
    }


def mark_interrupted(contents: dict[str, object], running: str | None) -> None:
    """An interrupted session's file says so: `interrupted` true, and `interrupted_test` the node id of the test
    that was running (null: interrupted between tests)."""
    contents["interrupted"] = True
    contents["interrupted_test"] = running


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
    merged = {**first, "tests": tests, "input_errors": _input_errors_of(documents)}
    merged["environment"] = {**_mapping(first.get("environment")), "backends": backends}
    if interrupted := [contents for _, contents in documents if contents.get("interrupted")]:  # a shard's says so
        mark_interrupted(merged, _text(interrupted[0].get("interrupted_test")))
    if len(documents) > 1:
        merged["merged_from"] = [name for name, _ in documents]
    return merged


def _input_errors_of(documents: Sequence[tuple[str, Mapping[str, object]]]) -> list[Mapping[str, object]]:
    """Every document's input errors, each once: xdist workers collect the same bad input, and each reports it."""
    errors: dict[str, Mapping[str, object]] = {}
    for _, contents in documents:
        listed = contents.get("input_errors")
        for error in listed if isinstance(listed, list) else []:
            if isinstance(error, Mapping):
                errors.setdefault(str(error.get("message")), error)
    return list(errors.values())


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


# ---------------------------------------------------------------------------------------------------
# Reading: the typed view of a results file


class ResultsFileError(HarnessError):
    """A results file that cannot be read; the message names the file, the field and the fix."""


@dataclass(frozen=True)
class LatencyResult:
    """A latency (or host latency) measurement as recorded, in microseconds."""

    median_us: float
    p99_us: float | None
    count: int
    samples_us: tuple[float, ...]
    median_ci_us: tuple[float, float] | None

    @classmethod
    def from_json(cls, data: object) -> LatencyResult | None:
        stats = _mapping(data)
        median = _number(stats.get("median_us"))
        if median is None:
            return None
        samples = stats.get("samples_us")
        return cls(
            median_us=median,
            p99_us=_number(stats.get("p99_us")),
            count=int(_number(stats.get("count")) or 0),
            samples_us=tuple(float(s) for s in samples if is_number(s)) if isinstance(samples, list) else (),
            median_ci_us=_interval(stats.get("median_ci_us")),
        )


@dataclass(frozen=True)
class OutputResult:
    """One output's errors against what it was compared with (docs/results-format.md, `accuracy`)."""

    output: str
    mean_rel: float | None
    max_rel: float | None
    exact: bool  # an exact (integer) output: relative errors say nothing about it
    tolerance_mean_rel: float | None  # the mean relative error it was allowed
    failure: str | None  # why it failed its tolerance, else None
    exempt: int = 0  # labels that differ where the reference's margin is inside the precision's error
    exemption: str | None = None  # what the verdict says of differing labels ("3 of 64 labels differ, all ...")
    differ: int = 0  # labels that differ from the reference's
    total: int = 0  # labels compared
    bound: float | None = None  # the margin under which a differing label is exempt
    nan_count: int = 0  # NaN elements of the output: its errors are measured over the finite ones only
    inf_count: int = 0

    @classmethod
    def from_json(cls, data: object) -> OutputResult:
        entry = _mapping(data)
        failure, tolerance = entry.get("failure"), _mapping(entry.get("tolerance"))
        exemption = _mapping(entry.get("exemption"))
        return cls(
            output=str(entry.get("output")),
            mean_rel=_number(entry.get("mean_rel")),
            max_rel=_number(entry.get("max_rel")),
            exact=bool(tolerance.get("exact")),
            tolerance_mean_rel=_number(tolerance.get("mean_rel")),
            failure=str(failure) if failure else None,
            exempt=int(_number(exemption.get("exempt")) or 0),
            exemption=str(exemption["note"]) if exemption.get("note") else None,
            differ=int(_number(exemption.get("differ")) or 0),
            total=int(_number(exemption.get("total")) or 0),
            bound=_number(exemption.get("bound")),
            nan_count=int(_number(entry.get("nan_count")) or 0),
            inf_count=int(_number(entry.get("inf_count")) or 0),
        )

    @property
    def nonfinite(self) -> str | None:
        """ "NaN" or "Inf" where the output holds such elements or its error is one: what a renderer shows instead
        of its error, which is measured over the finite elements only (0 for an output of NaN); None otherwise."""
        if self.nan_count or (self.mean_rel is not None and math.isnan(self.mean_rel)):
            return "NaN"
        if self.inf_count or (self.mean_rel is not None and math.isinf(self.mean_rel)):
            return "Inf"
        return None

    @property
    def exempt_note(self) -> str | None:
        """For a person, where labels that differ passed as exempt: "'label': 2 of 64 differ, all inside the scores'
        error bound 0.493: exempt"; None where none is exempt or the output failed (its failure says it)."""
        if not self.exempt or self.failure:
            return None
        bound = f" {self.bound:.3g}" if self.bound is not None else ""
        return (
            f"'{self.output}': {self.differ} of {self.total} differ, all inside the scores' error bound{bound}: exempt"
        )

    @property
    def tolerance_ratio(self) -> float | None:
        """Its mean relative error ÷ its tolerance (above 1 fails), a NaN error counting as infinitely bad;
        None for an exact output or where either number is missing."""
        if self.exact or not self.tolerance_mean_rel or self.mean_rel is None:
            return None
        ratio = self.mean_rel / self.tolerance_mean_rel
        return math.inf if math.isnan(ratio) else ratio


@dataclass(frozen=True)
class BuildResult:
    """How the point's engine was built (or found in the cache)."""

    key: str | None  # the engine's cache key: tests of one engine share it
    cached: bool
    build_s: float | None  # the engine build
    artifact_bytes: int | None
    warnings: tuple[str, ...]
    derive_s: float | None  # deriving its model (fp16/bf16 conversion, int8 calibration); None in older files

    @classmethod
    def from_json(cls, data: object) -> BuildResult | None:
        build = _mapping(data)
        if not build:
            return None
        size, warnings = _number(build.get("artifact_bytes")), build.get("warnings")
        return cls(
            key=_text(build.get("key")),
            cached=bool(build.get("cached")),
            build_s=_number(build.get("build_s")),
            artifact_bytes=int(size) if size is not None and math.isfinite(size) else None,
            warnings=tuple(str(w) for w in warnings) if isinstance(warnings, list) else (),
            derive_s=_number(build.get("derive_s")),
        )


@dataclass(frozen=True)
class LayersResult:
    """The precision each layer ran in, and why the point's precision does not hold (harness/precision/proof.py)."""

    source: str  # where it was read: "engine inspector" or "the ONNX model's declared types"
    summary: str  # "conv1 Half, pool1 Half, fc1 Float (kept)"
    problems: tuple[str, ...]

    @classmethod
    def from_json(cls, data: object) -> LayersResult | None:
        layers = _mapping(data)
        if not layers:
            return None
        return cls(
            source=str(layers.get("source", "")),
            summary=str(layers.get("summary", "")),
            problems=tuple(str(problem) for problem in _items(layers.get("problems"))),
        )


@dataclass(frozen=True)
class LocalizedLayer:
    """One layer's output compared with the reference model's (harness/precision/localize.py's LayerError)."""

    node: str
    op_type: str
    tensor: str
    mean_rel: float | None
    exceeds: bool  # beyond the tolerance
    nonfinite: int = 0  # NaN/Inf elements where the reference is finite
    input_error: float | None = None  # the largest error among the tensors feeding it
    jump: float | None = None  # mean_rel / max(input_error, tolerance)

    @classmethod
    def from_json(cls, data: object) -> LocalizedLayer:
        layer = _mapping(data)
        return cls(
            node=str(layer.get("node", "")),
            op_type=str(layer.get("op_type", "")),
            tensor=str(layer.get("tensor", "")),
            mean_rel=_number(layer.get("mean_rel")),
            exceeds=bool(layer.get("exceeds")),
            nonfinite=int(_number(layer.get("nonfinite")) or 0),
            input_error=_number(layer.get("input_error")),
            jump=_number(layer.get("jump")),
        )

    @classmethod
    def optional(cls, data: object) -> LocalizedLayer | None:
        return cls.from_json(data) if _mapping(data) else None


@dataclass(frozen=True)
class LocalizationReproduction:
    """Whether the localizer's own run of the derived model reproduces the engine's failure (localize.py's
    Reproduction): where it does not, the failure is in the engine's optimized kernels, not in a layer."""

    output: str
    localizer_mean_rel: float | None
    engine_mean_rel: float | None
    between_mean_rel: float | None
    reproduced: bool
    engine: str

    @classmethod
    def from_json(cls, data: object) -> LocalizationReproduction | None:
        found = _mapping(data)
        if not found:
            return None
        return cls(
            output=str(found.get("output", "")),
            localizer_mean_rel=_number(found.get("localizer_mean_rel")),
            engine_mean_rel=_number(found.get("engine_mean_rel")),
            between_mean_rel=_number(found.get("between_mean_rel")),
            reproduced=bool(found.get("reproduced", True)),
            engine=str(found.get("engine", "")),
        )


@dataclass(frozen=True)
class LocalizationResult:
    """Where a point's error starts: every compared layer in model order, and the one line that says it."""

    summary: str
    ran_on: str  # what ran both models
    tolerance: float | None
    layers: tuple[LocalizedLayer, ...]
    first_failing: LocalizedLayer | None = None  # the first layer beyond the tolerance
    largest_jump: LocalizedLayer | None = None  # the layer where the error jumps most
    first_nonfinite: LocalizedLayer | None = None  # the first layer with NaN/Inf the reference lacks
    reproduction: LocalizationReproduction | None = None  # None where no engine outputs were compared

    @classmethod
    def from_json(cls, data: object) -> LocalizationResult | None:
        found = _mapping(data)
        if not found:
            return None
        return cls(
            summary=str(found.get("summary", "")),
            ran_on=str(found.get("ran_on", "")),
            tolerance=_number(found.get("tolerance")),
            layers=tuple(LocalizedLayer.from_json(layer) for layer in _items(found.get("layers"))),
            first_failing=LocalizedLayer.optional(found.get("first_failing")),
            largest_jump=LocalizedLayer.optional(found.get("largest_jump")),
            first_nonfinite=LocalizedLayer.optional(found.get("first_nonfinite")),
            reproduction=LocalizationReproduction.from_json(found.get("reproduction")),
        )


# A test's verdicts, worst first: the order a reader needs them in; a group of tests is as bad as its worst.
VERDICTS = ("error", "fail", "pass", "skip")
FAILED_VERDICTS = ("error", "fail")


@dataclass(frozen=True)
class TestResult:
    """One test's record as read back. `raw` is the record itself, for what has no typed field yet."""

    id: str
    case: str
    precision: str
    shape: str  # the summary's label: "opt", "p1.max", "fuzz", "build"
    profile: int | None  # the optimization profile's index
    backend: str  # short id
    verdict: str  # pass, fail, error, skip
    message: str | None
    point: str
    compared_with: str | None
    backend_name: str | None
    backend_version: str | None
    backend_device: str | None
    latency: LatencyResult | None
    host_latency: LatencyResult | None
    accuracy: tuple[OutputResult, ...] | None
    build: BuildResult | None
    gate: GateVerdict | None
    latency_threshold: float | None  # the gate's slowdown threshold as set for this test (case or command line)
    default_latency_threshold: float | None  # the backend's own, which applies where none was set
    layers: LayersResult | None
    localization: LocalizationResult | None
    raw: Mapping[str, object]

    __test__ = False  # not a pytest test class, whatever its name

    @property
    def kind(self) -> str:
        """build, accuracy, latency, agreement or fuzz_…: the test function, from the id's prefix."""
        return self.id.split("[", 1)[0].removeprefix("test_")

    @property
    def is_build(self) -> bool:
        return is_build_record(self.raw)

    @property
    def failed(self) -> bool:
        return self.verdict in FAILED_VERDICTS

    @property
    def float_outputs(self) -> tuple[OutputResult, ...]:
        """The outputs whose relative errors mean something (exact outputs are right or wrong)."""
        return tuple(output for output in self.accuracy or () if not output.exact)

    @property
    def opset_conversions(self) -> dict[str, str]:
        """What the harness upgraded for this test: {"model": "converted from opset 6 to 9", "reference": …}, the
        keys present only where there was a conversion (derivation.opset, derivation.reference_opset)."""
        derivation = self.raw.get("derivation")
        if not isinstance(derivation, Mapping):
            return {}
        found = {"model": derivation.get("opset"), "reference": derivation.get("reference_opset")}
        return {key: value for key, value in found.items() if isinstance(value, str) and value}

    @property
    def label_exemptions(self) -> str | None:
        """Its outputs' exempt labels in one line (OutputResult.exempt_note), None where there are none."""
        notes = [note for output in self.accuracy or () if (note := output.exempt_note)]
        return "; ".join(notes) if notes else None

    @property
    def threshold(self) -> float | None:
        """The slowdown the gate judged this test by: its own, else its backend's default."""
        return self.latency_threshold if self.latency_threshold is not None else self.default_latency_threshold

    @property
    def tolerance_ratio(self) -> float | None:
        """The worst float output's mean relative error ÷ its tolerance (above 1 fails); None without one."""
        ratios = [ratio for output in self.accuracy or () if (ratio := output.tolerance_ratio) is not None]
        return max(ratios) if ratios else None

    @property
    def nonfinite(self) -> str | None:
        """ "NaN" or "Inf" where a float output holds such elements (OutputResult.nonfinite), NaN first; else None."""
        found = {output.nonfinite for output in self.float_outputs}
        return "NaN" if "NaN" in found else "Inf" if "Inf" in found else None

    def worst(self, metric: str) -> float | None:
        """The largest `mean_rel` or `max_rel` over the float outputs, None when there is none."""
        values = [value for output in self.float_outputs if (value := getattr(output, metric)) is not None]
        return max(values) if values else None

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> TestResult:
        accuracy = data.get("accuracy")
        message = data.get("message")
        return cls(
            id=str(data.get("id")),
            case=str(data.get("case", _DASH)),
            precision=str(data.get("precision", _DASH)),
            shape=_shape_label(data),
            profile=profile
            if isinstance(profile := data.get("profile"), int) and not isinstance(profile, bool)
            else None,
            backend=str(data.get("backend", _DASH)),
            verdict=str(data.get("verdict")),
            message=str(message) if message is not None else None,
            point=str(data.get("point", _DASH)),
            compared_with=_text(data.get("compared_with")),
            backend_name=_text(data.get("backend_name")),
            backend_version=_text(data.get("backend_version")),
            backend_device=_text(data.get("backend_device")),
            latency=LatencyResult.from_json(data.get("latency")),
            host_latency=LatencyResult.from_json(data.get("host_latency")),
            accuracy=tuple(OutputResult.from_json(e) for e in accuracy) if isinstance(accuracy, list) else None,
            build=BuildResult.from_json(data.get("build")),
            gate=GateVerdict.from_json(data.get("gate")),
            latency_threshold=_number(data.get("latency_threshold")),
            default_latency_threshold=_number(data.get("backend_default_latency_threshold")),
            layers=LayersResult.from_json(data.get("layers")),
            localization=LocalizationResult.from_json(data.get("localization")),
            raw=data,
        )


@dataclass(frozen=True)
class InputError:
    """Bad input the session found outside the matrix (a spec entry, an unknown selection): the id of the pytest item
    that failed for it (harness-spec-error-0), and its message naming the file or option and the fix."""

    id: str
    message: str


@dataclass(frozen=True)
class ResultsDocument:
    """A results file as read: checked against the schema, its tests typed, in file order."""

    source: str  # the file's path, or what the document came from
    created: str | None
    environment: Mapping[str, object]
    settings: Mapping[str, object]
    tests: tuple[TestResult, ...]
    merged_from: tuple[str, ...]
    raw: Mapping[str, object]
    input_errors: tuple[InputError, ...] = ()  # bad input found outside the matrix, each failed as its own item

    @property
    def backends(self) -> dict[str, Mapping[str, object]]:
        """The backends the run used, by short id: name, version, device and descriptor facts."""
        return _backends_of(self.raw)

    def records(self) -> dict[str, Mapping[str, object]]:
        """The raw records by test id, in file order."""
        return {test.id: test.raw for test in self.tests}


_DASH = "—"


def load(path: Path) -> ResultsDocument:
    """Read and check a results file; ResultsFileError names the file, what is wrong and the fix."""
    return document_of(path, read_json(path))


def document_of(path: Path, data: object) -> ResultsDocument:
    """The typed document of a results file's parsed contents; ResultsFileError when it is none."""
    schema = data.get("schema") if isinstance(data, dict) else None
    if not isinstance(data, dict) or schema != SCHEMA:
        raise ResultsFileError(
            f'{path} is not a trt-harness results file (its "schema" is {schema!r}, expected "{SCHEMA}"); '
            "pass a file written by pytest --results"
        )
    return from_json(data, str(path))


def read_json(path: Path) -> object:
    """A JSON file's contents; ResultsFileError when it cannot be read or parsed, with the fix."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ResultsFileError(
            f"cannot read {path} ({error}); check the path, or re-run the tests to write it"
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ResultsFileError(
            f"{path} is not valid JSON ({error.msg}: line {error.lineno} column {error.colno}, character "
            f"{error.pos} of {len(text)}): the file is truncated or corrupted; re-run the tests to write it again, "
            "or restore it from version control"
        ) from None


def from_json(data: Mapping[str, object], source: str = "the results document") -> ResultsDocument:
    """The typed document of a results file's contents (schema trt-harness/results): its schema version,
    one record per test id, and what the gate reads (samples, accuracy numbers) checked here, so that a
    damaged file is reported naming the test and the field, not as a traceback or a false regression."""
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        harness = _mapping(data.get("environment")).get("harness")
        raise ResultsFileError(
            f"{source} was written by trt-harness {harness or 'of an unknown version'} with results schema_version "
            f"{version}; this harness reads {SCHEMA_VERSION}: compare files of one harness version, or re-run"
        )
    tests = data.get("tests")
    if not isinstance(tests, list) or not all(isinstance(t, Mapping) and isinstance(t.get("id"), str) for t in tests):
        raise ResultsFileError(
            f'{source}: "tests" must be a list of records with an "id"; the file was not written by the harness'
        )
    records: dict[str, Mapping[str, object]] = {}
    for test in tests:
        if test["id"] in records:
            raise ResultsFileError(
                f"{source} holds test id {test['id']!r} twice; results of two sessions were merged into one file? "
                "Keep one record per id, or re-run"
            )
        records[test["id"]] = test
    check_records(source, records)
    merged_from = data.get("merged_from")
    created = data.get("created")
    return ResultsDocument(
        source=source,
        created=str(created) if created is not None else None,
        environment=_mapping(data.get("environment")),
        settings=_mapping(data.get("settings")),
        tests=tuple(TestResult.from_json(record) for record in records.values()),
        merged_from=tuple(str(name) for name in merged_from) if isinstance(merged_from, list) else (),
        raw=data,
        input_errors=input_errors(data.get("input_errors")),
    )


def input_errors(listed: object) -> tuple[InputError, ...]:
    """The typed input errors of a document's `input_errors` list (entries that are not objects are ignored)."""
    entries = listed if isinstance(listed, list) else []
    return tuple(InputError(str(e.get("id")), str(e.get("message"))) for e in entries if isinstance(e, Mapping))


def from_session(contents: Mapping[str, object], source: str) -> ResultsDocument:
    """The typed document of what a session writes (document(), merge()), read before or without the file:
    normalized as write() writes it (the tuples that dataclasses.asdict keeps as lists, numpy scalars plain,
    non-finite numbers as strings), so that a renderer shows from memory exactly what it shows from the file."""
    normalized = json_safe(contents)
    assert isinstance(normalized, dict)  # json_safe keeps a mapping's shape
    return from_json(normalized, source)


def check_records(source: str, records: Mapping[str, Mapping[str, object]]) -> None:
    """What the gate reads in each record (a results record or a baseline entry) is usable, else
    ResultsFileError naming the file, the test and the field."""
    from harness.baselines import first_record_problem

    if (found := first_record_problem(records)) is not None:
        test_id, problem = found
        raise ResultsFileError(
            f"{source}: test {test_id!r}: {problem}; the file is damaged or was not written by the harness: "
            "re-run the tests to write it again, or restore it from version control"
        )


# Fields of the latency stats that hold raw samples: pooled over rounds, the statistics recomputed.
_SAMPLE_KEYS = ("latency", "host_latency")


def pool(rounds: Sequence[ResultsDocument]) -> dict[str, object]:
    """One document from several runs of one selection (`python -m harness ab`'s rounds of a side): the
    last round's document, each test's raw samples of every round concatenated in round order with the
    statistics recomputed over them (a median that disagrees with its samples would mislead a reader);
    every other field of a test comes from the last round that ran it."""
    if not rounds:
        raise ValueError("pool needs at least one round")
    pooled: dict[str, dict[str, object]] = {}
    for document in rounds:
        pooled.update({test.id: dict(test.raw) for test in document.tests})
    by_round = [document.records() for document in rounds]
    for test_id, record in pooled.items():
        for key in _SAMPLE_KEYS:
            measured = [records[test_id] for records in by_round if _samples(records.get(test_id, {}), key)]
            if measured:
                template = _mapping(measured[-1][key])
                samples = [sample for round_record in measured for sample in _samples(round_record, key)]
                record[key] = _pooled_stats(template, samples)
    return {**rounds[-1].raw, "tests": list(pooled.values())}


def _samples(record: Mapping[str, object], key: str) -> list[float]:
    samples = _mapping(record.get(key)).get("samples_us")
    return [float(sample) for sample in samples] if isinstance(samples, list) else []


def _pooled_stats(template: Mapping[str, object], samples_us: list[float]) -> dict[str, object]:
    from harness.measure import LatencyStats

    confidence = template.get("confidence")
    stats = LatencyStats.from_samples(
        [sample / 1e6 for sample in samples_us], float(confidence) if is_number(confidence) else 0.95
    )
    return {**template, **stats.to_json(), "samples_us": samples_us}


def _shape_label(record: Mapping[str, object]) -> str:
    """The summary's label as recorded ("opt", "p1.max", "build"); files before it had only the corner."""
    if isinstance(record.get("shape"), str):
        return str(record["shape"])
    profile, corner = record.get("profile"), str(record.get("shape_point", _DASH))
    return shape_label(profile, corner) if isinstance(profile, int) else corner


def _number(value: object) -> float | None:
    """A recorded number (compare.recorded_number), None when there is none."""
    return recorded_number(value)


def _interval(value: object) -> tuple[float, float] | None:
    """A recorded [low, high] pair of numbers, None when absent or not numbers."""
    if not (isinstance(value, list) and len(value) == 2):
        return None
    low, high = _number(value[0]), _number(value[1])
    return (low, high) if low is not None and high is not None else None


def _text(value: object) -> str | None:
    return str(value) if value is not None else None


def _items(value: object) -> tuple[object, ...]:
    """A recorded array's items; nothing where the field is not an array."""
    return tuple(value) if isinstance(value, list) else ()
