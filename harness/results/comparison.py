"""Two results (or baseline) files judged test by test with the gate's statistics (harness/gate.py).

The stage behind `python -m harness compare` and `ab`, usable without the command line: compare() gives
one Row per test id; the renderers (results/terminal.py, results/markdown.py) turn rows into tables.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from harness.drift import Drift
from harness.gate import PLAN_SIZE, UNRESOLVED, CostPolicy
from harness.known_failures import FILE_NAME as KNOWN_FAILURES_FILE
from harness.known_failures import NONE as NO_KNOWN_FAILURES
from harness.known_failures import KnownFailures
from harness.naming import point_name
from harness.profile import LayerProfile, diff
from harness.results.document import ROUND_SIZES, VERDICTS, InputError, TestResult
from harness.results.text import capped, number
from harness.results.units import micros_number

if TYPE_CHECKING:
    import numpy as np

    from harness.explain import Explanation
    from harness.gate import CostComparison, GatePolicy, GateVerdict, LatencyComparison, PairedRounds, Resolution


@dataclass(frozen=True)
class GateOptions:
    """The comparison settings shared by `compare` and `ab`."""

    alpha: float
    cpu_threshold: float | None  # None: each backend's own default, as its descriptor says
    gpu_threshold: float | None
    accuracy_factor: float
    fail_on_improvement: bool
    allow_removed: bool = False  # a test only OLD has is dropped coverage: it fails the gate unless allowed
    known_failures: Path | None = None  # the reviewed list (harness/known_failures.py); None: the default place
    # (device kind, default latency threshold) of each built-in backend by short id, for files written before
    # descriptors were recorded. Given by the caller (the command line reads harness.backends' descriptors):
    # the results readers import no backend code. An id not here gets _UNKNOWN_BACKEND.
    builtin_backends: Mapping[str, tuple[str, float]] = field(default_factory=dict)
    costs: CostPolicy = field(default_factory=CostPolicy)  # build time, plan size and device memory thresholds

    def policy(self, threshold: float) -> GatePolicy:
        from harness.gate import GatePolicy

        return GatePolicy(
            threshold, self.alpha, accuracy_factor=self.accuracy_factor, fail_on_improvement=self.fail_on_improvement
        )


@dataclass(frozen=True)
class Side:
    """One side of a comparison: the file it came from and its tests by id, in file order."""

    source: str
    tests: Mapping[str, TestResult]
    build_only: bool = False  # a --build-only run: it holds build tests only
    baselines_folder: Path | None = None  # where OLD is a baseline file: its baselines folder
    # Latency samples by test id, where they were read apart from the records (harness/results/lean.py)
    samples: Mapping[str, np.ndarray] = field(default_factory=dict)
    # Bad input its session failed as items of their own (a spec entry, an unknown selection): what it did not run
    input_errors: tuple[InputError, ...] = ()

    @property
    def drift(self) -> Drift | None:
        """The A/A drift its records carry (a baseline file, or a run that updated baselines), else None."""
        return Drift.of_records(test.raw for test in self.tests.values())


@dataclass(frozen=True)
class Row:
    """One test id of the comparison table."""

    test_id: str
    case: str
    precision: str
    shape: str
    backend: str
    kind: str  # build, accuracy, latency, agreement or fuzz_…, from the id's prefix
    latency: LatencyComparison | None
    old_error: float | None  # max mean_rel over the outputs
    new_error: float | None
    # pass, regression, unchanged failure, known failure, inconclusive, fixed (passes, yet listed as a known
    # failure), improvement, new, removed, skip, or input error (NEW's session refused part of its input)
    verdict: str
    reasons: tuple[str, ...]
    detail: str = ""  # shown after the verdict: "12 samples < 30"
    explanation: Explanation | None = None  # a latency regression: the layers that account for it
    costs: tuple[CostComparison, ...] = ()  # a build test's build time and plan size, a latency test's device memory


def compare(old: Side, new: Side, options: GateOptions, known: KnownFailures = NO_KNOWN_FAILURES) -> list[Row]:
    """One row per test id of either side: OLD's order first, then the ids only NEW has, then one per input error of
    NEW's session (what it refused is not run, so the gate cannot vouch for it; OLD's own are history). A build-only
    NEW run (the upgrade's first, cheap step) is judged on its builds: the tests it did not run are not dropped
    coverage."""
    rows = []
    resolution = _resolution(old, new)
    for test_id, old_test in old.tests.items():
        new_test = new.tests.get(test_id)
        if new_test is None and new.build_only and not old_test.is_build:
            rows.append(_row(test_id, old_test, None, None, "skip", ("not run: the new file is a build-only run",)))
        elif new_test is None and (kept := _fixed_corner_kept_as(old_test, old, new)):
            rows.append(_row(test_id, old_test, None, None, "skip", (f"a fixed shape (min = opt = max): {kept}",)))
        elif new_test is None:
            rows.append(_row(test_id, old_test, None, None, "removed", (_removed_reason(options),)))
        else:
            samples = (old.samples.get(test_id), new.samples.get(test_id))
            rows.append(
                _plan_growth_explained(compare_pair(old_test, new_test, options, known, samples, resolution), old, new)
            )
    for test_id, new_test in new.tests.items():
        if test_id not in old.tests:
            verdict, reasons = _own_verdict(None, new_test, known) or ("new", ("only in the new file",))
            rows.append(_row(test_id, None, new_test, None, verdict, reasons))
    rows.extend(_input_error_row(error, new.source) for error in new.input_errors)
    return rows


INPUT_ERROR = "input error"


def _input_error_row(error: InputError, source: str) -> Row:
    reason = f"{source}: its session refused this input, so what it names did not run: {error.message}"
    return Row(error.id, error.id, DASH, DASH, DASH, "input", None, None, None, INPUT_ERROR, (reason,))


def _resolution(old: Side, new: Side) -> Resolution | None:
    """The smallest threshold both files' machines support, where both carry their A/A drift: the coarser one."""
    from harness.gate import Resolution

    drifts = [(side.source, drift) for side in (old, new) if (drift := side.drift) is not None]
    if len(drifts) < 2:
        return None
    recorded = " and ".join(f"{drift.resolution:.1%} in {source} ({drift.pairs} tests)" for source, drift in drifts)
    return Resolution(max(drift.resolution for _, drift in drifts), f"A/A drift recorded: {recorded}")


# Verdicts that fail the gate whatever the options: NEW failed, or could not be judged.
FAILING = frozenset({"regression", "unchanged failure", "inconclusive", INPUT_ERROR})


def _fixed_corner_kept_as(old_test: TestResult, old: Side, new: Side) -> str | None:
    """Where a min/max test of OLD went when its profile is fixed (min = opt = max): the matrix now makes the one
    opt point (harness/matrix.py), so an older file's min and max corners are the opt test run three times, not
    dropped coverage. None unless OLD ran them at the opt test's very input shapes and NEW has that opt test."""
    prefix, _, corner = old_test.shape.rpartition(".")
    if corner not in ("min", "max"):
        return None
    opt_shape = f"{prefix}.opt" if prefix else "opt"  # the corner's own profile prefix, as recorded
    opt_point = point_name(old_test.case, old_test.precision, opt_shape, old_test.backend)
    opt_id = old_test.id.replace(f"[{old_test.point}]", f"[{opt_point}]")
    old_opt = old.tests.get(opt_id)
    shapes = old_test.raw.get("input_shapes")
    if old_opt is None or opt_id not in new.tests or not shapes or old_opt.raw.get("input_shapes") != shapes:
        return None
    return f"the matrix now runs it once, as {opt_id}"


def exit_status(rows: Iterable[Row], options: GateOptions) -> int:
    """0: nothing fails the gate; 1: a regression, a failure or inconclusive test in NEW (unless a known failure), an
    input error of NEW's session, a removed test (unless allowed), on request an improvement, or no row at all (a
    gate that judged nothing must not read as a pass, as pytest's exit 5 says)."""
    rows = list(rows)
    failing = set(FAILING) | ({"improvement"} if options.fail_on_improvement else set())
    if not options.allow_removed:
        failing.add("removed")  # dropped coverage must not pass the upgrade gate unnoticed
    return 1 if not rows or any(row.verdict in failing for row in rows) else 0


def _removed_reason(options: GateOptions) -> str:
    if options.allow_removed:
        return "only in the old file (allowed by --allow-removed)"
    return (
        "only in the old file: the new run dropped this test, which fails the gate; run it again (check the "
        "selection: -k, --backend, --precision, cases), or pass --allow-removed if dropping it is intended"
    )


def compare_pair(
    old: TestResult,
    new: TestResult,
    options: GateOptions,
    known: KnownFailures = NO_KNOWN_FAILURES,
    samples: tuple[np.ndarray | None, np.ndarray | None] = (None, None),
    resolution: Resolution | None = None,
) -> Row:
    """One test present on both sides: NEW's own verdict first (a failing or inconclusive test fails the comparison
    whatever its numbers), then the gate's latency and accuracy verdicts on the numbers; a latency regression with
    the layers that account for it, from the two files' layer profiles."""
    row = _judged_pair(old, new, options, known, samples, resolution)
    if row.verdict != "regression" or not _latency_regressed(row, new):
        return row
    rise = row.latency.added_us if row.latency is not None else None
    return replace(row, explanation=_explain_layers(old, new, rise))


def _latency_regressed(row: Row, new: TestResult) -> bool:
    """Whether the row's regression is its latency's: judged here on the samples, or by NEW's own session gate."""
    judged = row.latency is not None and row.latency.verdict == "regression"
    return judged or (row.kind == "latency" and new.gate is not None and new.gate.verdict == "regression")


def _explain_layers(old: TestResult, new: TestResult, latency_added_us: float | None) -> Explanation:
    """The layers of NEW's profile that account for its slowdown against OLD's (harness/explain.py), against the
    medians' rise where the row has one."""
    from harness.explain import explain

    before, after = (LayerProfile.from_json(test.raw.get(_LAYER_PROFILE)) for test in (old, new))
    return explain(before, after, old_side="the old file", new_side="the new file", latency_added_us=latency_added_us)


def _judged_pair(
    old: TestResult,
    new: TestResult,
    options: GateOptions,
    known: KnownFailures,
    samples: tuple[np.ndarray | None, np.ndarray | None],
    resolution: Resolution | None,
) -> Row:
    from harness.gate import judge_accuracy, judge_latency, timing_differences

    if new.gate is not None and new.gate.verdict == "inconclusive":
        return _row(new.id, old, new, None, "inconclusive", (new.gate.reason or "",), _gate_shortfall(new))
    own = _own_verdict(old, new, known)
    if own is not None:
        return _row(new.id, old, new, _numbers_beside(old, new, options, samples), *own)
    if old.verdict == "pass" and new.verdict == "skip" and refused(new):
        # A backend that built or ran the point before and now refuses the model (an operator its parser lost, an
        # attribute it no longer supports: harness.errors.ModelRefusedError) has regressed, skip or not.
        return _row(
            new.id, old, new, None, "regression", (f"passed in the old run, refused in the new one: {_said(new)}",)
        )
    skipped = tuple(
        f"the {side} run skipped it: {_said(test)}"
        for side, test in (("old", old), ("new", new))
        if test.verdict == "skip"
    )
    if skipped:
        return _row(new.id, old, new, None, "skip", skipped)
    policy = options.policy(_threshold(old, new, options))
    short = _too_few_samples(old, new)
    if short is not None:
        reason, detail = short
        return _row(new.id, old, new, None, "inconclusive", (reason,), detail)
    old_samples, new_samples = _samples(old, samples[0]), _samples(new, samples[1])
    measured = len(old_samples) > 0 and len(new_samples) > 0
    rounds = _paired_rounds(old, new, old_samples, new_samples)
    latency = (
        judge_latency(old_samples, new_samples, policy, resolution=resolution, rounds=rounds) if measured else None
    )
    old_accuracy, new_accuracy = _accuracy_entries(old), _accuracy_entries(new)
    accuracy = judge_accuracy(old_accuracy, new_accuracy, policy) if old_accuracy and new_accuracy else None
    costs = judge_costs(old, new, options.costs)
    if latency is None and not (accuracy is not None and accuracy.accuracy):
        verdict, reasons = _with_costs(*_without_measurements(old, new), costs)
        return _row(new.id, old, new, None, verdict, reasons, costs=costs)
    verdict, reasons = _with_costs(*_verdict(latency, accuracy), costs)
    changed = timing_differences(old.raw, new.raw) if latency is not None else None
    if verdict == "pass" and (entry := known.listed(new.id)) is not None:
        verdict, reasons = "fixed", (_fixed_reason(known, entry.test, entry.reason),)
    comparison = latency.latency if latency is not None else None
    return _row(new.id, old, new, comparison, verdict, (*reasons, changed) if changed else reasons, costs=costs)


def _numbers_beside(
    old: TestResult,
    new: TestResult,
    options: GateOptions,
    samples: tuple[np.ndarray | None, np.ndarray | None],
) -> LatencyComparison | None:
    """The two files' latencies compared, for the table's old, new and ratio cells beside a verdict NEW's own failure
    decided: a latency test its session's gate failed still recorded its samples, and the reader of a regression
    wants its numbers. None where a side has no samples or too few to compare."""
    from harness.gate import judge_latency

    old_samples, new_samples = _samples(old, samples[0]), _samples(new, samples[1])
    if not (len(old_samples) and len(new_samples)) or _too_few_samples(old, new) is not None:
        return None
    policy, rounds = options.policy(_threshold(old, new, options)), _paired_rounds(old, new, old_samples, new_samples)
    return judge_latency(old_samples, new_samples, policy, rounds=rounds).latency


def judge_costs(old: TestResult, new: TestResult, policy: CostPolicy) -> tuple[CostComparison, ...]:
    """A build test's build time and plan size, a latency test's device memory (where its backend reports it: TensorRT)
    and output size, each against OLD's; nothing where neither side recorded the cost."""
    from harness.gate import judge_build, judge_engine_costs

    if old.is_build:
        before, after = old.raw.get("build"), new.raw.get("build")
        if not isinstance(before, Mapping) and not isinstance(after, Mapping):
            return ()
        return judge_build(
            before if isinstance(before, Mapping) else {}, after if isinstance(after, Mapping) else {}, policy
        )
    if new.kind != "latency":
        return ()
    return judge_engine_costs(_engine_facts(old), _engine_facts(new), policy)


def _engine_facts(test: TestResult) -> Mapping[str, object]:
    engine = test.raw.get("engine")
    return engine if isinstance(engine, Mapping) else {}


def _with_costs(verdict: str, reasons: tuple[str, ...], costs: Sequence[CostComparison]) -> tuple[str, tuple[str, ...]]:
    """The row's verdict with its costs' verdicts joined in: a cost regression makes it a regression, a cost
    improvement makes a pass an improvement. A cost that could not be judged (inconclusive: a cached or too short
    build) leaves it as it is: it says the measurement is too coarse, not that the test failed."""
    regressed = tuple(cost.reason for cost in costs if cost.verdict == "regression")
    improved = tuple(cost.reason for cost in costs if cost.verdict == "improvement")
    if regressed:
        return "regression", (*(reasons if verdict == "regression" else ()), *regressed)
    if improved and verdict in ("pass", "improvement"):
        return "improvement", (*(reasons if verdict == "improvement" else ()), *improved)
    return verdict, reasons


def _plan_growth_explained(row: Row, old: Side, new: Side) -> Row:
    """A build test whose plan grew beyond its threshold, with what its engine's layer lists say of why (those of its
    latency tests' per-layer profiles: layers that appeared, fusions lost), or that no layer list was recorded."""
    grew = any(cost.cost == PLAN_SIZE and cost.verdict == "regression" for cost in row.costs)
    if not grew:
        return row
    return replace(row, reasons=(*row.reasons, _plan_growth_note(row.test_id, old, new)))


def _plan_growth_note(build_id: str, old: Side, new: Side) -> str:
    before, after = _engine_layers(build_id, old), _engine_layers(build_id, new)
    if before is None or after is None:
        return (
            "plan growth by layer: not known, no per-layer profile of this engine on both sides (its latency tests "
            "record one where the backend's profiler runs)"
        )
    changes = diff(before, after).structural()
    if not changes:
        return (
            f"plan growth by layer: the same {len(after.layers)} layers on both sides (no layer appeared, disappeared "
            "or fused differently): the growth is inside layers (weights, kernels), which the layer lists do not size"
        )
    listed = "; ".join(f"{entry.label}: {', '.join(entry.changes)}" for entry in changes[:_LISTED_LAYERS])
    more = f"; and {len(changes) - _LISTED_LAYERS} more" if len(changes) > _LISTED_LAYERS else ""
    return f"plan growth by layer ({len(before.layers)} → {len(after.layers)} layers): {listed}{more}"


_LISTED_LAYERS = 5
_LAYER_PROFILE = "layer_profile"  # a latency record's per-layer profile (harness/profile.py's LayerProfile.to_json)


def _engine_layers(build_id: str, side: Side) -> LayerProfile | None:
    """The per-layer profile a latency test of the build's engine recorded (one engine: the build's case, precision,
    profile and backend), None where none did."""
    build = side.tests.get(build_id)
    if build is None:
        return None
    for test in side.tests.values():
        same_engine = (test.case, test.precision, test.profile, test.backend) == (
            build.case,
            build.precision,
            build.profile,
            build.backend,
        )
        if same_engine and test.kind == "latency" and (profile := LayerProfile.from_json(test.raw.get(_LAYER_PROFILE))):
            return profile
    return None


def _too_few_samples(old: TestResult, new: TestResult) -> tuple[str, str] | None:
    """(reason, detail) where a side's latency was stopped by its budget before the gate's minimum of samples: no
    verdict then, here as in the session (harness/gate.py's starved, one rule for both). None otherwise."""
    from harness.gate import MIN_GATE_SAMPLES, starved

    for side, test in (("new", new), ("old", old)):
        stats = test.raw.get("latency")
        if (
            test.latency is None
            or not isinstance(stats, Mapping)
            or not starved(stats.get("stop_reason"), test.latency.count)
        ):
            continue
        fix = (
            "raise --latency-budget (ini harness_latency_budget) and run it again"
            if side == "new"
            else "record the old side again with a larger --latency-budget"
        )
        count = test.latency.count
        reason = (
            f"the {side} side's latency budget ran out after {count} samples, the gate needs at least "
            f"{MIN_GATE_SAMPLES}; {fix}"
        )
        return reason, f"{count} samples < {MIN_GATE_SAMPLES}"
    return None


def _gate_shortfall(test: TestResult) -> str:
    """ "12 samples < 30" as the session's inconclusive gate recorded it, else nothing."""
    gate = test.gate
    if gate is None or gate.samples is None or gate.min_samples is None:
        return ""
    return f"{gate.samples} samples < {gate.min_samples}"


def _own_verdict(old: TestResult | None, new: TestResult, known: KnownFailures) -> tuple[str, tuple[str, ...]] | None:
    """The verdict NEW's own failure imposes: a known failure, one unchanged since OLD, or a regression; None where
    NEW did not fail."""
    if new.failed:
        said = f"{new.verdict} in the new run: {_said(new)}"
        entry = known.find(new.id, new.verdict)
        if entry is not None:
            return "known failure", (f"{said}; listed in {known.source} ({entry.test}): {entry.reason}",)
        if old is not None and old.failed:
            accept = f"if it is accepted, list it in {KNOWN_FAILURES_FILE} with a reason"
            return "unchanged failure", (f"{old.verdict} in the old run too; {said}; {accept}",)
        return "regression", (f"{_before(old)}, {new.verdict} in the new one: {_said(new)}",)
    return None


def _said(test: TestResult) -> str:
    """A test's message on one line, capped (text.capped): a Hypothesis report or a listing of every weight would
    bury the verdict's reason and its fix; the results file keeps the whole text. A latency regression's layers,
    which its session wrote on the message's second line, are left out: compare names them itself, once."""
    message = test.message or "no message recorded"
    if test.kind == "latency" and test.gate is not None and test.gate.verdict == "regression":
        message = message.splitlines()[0]  # compare_pair explains every such latency (_latency_regressed)
    return capped(" ".join(message.split()), "", test.id)


def _before(old: TestResult | None) -> str:
    if old is None:
        return "only in the new file"
    return "passed in the old run" if old.verdict == "pass" else f"{old.verdict} in the old run"


def _fixed_reason(known: KnownFailures, test: str, reason: str) -> str:
    return (
        f"passes, yet {known.source} lists it as a known failure ({test}: {reason}): remove the entry so that the "
        "list stays reviewed"
    )


def record_problem(record: Mapping[str, object], samples: np.ndarray | None = None) -> str | None:
    """What `compare` cannot judge in one record, beyond the fields the gate reads (harness/baselines.py's
    record_problem): the test's own verdict, and the measurements a passing latency or accuracy test carries
    (its samples as read apart from the record, where they were). None when it is usable."""
    if "verdict" not in record:
        return '"verdict" is missing (pass, fail, error or skip)'
    verdict = record["verdict"]
    if verdict not in VERDICTS:
        return f'"verdict" is {verdict!r}; it must be one of {", ".join(VERDICTS)}'
    kind = str(record.get("id", "")).split("[", 1)[0]
    if verdict != "pass" or kind not in _MEASURED:
        return None
    name = _MEASURED[kind]
    value = record.get(name)
    if name == "latency":
        value = samples if samples is not None else value.get("samples_us") if isinstance(value, Mapping) else None
        name = "latency.samples_us"
    if value is None or len(value) == 0:  # type: ignore[arg-type]
        return f'"{name}" is missing or empty: a passing {kind.removeprefix("test_")} test records it'
    return None


# What a passing test of each kind must have recorded for the gate to judge it.
_MEASURED = {"test_latency": "latency", "test_accuracy": "accuracy"}


def refused(test: TestResult) -> bool:
    """Whether a skipped test was skipped because its backend cannot run the point (a model refusal, a precision
    the backend lacks: "onnxruntime cannot run mnist at bf16: …"), not because of the session (build-only, a
    tautology, a machine without the runtime)."""
    return f" cannot run {test.case} at {test.precision}: " in (test.message or "")


def _verdict(latency: GateVerdict | None, accuracy: GateVerdict | None) -> tuple[str, tuple[str, ...]]:
    """One row's verdict from the gate's latency and accuracy verdicts: a regression of either, else an
    improvement of the latency, else a pass."""
    outputs = accuracy.accuracy or () if accuracy is not None else ()
    regressions = [f"output {item.output}: {item.reason}" for item in outputs if item.verdict == "regression"]
    if latency is not None and latency.verdict == "regression":
        regressions.insert(0, latency.reason)
    if regressions:
        return "regression", tuple(regressions)
    if latency is not None and latency.verdict == UNRESOLVED:  # a threshold below the machines' resolution
        return UNRESOLVED, (latency.reason,)
    if latency is not None and latency.verdict == "improvement":
        return "improvement", (latency.reason,)
    return "pass", ()


def _without_measurements(old: TestResult, new: TestResult) -> tuple[str, tuple[str, ...]]:
    """Both passed without measuring what the gate compares, or there is nothing to judge (NEW's failures are
    judged before: _own_verdict)."""
    if old.verdict == new.verdict == "pass":
        # A build test measures nothing the gate compares, a fuzz test checks many shapes but keeps no figures:
        # passing is their whole verdict, on both sides.
        return "pass", ("built on both sides",) if old.is_build else ("passed on both sides",)
    return "skip", (f"no latency or accuracy on both sides to compare (old {old.verdict}, new {new.verdict})",)


def _threshold(old: TestResult, new: TestResult, options: GateOptions) -> float:
    """The test's own threshold as recorded (a case may set one), else the command line's for the
    backend's kind of device, else the backend's default: both from its descriptor, as recorded."""
    for test in (new, old):
        if test.latency_threshold is not None and math.isfinite(test.latency_threshold):
            return test.latency_threshold
    kind, default = _backend_defaults(new, options.builtin_backends)
    given = options.gpu_threshold if kind == "gpu" else options.cpu_threshold
    return given if given is not None else default


# A backend nothing is known about (a plugin's, in a file written before descriptors were recorded)
# gets the lenient CPU default: nothing says its device is as quiet as a GPU.
_UNKNOWN_BACKEND = ("cpu", 0.10)


def _backend_defaults(test: TestResult, builtin_backends: Mapping[str, tuple[str, float]]) -> tuple[str, float]:
    """(device kind, default latency threshold) of the test's backend: as recorded from its
    descriptor, or for older files the built-in descriptor's of that short id (GateOptions.builtin_backends)."""
    kind, default = test.raw.get("backend_device_kind"), test.default_latency_threshold
    if isinstance(kind, str) and default is not None and math.isfinite(default):
        return kind, default
    return builtin_backends.get(test.backend, _UNKNOWN_BACKEND)


def _samples(test: TestResult, read_apart: np.ndarray | None) -> Sequence[float] | np.ndarray:
    if read_apart is not None:
        return read_apart
    return test.latency.samples_us if test.latency is not None else ()


def _paired_rounds(
    old: TestResult,
    new: TestResult,
    old_samples: Sequence[float] | np.ndarray,
    new_samples: Sequence[float] | np.ndarray,
) -> PairedRounds | None:
    """Both sides' rounds where both were pooled from as many interleaved rounds (`python -m harness ab` writes
    latency.round_sizes), so that the gate pairs them; else None and the pooled samples are compared."""
    from harness.gate import PairedRounds

    sizes = [_round_sizes(test, len(samples)) for test, samples in ((old, old_samples), (new, new_samples))]
    if sizes[0] is None or sizes[1] is None or len(sizes[0]) != len(sizes[1]):
        return None
    return PairedRounds(sizes[0], sizes[1])


def _round_sizes(test: TestResult, count: int) -> tuple[int, ...] | None:
    """latency.round_sizes where it splits the test's `count` samples into 2 or more rounds."""
    latency = test.raw.get("latency")
    sizes = latency.get(ROUND_SIZES) if isinstance(latency, Mapping) else None
    if not isinstance(sizes, list) or len(sizes) < 2:
        return None
    if not all(isinstance(size, int) and size > 0 for size in sizes) or sum(sizes) != count:
        return None
    return tuple(sizes)


def _accuracy_entries(test: TestResult) -> list[Mapping[str, object]]:
    """The accuracy entries as recorded: the gate reads their tolerance and failure too."""
    outputs = test.raw.get("accuracy")
    return [entry for entry in outputs if isinstance(entry, Mapping)] if isinstance(outputs, list) else []


def _max_error(test: TestResult | None) -> float | None:
    """The largest finite mean relative error; NaN or Inf where an output held such elements (TestResult.nonfinite)."""
    if test is not None and test.nonfinite is not None:
        return float(test.nonfinite.lower())
    errors = [output.mean_rel for output in test.accuracy or ()] if test is not None else []
    finite = [error for error in errors if error is not None and math.isfinite(error)]
    return max(finite) if finite else None


def _row(
    test_id: str,
    old: TestResult | None,
    new: TestResult | None,
    latency: LatencyComparison | None,
    verdict: str,
    reasons: tuple[str, ...],
    detail: str = "",
    costs: tuple[CostComparison, ...] = (),
) -> Row:
    test = new if new is not None else old
    assert test is not None, "a row has a test on at least one side"
    return Row(
        test_id=test_id,
        case=test.case,
        precision=test.precision,
        shape=test.shape,
        backend=test.backend,
        kind=test.kind,
        latency=latency,
        old_error=_max_error(old),
        new_error=_max_error(new),
        verdict=verdict,
        reasons=reasons,
        detail=detail,
        costs=costs,
    )


def describe_sides(old: Side, new: Side) -> list[str]:
    """The first line names both sides' backends and devices; the next ones say plainly what differs."""
    old_backends, new_backends = _backends(old.tests.values()), _backends(new.tests.values())
    lines = [f"Comparing old {old.source} ({_side(old_backends)}) with new {new.source} ({_side(new_backends)})"]
    if new.build_only:
        lines.append("Note: the new file is a build-only run: its builds are compared; the tests it did not run skip")
    old_devices = sorted({device for _, _, device in old_backends})
    new_devices = sorted({device for _, _, device in new_backends})
    if old_devices and new_devices and old_devices != new_devices:
        lines.append(
            f"Note: devices differ: {', '.join(old_devices)} vs {', '.join(new_devices)}; "
            "latency ratios then compare machines as well as software"
        )
    for name in sorted({name for name, _, _ in old_backends} & {name for name, _, _ in new_backends}):
        before = sorted({version for other, version, _ in old_backends if other == name})
        after = sorted({version for other, version, _ in new_backends if other == name})
        if before != after:
            lines.append(f"Note: backend versions differ: {name} {', '.join(before)} vs {', '.join(after)}")
    return lines


def _backends(tests: Iterable[TestResult]) -> list[tuple[str, str, str]]:
    """Distinct (name, version, device) of the tests, in order of appearance (skipped tests have none)."""
    seen: dict[tuple[str, str, str], None] = {}
    for test in tests:
        if test.backend_name is not None:
            seen.setdefault((test.backend_name, str(test.backend_version), str(test.backend_device)), None)
    return list(seen)


def _side(backends: Sequence[tuple[str, str, str]]) -> str:
    if not backends:
        return "no backend recorded"
    return "; ".join(f"{name} {version} on {device}" for name, version, device in backends)


# The table's cells, shared by the text and Markdown renderers.

DASH = "—"
COLUMNS = (
    "case",
    "precision",
    "shape",
    "backend",
    "test",
    "old µs",
    "new µs",
    "ratio [95 % CI]",
    "errors old / new",
    "verdict",
)
NUMERIC = frozenset({"old µs", "new µs", "ratio [95 % CI]", "errors old / new"})
_VERDICT_LABELS = {"regression": "REGRESSION", "unchanged failure": "UNCHANGED FAILURE", INPUT_ERROR: "INPUT ERROR"}


def label(verdict: str) -> str:
    """A verdict as shown: a regression or a failure in capitals, so that it stands out in a long table."""
    return _VERDICT_LABELS.get(verdict, verdict)


def verdict_cell(row: Row) -> str:
    """The verdict with its detail: "inconclusive (12 samples < 30)"."""
    return f"{label(row.verdict)} ({row.detail})" if row.detail else label(row.verdict)


def cells(row: Row) -> dict[str, str]:
    latency = row.latency
    return dict(
        zip(
            COLUMNS,
            (
                row.case,
                row.precision,
                row.shape,
                row.backend,
                row.kind,
                _shown(latency.old_median_us, micros_number) if latency else DASH,
                _shown(latency.new_median_us, micros_number) if latency else DASH,
                _ratio(latency) if latency else DASH,
                _errors(row.old_error, row.new_error),
                verdict_cell(row),
            ),
        )
    )


def _errors(old: float | None, new: float | None) -> str:
    if old is None and new is None:
        return DASH
    return " / ".join(_shown(error, "{:.1e}".format) if error is not None else DASH for error in (old, new))


def _ratio(latency: LatencyComparison) -> str:
    three = "{:.3f}".format
    low, high = latency.ratio_ci
    return f"{_shown(latency.ratio, three)} [{_shown(low, three)}, {_shown(high, three)}]"


def _shown(value: float, shown: Callable[[float], str]) -> str:
    """A number as `shown` writes it; NaN and ±Inf as words (text.number): never shown as a number."""
    return shown(value) if math.isfinite(value) else number(value)


COST_COLUMNS = ("case", "precision", "shape", "backend", "test", "cost", "old", "new", "ratio", "verdict")
COST_NUMERIC = frozenset({"old", "new", "ratio"})


def costs_of(rows: Sequence[Row]) -> list[tuple[Row, CostComparison]]:
    """Every judged cost, row by row: the costs table."""
    return [(row, cost) for row in rows for cost in row.costs]


def cost_cells(row: Row, cost: CostComparison) -> dict[str, str]:
    values = (row.case, row.precision, row.shape, row.backend, row.kind, cost.cost, *cost_numbers(cost))
    return dict(zip(COST_COLUMNS, (*values, label(cost.verdict))))


def cost_numbers(cost: CostComparison) -> tuple[str, str, str]:
    """A cost's old and new value and their ratio as the costs tables (compare's, the HTML report's) show them; a dash
    for what a side did not record."""
    from harness.gate import cost_value

    ratio = cost.ratio
    return (
        cost_value(cost.cost, cost.old) if cost.old is not None else DASH,
        cost_value(cost.cost, cost.new) if cost.new is not None else DASH,
        f"{ratio:.2f}" if ratio is not None else DASH,
    )


def cost_notes(rows: Sequence[Row]) -> list[tuple[Row, CostComparison]]:
    """Why a cost was not judged (a cached or too short build, a number the new run lacks): its regressions and
    improvements are among the row's own reasons (notable)."""
    return [(row, cost) for row, cost in costs_of(rows) if cost.verdict == "inconclusive"]


# Every verdict a comparison row can get, worst first: how counts orders them.
_ROW_ORDER = (
    "regression",
    "unchanged failure",
    INPUT_ERROR,
    "inconclusive",
    UNRESOLVED,
    "improvement",
    "known failure",
    "fixed",
    "pass",
    "new",
    "removed",
    "skip",
)
# The verdicts whose reasons are listed under the table: the rest say all in their row.
_NOTABLE = frozenset(_ROW_ORDER) - {"pass", "new", "skip"}


NOTHING_COMPARED = (
    "no tests: neither file holds a test, so nothing was gated (exit 1); check the runs' selection (-k, --backend, "
    "--precision, the paths) and their logs"
)


def counts(rows: Sequence[Row]) -> str:
    """ "1 REGRESSION, 3 pass": how many rows got each verdict, worst first."""
    found = {verdict: sum(row.verdict == verdict for row in rows) for verdict in _ROW_ORDER}
    return (
        ", ".join(f"{found[verdict]} {label(verdict)}" for verdict in _ROW_ORDER if found[verdict]) or NOTHING_COMPARED
    )


def notable(rows: Sequence[Row]) -> list[tuple[Row, str]]:
    """Why each regression or improvement was called: the table alone does not say which rule fired."""
    return [(row, reason) for row in rows if row.verdict in _NOTABLE for reason in row.reasons]
