"""The matrix tests. A repository collects them by importing them into one of its test modules
(`from harness.suite import test_build, test_accuracy, test_agreement, test_latency, ...`); the plugin parametrizes
every test that asks for `harness_point`, `harness_pair` or `harness_fuzz` over the matrix. With spec files
(--harness-spec) no test module is needed: the plugin collects these tests from the spec file itself.

Each test reads as the pipeline: case → build (in the fixture; test_build alone for a build-only run) →
run → compare / measure → report.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, cast

import numpy as np
import pytest

from harness.backends import LayerProfilingEngine
from harness.bench import report_samples
from harness.build import BuildRecord
from harness.case import Shape
from harness.compare import OutputErrors, compare_outputs
from harness.drift import measured_pair
from harness.errors import ShapeOutsideProfileError
from harness.explain import explain
from harness.gate import (
    ENGINE_OUTPUT_BYTES,
    MIN_GATE_SAMPLES,
    GateVerdict,
    cost_verdict,
    inconclusive,
    judge_accuracy,
    judge_build,
    judge_engine_costs,
    judge_latency,
    no_baseline,
    starved,
    starved_reason,
    timing_differences,
)
from harness.matrix import Point
from harness.measure import Measurement, MeasurePolicy, Timer, measure
from harness.precision.table import Group, row
from harness.profile import LayerProfile
from harness.pytest_plugin.fixtures import BuildContext, PairContext, PointContext
from harness.results import explanation
from harness.run import run_engine


def test_build(harness_build: BuildContext) -> None:
    """The profile's engine builds, or is found in the engine cache: build time, artifact size and the
    builder's warnings go into the results. The one test a build-only run (--build-only) runs."""
    record = harness_build.build()
    assert record.artifact_bytes > 0, f"{harness_build.point.id}: the backend built an empty artifact"
    _gate(harness_build, _build_gate(harness_build, record))


@pytest.mark.harness_reference  # skipped where the reference is the point itself (harness/pytest_plugin/fixtures.py)
def test_accuracy(harness_point: PointContext) -> None:
    """Every output within its tolerance of the case's reference (float64 numpy, ONNX Runtime at float32 or stored
    outputs), and every layer in the precision the
    point is labelled with (the proof); a failing point is localized to its first layer beyond tolerance."""
    point, inputs = harness_point.point, harness_point.inputs
    outputs = run_engine(point.case, point.profile_index, harness_point.engine, inputs)
    reference = point.case.reference_outputs(inputs)
    errors = compare_outputs(point.case, point.precision, outputs, reference)
    errors = harness_point.judge_labels(errors, outputs, reference)  # labels inside the precision's error: exempt
    harness_point.record.accuracy = errors
    harness_point.record.engine_facts = harness_point.engine.facts()  # which session computed the outputs judged
    proof = harness_point.prove_precision()
    localized = None
    if any(e.failure for e in errors) or harness_point.state.settings.localize:
        localized = harness_point.localize(outputs)
    if proof.problems:
        failures = _failures(errors)
        outputs_too = (
            f". Its outputs against the {point.case.reference_kind.value} fail too: " + "; ".join(failures)
            if failures
            else ""
        )
        pytest.fail(
            f"{point.id} is labelled {point.precision.value} but its layers say otherwise ({proof.source}): "
            + "; ".join(proof.problems)
            + outputs_too,
            pytrace=False,
        )
    where = None
    if localized:
        in_a_layer = localized[0].reproduction is None or localized[0].reproduction.reproduced
        hint = (
            f" (try --keep-fp32 with that node, or a looser limit with a justification: "
            f"[case.tolerance.{point.precision.value}] in a spec, Tolerance(mean_rel=…, justification=…) in a Python "
            "case)"
            if in_a_layer and row(point.precision).group is Group.REDUCED_FLOAT
            else ""
        )
        where = f"on {localized[1]}: {localized[0].summary()}{hint}"
    _fail_outside_tolerance(point, errors, f"the {point.case.reference_kind.value}", where)
    _gate(harness_point, _accuracy_gate(harness_point, errors))


def test_agreement(harness_pair: PairContext) -> None:
    """Two workflows of one backend (e.g. TensorRT's network API and its ONNX parser) agree within the
    precision's tolerance on the same inputs."""
    context = harness_pair.context
    point, inputs = context.point, context.inputs
    outputs = run_engine(point.case, point.profile_index, context.engine, inputs)
    twin_outputs = run_engine(point.case, point.profile_index, harness_pair.twin, inputs)
    errors = compare_outputs(point.case, point.precision, outputs, twin_outputs)
    context.record.accuracy = errors
    _fail_outside_tolerance(point, errors, f"backend '{harness_pair.twin_backend}'")


