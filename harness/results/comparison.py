"""Two results (or baseline) files judged test by test with the gate's statistics (harness/gate.py).

The stage behind `python -m harness compare` and `ab`, usable without the command line: compare() gives
one Row per test id; the renderers (results/terminal.py, results/markdown.py) turn rows into tables.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.results.schema import TestResult
from harness.results.text import number
from harness.results.units import micros_number

if TYPE_CHECKING:
    from harness.gate import AccuracyComparison, GatePolicy, LatencyComparison


@dataclass(frozen=True)
class GateOptions:
    """The comparison settings shared by `compare` and `ab`."""

    alpha: float
    cpu_threshold: float | None  # None: each backend's own default, as its descriptor says
    gpu_threshold: float | None
    accuracy_factor: float
    fail_on_improvement: bool
    allow_removed: bool = False  # a test only OLD has is dropped coverage: it fails the gate unless allowed

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
    verdict: str  # pass, regression, improvement, new, removed or skip
    reasons: tuple[str, ...]


def compare(old: Side, new: Side, options: GateOptions) -> list[Row]:
    """One row per test id of either side: OLD's order first, then the ids only NEW has. A build-only NEW run (the
    upgrade's first, cheap step) is judged on its builds: the tests it did not run are not dropped coverage."""
    rows = []
    for test_id, old_test in old.tests.items():
        new_test = new.tests.get(test_id)
        if new_test is None and new.build_only and not old_test.is_build:
            rows.append(_row(test_id, old_test, None, None, "skip", ("not run: the new file is a build-only run",)))
        elif new_test is None:
            rows.append(_row(test_id, old_test, None, None, "removed", (_removed_reason(options),)))
        else:
            rows.append(compare_pair(old_test, new_test, options))
    for test_id, new_test in new.tests.items():
        if test_id not in old.tests:
            rows.append(_row(test_id, None, new_test, None, "new", ("only in the new file",)))
    return rows


def exit_status(rows: Iterable[Row], options: GateOptions) -> int:
    """0: nothing fails the gate; 1: a regression, a removed test (unless allowed) or, on request, an improvement."""
    failing = {"regression", "improvement"} if options.fail_on_improvement else {"regression"}
    if not options.allow_removed:
        failing.add("removed")  # dropped coverage must not pass the upgrade gate unnoticed
    return 1 if any(row.verdict in failing for row in rows) else 0


def _removed_reason(options: GateOptions) -> str:
    if options.allow_removed:
        return "only in the old file (allowed by --allow-removed)"
    return (
        "only in the old file: the new run dropped this test, which fails the gate; run it again (check the "
        "selection: -k, --backend, --precision, cases), or pass --allow-removed if dropping it is intended"
    )


def compare_pair(old: TestResult, new: TestResult, options: GateOptions) -> Row:
    """The gate's latency and accuracy verdicts for one test present on both sides."""
    from harness.gate import compare_accuracy, compare_latency, timing_differences

    if old.verdict == "pass" and new.verdict == "skip" and refused(new):
        # A backend that built or ran the point before and now refuses the model (an operator its parser lost, an
        # attribute it no longer supports: harness.errors.ModelRefusedError) has regressed, skip or not.
        return _row(
            new.id, old, new, None, "regression", (f"passed in the old run, refused in the new one: {new.message}",)
        )
    skipped = tuple(
        f"the {side} run skipped it: {test.message}"
        for side, test in (("old", old), ("new", new))
        if test.verdict == "skip"
    )
    if skipped:
        return _row(new.id, old, new, None, "skip", skipped)
    policy = options.policy(_threshold(old, new, options))
    old_samples, new_samples = _samples(old), _samples(new)
    latency = compare_latency(old_samples, new_samples, policy) if old_samples and new_samples else None
    old_accuracy, new_accuracy = _accuracy_entries(old), _accuracy_entries(new)
    accuracy = compare_accuracy(old_accuracy, new_accuracy, policy) if old_accuracy and new_accuracy else []
    if latency is None and not accuracy:
        return _row(new.id, old, new, None, *_without_measurements(old, new))
    verdict, reasons = _verdict(latency, accuracy)
    changed = timing_differences(old.raw, new.raw) if latency is not None else None
    return _row(new.id, old, new, latency, verdict, (*reasons, changed) if changed else reasons)


