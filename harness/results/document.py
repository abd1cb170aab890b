"""The results file's format, in one place: what a file holds, and the typed document every reader gets.

Writing: assemble() puts a session's records (harness/results/record.py) in a document with this machine's
environment, the backends and the settings; write() writes it as strict JSON; merge() joins the files of xdist
workers or CI shards. Reading: load(path), from_json(data) or from_session(contents) give a ResultsDocument of
TestResult records, validated once here, so that the results file, the renderers (terminal, markdown, html), the
pytest_harness_report hook and the CLI all read one typed document instead of raw dicts.

This module imports no build, matrix or measurement code (tests/test_layers.py holds it to that): reading a file
needs none. The format is documented in docs/results-format.md; bump SCHEMA_VERSION on any change that a reader
of an older file would misread.
"""

from __future__ import annotations

import datetime
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.atomic import write_atomically
from harness.baselines import first_record_problem, is_build_record
from harness.environment import describe
from harness.errors import HarnessError
from harness.gate import GateVerdict
from harness.naming import shape_label
from harness.profile import LayerProfile
from harness.recorded import is_number, json_safe, recorded_number

SCHEMA = "trt-harness/results"
SCHEMA_VERSION = 1
# A pooled latency's (`python -m harness ab`) sample count of each interleaved round, in order: the gate pairs rounds
ROUND_SIZES = "round_sizes"