@pytest.mark.harness_timing  # holds its device alone while it runs (harness/parallel.py)
def test_latency(harness_point: PointContext, benchmark: Any) -> None:
    """Latency on the backend's own clock, and the caller's host latency where that differs; gated
    against the baseline (a flagged test is re-measured once before it fails); stats and raw samples
    go into the results file and, through the `benchmark` fixture, to pytest-benchmark."""
    point, inputs, engine, record = (
        harness_point.point,
        harness_point.inputs,
        harness_point.engine,
        harness_point.record,
    )
    outputs = run_engine(point.case, point.profile_index, engine, inputs)  # refuses bad shapes before timing
    timer = engine.timer(inputs)
    measurement, retried = _measure_enough(timer, harness_point.measure_policy)
    verdict = _latency_gate(harness_point, measurement, remeasured=retried)
    if verdict.verdict == "regression" and harness_point.gate.enforce:
        measurement, _ = _measure_enough(timer, harness_point.measure_policy)  # noise gets a second chance, once
        verdict = _latency_gate(harness_point, measurement, remeasured=True)
    record.latency = measurement
    if not harness_point.gate.enforce and not starved(measurement.stop_reason, measurement.stats.count):
        # Updating baselines: once more, same engine and inputs, for this machine's A/A drift (harness/drift.py)
        again = measure(timer, harness_point.measure_policy)
        record.aa_drift = measured_pair(measurement.stats.samples_us, again.stats.samples_us, harness_point.gate.policy)
    host_timer = engine.host_timer(inputs)
    if host_timer is not None:
        record.host_latency = measure(host_timer, harness_point.measure_policy)
    # the output stage's size: what each inference hands back, in the engine's own output types
    record.engine_facts = {**engine.facts(), ENGINE_OUTPUT_BYTES: sum(array.nbytes for array in outputs.values())}
    report_samples(
        benchmark,
        [sample / 1e6 for sample in measurement.stats.samples_us],
        {
            "point": point.id,
            "backend_version": record.backend_info.get("version"),
            "clock": record.backend_info.get("clock"),
        },
    )
    _record_layer_profile(harness_point, measurement)
    # the layers are named after the profile is recorded; neither changes what the samples judged
    _gate(harness_point, _explained(harness_point, _with_engine_costs(harness_point, verdict)))


@pytest.mark.harness_reference
def test_fuzz_inside_profile(harness_fuzz: PointContext) -> None:
    """Shapes drawn anywhere inside the profile (tied dimensions tied; min, opt and max first) match the
    case's reference within the precision's tolerance, on the one engine built for the profile."""
    from harness import fuzz  # Hypothesis is imported by the sessions that fuzz, not at collection

    point, engine = harness_fuzz.point, harness_fuzz.engine
    case, seed = point.case, harness_fuzz.state.settings.seed

    def matches_reference(shapes: dict[str, Shape]) -> None:
        inputs = case.make_inputs(shapes, np.random.default_rng(zlib.crc32(f"{shapes}/{seed}".encode())))
        outputs, reference = run_engine(case, point.profile_index, engine, inputs), case.reference_outputs(inputs)
        errors = harness_fuzz.judge_labels(
            compare_outputs(case, point.precision, outputs, reference), outputs, reference, inputs
        )
        failures = [f"output '{e.output}': {e.failure}" for e in errors if e.failure]
        assert not failures, f"{point.id} at shapes {shapes}: " + "; ".join(failures)

    fuzz.run_property(
        fuzz.shapes_inside(case, point.profile_index),
        matches_reference,
        harness_fuzz.fuzz_settings,
        examples=fuzz.corners(case, point.profile_index),
    )


def test_fuzz_outside_profile(harness_fuzz: PointContext) -> None:
    """Shapes outside the profile (a dimension past min or max, a changed fixed dimension, a wrong rank,
    tied dimensions split) are refused with ShapeOutsideProfileError naming the input, before any run:
    never a crash, never a silently wrong result."""
    from harness import fuzz

    point, engine = harness_fuzz.point, harness_fuzz.engine

    def refused(drawn: tuple[dict[str, Shape], str]) -> None:
        shapes, culprit = drawn
        inputs = {spec.name: np.zeros(shapes[spec.name], dtype=spec.dtype) for spec in point.case.inputs}
        with pytest.raises(ShapeOutsideProfileError) as error:
            run_engine(point.case, point.profile_index, engine, inputs)
        assert f"'{culprit}'" in str(error.value), f"the error does not name input '{culprit}': {error.value}"

    fuzz.run_property(fuzz.shapes_outside(point.case, point.profile_index), refused, harness_fuzz.fuzz_settings)


