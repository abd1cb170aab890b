"""Issue 18's audit rows 23, 24, 29 and 30 (first half), kept as tests: the gate at real-model size."""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import shutil
import time
from pathlib import Path

import numpy as np
import onnx
import pytest

from cases.identity import CASE as IDENTITY
from cases.mnist import CASE as MNIST
from harness.build import EngineStore
from harness.case import Case, Precision, Profile, ShapePoint
from harness.gate import MIN_GATE_SAMPLES, starved_reason
from harness.matrix import build_matrix
from harness.measure import MeasurePolicy, measure
from harness.precision import derive as derive_module
from harness.results.comparison import GateOptions, Side, compare, exit_status
from harness.results.document import BuildResult, TestResult
from harness.results.terminal import build_time
from tests.spec_support import linear_model
from tests.test_build import FakeBackend
from tests.test_gating import FAST, latency_record, project, record_baselines
from tests.test_measure import FakeClock, timer_from

__all__ = ["project"]  # the fixture, shared with tests/test_gating.py


# --- row 23: a model slower than ~33 ms per run -------------------------------------------------------------


def test_row_23_slow_model_extends_its_budget_to_the_samples_the_gate_needs() -> None:
    """Row 23: a model slower than ~33 ms per run: under 30 samples in the default 1 s budget → inconclusive."""
    clock = FakeClock()
    policy = MeasurePolicy(target_rel_ci=1e-9)  # noise the CI never settles: the default 1 s budget decides
    result = measure(timer_from(clock, lambda: 0.040 + 1e-3 * (clock.now % 3)), policy, clock)  # ~25 runs in 1 s
    assert result.stats.count == MIN_GATE_SAMPLES
    assert result.stop_reason == "budget"
    assert 1.0 < result.timed_s < 0.043 * MIN_GATE_SAMPLES


def test_row_23_a_model_too_slow_for_the_cap_stops_at_the_budget_and_says_how_long_it_needs() -> None:
    """Row 23: a model slower than ~33 ms per run: under 30 samples in the default 1 s budget → inconclusive."""
    clock = FakeClock()
    policy = MeasurePolicy(budget_s=1.0, budget_max_s=2.0, target_rel_ci=1e-9)
    durations = itertools.cycle((0.125, 0.0625))  # exact in binary; 30 runs need ~2.7 s, over the 2 s cap
    result = measure(timer_from(clock, lambda: next(durations)), policy, clock)
    assert (result.stats.count, result.stop_reason) == (11, "budget")  # no time spent on a lost cause
    assert starved_reason(result.stats.count, result.timed_s, policy.budget_max_s, twice=False) == (
        "11 samples in 1.0 s; 30 samples need ~2.7 s, more than --latency-budget-max (2 s) lets the budget "
        "extend to: raise --latency-budget to 4 (ini harness_latency_budget)"
    )