def assemble(
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
    merged["environment"] = {**mapping_of(first.get("environment")), "backends": backends}
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


def mapping_of(value: object) -> dict[str, object]:
    return dict(value) if isinstance(value, Mapping) else {}


def _backends_of(contents: Mapping[str, object]) -> dict[str, Mapping[str, object]]:
    backends = mapping_of(contents.get("environment")).get("backends")
    return {str(k): v for k, v in backends.items() if isinstance(v, Mapping)} if isinstance(backends, Mapping) else {}


def _tests_of(contents: Mapping[str, object], name: str) -> list[Mapping[str, object]]:
    tests = contents.get("tests")
    if not isinstance(tests, list) or not all(isinstance(test, Mapping) for test in tests):
        raise MergeError(f'{name}: "tests" must be a list of test records')
    return tests


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
        stats = mapping_of(data)
        median = recorded_number(stats.get("median_us"))
        if median is None:
            return None
        samples = stats.get("samples_us")
        return cls(
            median_us=median,
            p99_us=recorded_number(stats.get("p99_us")),
            count=int(recorded_number(stats.get("count")) or 0),
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
        entry = mapping_of(data)
        failure, tolerance = entry.get("failure"), mapping_of(entry.get("tolerance"))
        exemption = mapping_of(entry.get("exemption"))
        return cls(
            output=str(entry.get("output")),
            mean_rel=recorded_number(entry.get("mean_rel")),
            max_rel=recorded_number(entry.get("max_rel")),
            exact=bool(tolerance.get("exact")),
            tolerance_mean_rel=recorded_number(tolerance.get("mean_rel")),
            failure=str(failure) if failure else None,
            exempt=int(recorded_number(exemption.get("exempt")) or 0),
            exemption=str(exemption["note"]) if exemption.get("note") else None,
            differ=int(recorded_number(exemption.get("differ")) or 0),
            total=int(recorded_number(exemption.get("total")) or 0),
            bound=recorded_number(exemption.get("bound")),
            nan_count=int(recorded_number(entry.get("nan_count")) or 0),
            inf_count=int(recorded_number(entry.get("inf_count")) or 0),
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
        build = mapping_of(data)
        if not build:
            return None
        size, warnings = recorded_number(build.get("artifact_bytes")), build.get("warnings")
        return cls(
            key=_text(build.get("key")),
            cached=bool(build.get("cached")),
            build_s=recorded_number(build.get("build_s")),
            artifact_bytes=int(size) if size is not None and math.isfinite(size) else None,
            warnings=tuple(str(w) for w in warnings) if isinstance(warnings, list) else (),
            derive_s=recorded_number(build.get("derive_s")),
        )


@dataclass(frozen=True)
class LayersResult:
    """The precision each layer ran in, and why the point's precision does not hold (harness/precision/proof.py)."""

    source: str  # where it was read: "engine inspector" or "the ONNX model's declared types"
    summary: str  # "conv1 Half, pool1 Half, fc1 Float (kept)"
    problems: tuple[str, ...]

    @classmethod
    def from_json(cls, data: object) -> LayersResult | None:
        layers = mapping_of(data)
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
        layer = mapping_of(data)
        return cls(
            node=str(layer.get("node", "")),
            op_type=str(layer.get("op_type", "")),
            tensor=str(layer.get("tensor", "")),
            mean_rel=recorded_number(layer.get("mean_rel")),
            exceeds=bool(layer.get("exceeds")),
            nonfinite=int(recorded_number(layer.get("nonfinite")) or 0),
            input_error=recorded_number(layer.get("input_error")),
            jump=recorded_number(layer.get("jump")),
        )

    @classmethod
    def optional(cls, data: object) -> LocalizedLayer | None:
        return cls.from_json(data) if mapping_of(data) else None


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
        found = mapping_of(data)
        if not found:
            return None
        return cls(
            output=str(found.get("output", "")),
            localizer_mean_rel=recorded_number(found.get("localizer_mean_rel")),
            engine_mean_rel=recorded_number(found.get("engine_mean_rel")),
            between_mean_rel=recorded_number(found.get("between_mean_rel")),
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
        found = mapping_of(data)
        if not found:
            return None
        return cls(
            summary=str(found.get("summary", "")),
            ran_on=str(found.get("ran_on", "")),
            tolerance=recorded_number(found.get("tolerance")),
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
    layer_profile: LayerProfile | None  # per-layer times after the latency measurement (latency tests), else None
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
            latency_threshold=recorded_number(data.get("latency_threshold")),
            default_latency_threshold=recorded_number(data.get("backend_default_latency_threshold")),
            layers=LayersResult.from_json(data.get("layers")),
            localization=LocalizationResult.from_json(data.get("localization")),
            layer_profile=LayerProfile.from_json(data.get("layer_profile")),
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
    # What the checks found wrong in a session's own records (from_session); None for a file read, which raises.
    problem: str | None = None

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
    records = _records_by_id(data, source)
    check_records(source, records)
    return _typed(data, source, records)


def _records_by_id(data: Mapping[str, object], source: str) -> dict[str, Mapping[str, object]]:
    """The records of a document of this schema version, by test id; ResultsFileError where they are not that."""
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        harness = mapping_of(data.get("environment")).get("harness")
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
    return records


def _typed(
    data: Mapping[str, object], source: str, records: Mapping[str, Mapping[str, object]], problem: str | None = None
) -> ResultsDocument:
    merged_from = data.get("merged_from")
    created = data.get("created")
    return ResultsDocument(
        source=source,
        created=str(created) if created is not None else None,
        environment=mapping_of(data.get("environment")),
        settings=mapping_of(data.get("settings")),
        tests=tuple(TestResult.from_json(record) for record in records.values()),
        merged_from=tuple(str(name) for name in merged_from) if isinstance(merged_from, list) else (),
        raw=data,
        input_errors=input_errors(data.get("input_errors")),
        problem=problem,
    )


def input_errors(listed: object) -> tuple[InputError, ...]:
    """The typed input errors of a document's `input_errors` list (entries that are not objects are ignored)."""
    entries = listed if isinstance(listed, list) else []
    return tuple(InputError(str(e.get("id")), str(e.get("message"))) for e in entries if isinstance(e, Mapping))


def from_session(contents: Mapping[str, object], source: str) -> ResultsDocument:
    """The typed document of what a session writes (assemble(), merge()), before or without the file: normalized as
    write() writes it (the tuples that dataclasses.asdict keeps as lists, numpy scalars plain, non-finite numbers as
    strings), so that a renderer shows from memory exactly what it shows from the file. Records that fail the checks
    (a backend that returned a sample of 0 µs) do not raise: the session's results are kept whatever they hold, and
    the document's `problem` says what a reader of the file would refuse."""
    normalized = json_safe(contents)
    assert isinstance(normalized, dict)  # json_safe keeps a mapping's shape
    records = _records_by_id(normalized, source)
    if (found := first_record_problem(records)) is None:
        return _typed(normalized, source, records)
    test_id, problem = found
    return _typed(
        normalized,
        source,
        records,
        problem=f"test {test_id!r} recorded what a reader of the results file refuses ({problem}); `compare` and "
        "`report` will refuse the file: the backend that ran the test measured or compared wrongly, report it to "
        "its authors",
    )


def check_records(source: str, records: Mapping[str, Mapping[str, object]]) -> None:
    """What the gate reads in each record (a results record or a baseline entry) is usable, else
    ResultsFileError naming the file, the test and the field."""
    if (found := first_record_problem(records)) is not None:
        test_id, problem = found
        raise ResultsFileError(
            f"{source}: test {test_id!r}: {problem}; the file is damaged or was not written by the harness: "
            "re-run the tests to write it again, or restore it from version control"
        )


def _shape_label(record: Mapping[str, object]) -> str:
    """The summary's label as recorded ("opt", "p1.max", "build"); files before it had only the corner."""
    if isinstance(record.get("shape"), str):
        return str(record["shape"])
    profile, corner = record.get("profile"), str(record.get("shape_point", _DASH))
    return shape_label(profile, corner) if isinstance(profile, int) else corner


def _interval(value: object) -> tuple[float, float] | None:
    """A recorded [low, high] pair of numbers, None when absent or not numbers."""
    if not (isinstance(value, list) and len(value) == 2):
        return None
    low, high = recorded_number(value[0]), recorded_number(value[1])
    return (low, high) if low is not None and high is not None else None


def _text(value: object) -> str | None:
    return str(value) if value is not None else None


def _items(value: object) -> tuple[object, ...]:
    """A recorded array's items; nothing where the field is not an array."""
    return tuple(value) if isinstance(value, list) else ()