def refused(test: TestResult) -> bool:
    """Whether a skipped test was skipped because its backend cannot run the point (a model refusal, a precision
    the backend lacks: "onnxruntime cannot run mnist at bf16: …"), not because of the session (build-only, a
    tautology, a machine without the runtime)."""
    return f" cannot run {test.case} at {test.precision}: " in (test.message or "")


def _verdict(latency: LatencyComparison | None, accuracy: Sequence[AccuracyComparison]) -> tuple[str, tuple[str, ...]]:
    regressions = [f"output {item.output}: {item.reason}" for item in accuracy if item.verdict == "regression"]
    if latency is not None and latency.verdict == "regression":
        regressions.insert(0, latency.reason)
    if regressions:
        return "regression", tuple(regressions)
    if latency is not None and latency.verdict == "improvement":
        return "improvement", (latency.reason,)
    return "pass", ()


def _without_measurements(old: TestResult, new: TestResult) -> tuple[str, tuple[str, ...]]:
    """A test that now fails or errors before measuring anything is a regression; otherwise there is nothing to judge."""
    if new.failed and old.verdict == "pass":
        return "regression", (f"passed in the old run, {new.verdict} in the new one: {new.message}",)
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
    kind, default = _backend_defaults(new)
    given = options.gpu_threshold if kind == "gpu" else options.cpu_threshold
    return given if given is not None else default


# A backend nothing is known about (a plugin's, in a file written before descriptors were recorded)
# gets the lenient CPU default: nothing says its device is as quiet as a GPU.
_UNKNOWN_BACKEND = ("cpu", 0.10)


def _backend_defaults(test: TestResult) -> tuple[str, float]:
    """(device kind, default latency threshold) of the test's backend: as recorded from its
    descriptor, or for older files the built-in descriptor of that short id."""
    from harness.backends import BUILTIN_BACKENDS

    kind, default = test.raw.get("backend_device_kind"), test.default_latency_threshold
    if isinstance(kind, str) and default is not None and math.isfinite(default):
        return kind, default
    descriptor = BUILTIN_BACKENDS.get(test.backend)
    if descriptor is None:
        return _UNKNOWN_BACKEND
    return descriptor.device_kind.value, descriptor.latency_threshold


def _samples(test: TestResult) -> list[float]:
    return list(test.latency.samples_us) if test.latency is not None else []


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
_VERDICT_LABELS = {"regression": "REGRESSION"}


def label(verdict: str) -> str:
    """A verdict as shown: a regression in capitals, so that it stands out in a long table."""
    return _VERDICT_LABELS.get(verdict, verdict)


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
                micros_number(latency.old_median_us) if latency else DASH,
                micros_number(latency.new_median_us) if latency else DASH,
                f"{latency.ratio:.3f} [{latency.ratio_ci[0]:.3f}, {latency.ratio_ci[1]:.3f}]" if latency else DASH,
                _errors(row.old_error, row.new_error),
                label(row.verdict),
            ),
        )
    )


def _errors(old: float | None, new: float | None) -> str:
    if old is None and new is None:
        return DASH
    return " / ".join(number(error, ".1e") if error is not None else DASH for error in (old, new))


def counts(rows: Sequence[Row]) -> str:
    """ "1 REGRESSION, 3 pass": how many rows got each verdict, worst first."""
    order = ("regression", "improvement", "pass", "new", "removed", "skip")
    found = {verdict: sum(row.verdict == verdict for row in rows) for verdict in order}
    return ", ".join(f"{found[verdict]} {label(verdict)}" for verdict in order if found[verdict]) or "no tests"


def notable(rows: Sequence[Row]) -> list[tuple[Row, str]]:
    """Why each regression or improvement was called: the table alone does not say which rule fired."""
    shown = ("regression", "improvement", "removed")
    return [(row, reason) for row in rows if row.verdict in shown for reason in row.reasons]