# Profiled runs per latency test: at most 20 (a median of 20 is steady to a few % per layer for the millisecond
# layers of the built-in cases), at least 5 (a median of 5 still sets one outlier run aside), and otherwise as many as
# fit in a tenth of the time the latency measurement timed: a slow model's profile then costs a session what a fast
# one's does, within the 15 % that issue 20 allows (benchmarks/profile_cost.py: 5.6 to 7.2 % on the built-in cases).
MIN_PROFILE_RUNS, MAX_PROFILE_RUNS = 5, 20
PROFILE_SHARE = 0.1


def profile_runs(measurement: Measurement) -> int:
    """How many profiled runs follow this latency measurement (MIN_PROFILE_RUNS, MAX_PROFILE_RUNS, PROFILE_SHARE)."""
    run_s = max(measurement.stats.median_us, 1.0) / 1e6  # 1 µs: a clock's resolution, where it said 0
    fitting = int(PROFILE_SHARE * measurement.timed_s / run_s)
    return min(max(fitting, MIN_PROFILE_RUNS), MAX_PROFILE_RUNS)


def _record_layer_profile(context: PointContext, measurement: Measurement) -> None:
    """The engine's per-layer times on the test's record, after its latency was measured and judged (a profiler
    slows what it watches, so it never runs among the timed samples), where its backend profiles layers and
    --no-harness-profile is not given. A profiler that fails fails nothing: the record says why it has no profile."""
    if not (
        context.state.settings.profile_layers
        and context.state.registry.descriptor(context.point.backend).profiles_layers
    ):
        return
    engine = cast(LayerProfilingEngine, context.engine)  # what a descriptor's profiles_layers promises
    try:
        context.record.layer_profile = engine.profile_layers(context.inputs, profile_runs(measurement))
    except Exception as error:  # noqa: BLE001 - any backend's profiler raises its own types; only the record loses
        context.record.layer_profile_error = f"the per-layer profile failed: {type(error).__name__}: {error}"


def _measure_enough(timer: Timer, policy: MeasurePolicy) -> tuple[Measurement, bool]:
    """measure(); once more when the budget ran out before MIN_GATE_SAMPLES samples (a stall at the start of a
    session, a neighbour taking the CPU). Returns the measurement and whether it was the second one."""
    measurement = measure(timer, policy)
    if not starved(measurement.stop_reason, measurement.stats.count):
        return measurement, False
    return measure(timer, policy), True


def _latency_gate(context: PointContext, measurement: Measurement, remeasured: bool) -> GateVerdict:
    entry = (context.gate.baseline or {}).get("latency")
    baseline: dict[str, Any] = entry if isinstance(entry, dict) else {}
    has_baseline = bool(baseline.get("samples_us"))
    count, note = measurement.stats.count, context.gate.note
    # Starved (the budget ran out before MIN_GATE_SAMPLES, twice): there is no verdict to give against a
    # baseline, and no baseline to record from it; a plain run without a baseline only records the numbers.
    if starved(measurement.stop_reason, count) and (has_baseline or not context.gate.enforce):
        policy = context.measure_policy
        cap = max(policy.budget_s, policy.budget_max_s)
        why = starved_reason(count, measurement.timed_s, cap, twice=remeasured)
        return inconclusive(count, why, baseline=note, remeasured=remeasured)
    if has_baseline and starved(baseline.get("stop_reason"), baseline.get("count")):
        why = (
            f"the baseline has only {baseline.get('count')} samples, stopped by its budget (the gate needs at "
            f"least {MIN_GATE_SAMPLES}); record it again with --update-baselines and a larger --latency-budget"
        )
        return inconclusive(count, why, baseline=note, remeasured=remeasured)
    if not has_baseline:
        return no_baseline("latency", note)
    changed = timing_differences(context.gate.baseline or {}, {"engine": context.engine.facts()})
    return judge_latency(
        baseline["samples_us"],
        measurement.stats.samples_us,
        context.gate.policy,
        baseline=note,
        remeasured=remeasured,
        note=changed,
        # while updating, the verdict only informs: a threshold below the old resolution must not keep a test out
        resolution=context.gate.resolution if context.gate.enforce else None,
    )