def test_row_23_a_slow_latency_test_gets_a_verdict_against_its_baseline(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Row 23: a model slower than ~33 ms per run: under 30 samples in the default 1 s budget → inconclusive."""
    record_baselines(project)
    monkeypatch.setenv("HARNESS_TEST_STALL_S", "1000")  # every run holds the host 20 ms: 10 runs per 0.2 s budget
    result = project.runpytest(
        *FAST, "--latency-budget", "0.2", "--latency-ci", "1e-6", "-k", "latency and opt", "--results", "r.json"
    )
    result.assert_outcomes(passed=1)
    record = latency_record(project)
    assert record["gate"]["verdict"] == "pass"  # type: ignore[index]
    assert record["latency"]["count"] >= MIN_GATE_SAMPLES  # type: ignore[index]
    assert record["latency"]["timed_s"] < 2.0  # type: ignore[index]  # extended as far as needed, not to the cap


@pytest.mark.parametrize("value", ["-1", "nan"])
def test_row_23_a_bad_budget_cap_is_refused_naming_the_option(pytester: pytest.Pytester, value: str) -> None:
    """Row 23: a model slower than ~33 ms per run: under 30 samples in the default 1 s budget → inconclusive."""
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    result = pytester.runpytest("--latency-budget-max", value, "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"*trt-harness: --latency-budget-max / harness_latency_budget_max must be a finite number > 0, got {value!r}*"]
    )


# --- row 24: fixed-shape models (min = opt = max) -----------------------------------------------------------


def _fixed(case: Case) -> Case:
    """`case` with its one profile's corners all at the opt shapes: a fixed-shape model."""
    (profile,) = case.profiles
    return dataclasses.replace(case, profiles=(Profile(min=profile.opt, opt=profile.opt, max=profile.opt),))


def test_row_24_a_fixed_profile_is_one_point_with_the_opt_id() -> None:
    """Row 24: fixed-shape models (min = opt = max): three identical points: accuracy and latency work done three times."""
    points = build_matrix([_fixed(IDENTITY), IDENTITY], [Precision.FP32], ["ort"])
    assert [point.id for point in points] == [
        "identity-fp32-opt-ort",  # the id the opt corner always had: its baselines are still found
        "identity-fp32-min-ort",
        "identity-fp32-opt-ort",
        "identity-fp32-max-ort",
    ]
    assert [point.shape_point for point in points][:1] == [ShapePoint.OPT]


def test_row_24_a_real_onnx_test_layout_model_runs_once_per_test(pytester: pytest.Pytester) -> None:
    """Row 24: fixed-shape models (min = opt = max): three identical points: accuracy and latency work done three times."""
    shipped = Path(onnx.__file__).parent / "backend" / "test" / "data" / "pytorch-converted" / "test_Conv2d"
    shutil.copytree(shipped, pytester.path / "conv2d")  # a model we did not write, in ONNX's test layout
    result = pytester.runpytest(
        "--harness-spec", "conv2d", "--precision", "fp32", "--latency-budget", "0.02", "-p", "no:cacheprovider",
        "--results", "r.json", "-k", "accuracy or latency", "-v",
    )  # fmt: skip
    result.assert_outcomes(passed=2)
    ran = [test["id"] for test in json.loads((pytester.path / "r.json").read_text())["tests"]]
    assert sorted(ran) == ["test_accuracy[conv2d-fp32-opt-ort]", "test_latency[conv2d-fp32-opt-ort]"]


def test_row_24_a_spec_model_with_fixed_dimensions_is_one_point(pytester: pytest.Pytester) -> None:
    """Row 24: fixed-shape models (min = opt = max): three identical points: accuracy and latency work done three times."""
    linear_model(pytester.path / "fixed.onnx", batch=4)
    (pytester.path / "models.toml").write_text('[[case]]\nname = "fixed"\nmodel = "fixed.onnx"\n')
    result = pytester.runpytest("--harness-spec", "models.toml", "--precision", "fp16", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["*test_accuracy?fixed-fp16-opt-ort?*"])
    assert "-min-" not in result.stdout.str() and "-max-" not in result.stdout.str()


# --- row 30 (first half): --build-only on spec models ---------------------------------------------------------


def test_row_30_build_only_skips_are_one_summary_line_not_a_row_per_point(pytester: pytest.Pytester) -> None:
    """Row 30: `--build-only` on spec models: about 40 "skip" rows per model in the summary."""
    pytester.makeconftest(
        "from cases.identity import CASE as IDENTITY\ndef pytest_harness_cases(config):\n    return [IDENTITY]\n"
    )
    pytester.makepyfile(
        test_matrix="from harness.suite import test_build, test_accuracy, test_latency, test_fuzz_inside_profile, "
        "test_fuzz_outside_profile\n"
    )
    result = pytester.runpytest("--build-only", "--precision", "fp32", "-p", "no:cacheprovider", "--results", "r.json")
    result.assert_outcomes(passed=1, skipped=8)
    section = result.stdout.str().split("= trt-harness =", 1)[1].split("\nresults: ", 1)[0]
    assert "8 tests not run: --build-only (accuracy, latency, fuzz of 3 points)" in section
    assert " skip" not in section  # no table row of skips: the build's row alone
    recorded = json.loads((pytester.path / "r.json").read_text())["tests"]
    assert sum(test["verdict"] == "skip" for test in recorded) == 8  # the results file still holds each one


# --- row 29: int8 calibration --------------------------------------------------------------------------------


def _slow_calibration(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """The calibration data takes `seconds` to make: a stand-in for a real model's minute of calibrating."""
    make = derive_module.calibration_inputs

    def slow(case: Case) -> list[dict[str, np.ndarray]]:
        time.sleep(seconds)
        return make(case)

    monkeypatch.setattr(derive_module, "calibration_inputs", slow)


def test_row_29_calibration_says_it_started_and_the_build_time_includes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Row 29: int8 calibration: silent for 51.7 s, then "built … in 2.1 s": derivation and calibration are left out of the build time and show no progress."""
    _slow_calibration(monkeypatch, 1.2)
    lines: list[str] = []
    store = EngineStore(tmp_path, write_progress=lines.append)
    first = store.artifact(FakeBackend(), MNIST, Precision.INT8, 0).record
    assert lines[0] == "deriving int8 model of mnist (calibrating, 8 batches)…"
    assert re.fullmatch(r"derived int8 model of mnist in \d+\.\d s", lines[1])
    built = re.fullmatch(
        r"built mnist-int8-p0 on fake in (\S+) s \(deriving the model (\S+) s, engine (\S+) s\)", lines[2]
    )
    assert built is not None, lines
    assert first.derive_s >= 1.2 and first.build_s < first.derive_s
    assert float(built[1]) == pytest.approx(first.derive_s + first.build_s, abs=0.051)
    # Another backend shares the session's model: it paid no derivation.
    assert store.artifact(FakeBackend(name="other"), MNIST, Precision.INT8, 0).record.derive_s == 0.0
    # The next session finds the calibration in the cache: nothing to say, and almost nothing paid.
    again: list[str] = []
    record = EngineStore(tmp_path, write_progress=again.append).artifact(FakeBackend(), MNIST, Precision.INT8, 0).record
    assert again == [] and record.cached and record.derive_s < 1.0


def test_row_29_the_summary_and_report_show_the_whole_cost() -> None:
    """Row 29: int8 calibration: silent for 51.7 s, then "built … in 2.1 s": derivation and calibration are left out of the build time and show no progress."""
    built = BuildResult.from_json({"cached": False, "build_s": 2.1, "derive_s": 51.7})
    cached = BuildResult.from_json({"cached": True, "build_s": 0.0, "derive_s": 51.7})
    assert built is not None and cached is not None
    assert (build_time(built), build_time(cached)) == ("53.80 s", "cached + 51.7 s")


def _accuracy_record(corner: str, shapes: dict[str, list[int]]) -> TestResult:
    point = f"conv2d-fp32-{corner}-ort"
    return TestResult.from_json(
        {"id": f"test_accuracy[{point}]", "case": "conv2d", "precision": "fp32", "shape": corner, "backend": "ort",
         "verdict": "pass", "point": point, "input_shapes": shapes}
    )  # fmt: skip


def test_row_24_an_older_file_s_three_identical_corners_are_not_dropped_coverage() -> None:
    """Row 24: fixed-shape models (min = opt = max): three identical points: accuracy and latency work done three times."""
    options = GateOptions(
        alpha=0.002, cpu_threshold=None, gpu_threshold=None, accuracy_factor=2.0, fail_on_improvement=False
    )
    fixed = {"x": [1, 3, 8, 8]}
    old = [_accuracy_record(corner, fixed) for corner in ("min", "opt", "max")]
    new = [_accuracy_record("opt", fixed)]
    rows = compare(Side("old", {t.id: t for t in old}), Side("new", {t.id: t for t in new}), options)
    assert [row.verdict for row in rows] == ["skip", "pass", "skip"]
    assert rows[0].reasons == (
        "a fixed shape (min = opt = max): the matrix now runs it once, as test_accuracy[conv2d-fp32-opt-ort]",
    )
    assert exit_status(rows, options) == 0
    # A corner whose shapes differed from opt's was real coverage: dropping it still fails the gate.
    old[0] = _accuracy_record("min", {"x": [1, 3, 4, 4]})
    rows = compare(Side("old", {t.id: t for t in old}), Side("new", {t.id: t for t in new}), options)
    assert rows[0].verdict == "removed" and exit_status(rows, options) == 1