def _explained(context: PointContext, verdict: GateVerdict) -> GateVerdict:
    """A latency regression with the layers that account for it (harness/explain.py): the baseline entry's layer
    profile against this run's, recorded after the measurement. The verdict itself stays as the samples judged it."""
    if verdict.verdict != "regression":
        return verdict
    baseline = LayerProfile.from_json((context.gate.baseline or {}).get("layer_profile"))
    rise = verdict.latency.added_us if verdict.latency is not None else None
    return replace(verdict, explanation=explain(baseline, context.record.layer_profile, latency_added_us=rise))


def _with_engine_costs(context: PointContext, verdict: GateVerdict) -> GateVerdict:
    """The latency verdict with the engine's costs judged against the baseline's where both recorded them (device
    memory on TensorRT, the output size on every backend): a cost beyond its threshold makes the test a regression
    whatever its latency did."""
    baseline_engine = (context.gate.baseline or {}).get("engine")
    if not isinstance(baseline_engine, dict) or verdict.verdict == "inconclusive":
        return verdict
    costs = tuple(
        cost
        for cost in judge_engine_costs(baseline_engine, context.record.engine_facts, context.gate.costs)
        if cost.old is not None and cost.new is not None  # a baseline recorded before a cost was: nothing to judge
    )
    if not costs:
        return verdict
    regressed = [cost.reason for cost in costs if cost.verdict == "regression"]
    if not regressed:
        return replace(verdict, costs=costs)
    reason = f"{'; '.join(regressed)}; latency: {verdict.reason}"
    return replace(verdict, verdict="regression", reason=reason, costs=costs)


def _accuracy_gate(context: PointContext, errors: Sequence[OutputErrors]) -> GateVerdict:
    baseline = (context.gate.baseline or {}).get("accuracy")
    if not isinstance(baseline, list):
        return no_baseline("accuracy", context.gate.note)
    return judge_accuracy(baseline, [e.to_json() for e in errors], context.gate.policy, baseline=context.gate.note)


def _build_gate(context: BuildContext, built: BuildRecord) -> GateVerdict:
    """Build time and plan size against the baseline's (gate.judge_build): a regression beyond either threshold."""
    baseline = (context.gate.baseline or {}).get("build")
    if not isinstance(baseline, dict):
        return no_baseline("build costs", context.gate.note)
    costs = judge_build(baseline, built.to_json(), context.gate.costs)
    return cost_verdict(costs, baseline=context.gate.note)


def _gate(context: PointContext | BuildContext, verdict: GateVerdict) -> None:
    """Record the comparison; fail the test that regressed (never the session). An unresolved latency passes: the
    summary lists it (gate.py says why)."""
    context.record.gate = verdict
    gate, test_id = context.gate, context.record.name
    kind = verdict.verdict
    if kind == "inconclusive":
        # Never a silent pass against a baseline, and never a baseline (an update writes passing tests only,
        # whether or not it enforces verdicts): a starved latency gates nothing and makes a useless baseline.
        pytest.fail(f"{test_id}: {verdict.reason}", pytrace=False)
    if not gate.enforce:
        return
    if kind == "regression":
        again = " (still after re-measuring once)" if verdict.remeasured else ""
        # The layers on a line of their own: the summary's failure line is the message's first (its why).
        layers = f"\n{explanation.line(verdict.explanation)}" if verdict.explanation is not None else ""
        pytest.fail(f"{test_id}: regression against {gate.note}: {verdict.reason}{again}{layers}", pytrace=False)
    if kind == "improvement" and gate.policy.fail_on_improvement:
        pytest.fail(
            f"{test_id}: {verdict.reason}; the baseline is stale: refresh it with --update-baselines", pytrace=False
        )
    if kind == "new" and gate.require:
        pytest.fail(f"{test_id}: no baseline ({gate.note}); record one with --update-baselines", pytrace=False)


def _failures(errors: Sequence[OutputErrors]) -> list[str]:
    return [
        f"output '{e.output}': {e.failure} (worst element {list(e.worst_index)}: "
        f"{e.worst_value!r} vs {e.worst_reference!r})"
        for e in errors
        if e.failure
    ]


def _fail_outside_tolerance(
    point: Point, errors: Sequence[OutputErrors], against: str, where: str | None = None
) -> None:
    failures = _failures(errors)
    if failures:
        located = f". Localized {where}" if where else ""
        pytest.fail(f"{point.id} against {against}: " + "; ".join(failures) + located, pytrace=False)
