"""The gate's typed verdict (harness/gate.py's GateVerdict): the results file's "gate" keys as the session has
always written them, older records read back, and the judging functions from plain samples and accuracy entries."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from harness.gate import (
    MIN_GATE_SAMPLES,
    GatePolicy,
    GateVerdict,
    inconclusive,
    judge_accuracy,
    judge_latency,
    no_baseline,
)
from harness.results.comparison import GateOptions, compare_pair
from harness.results.document import TestResult

NOTE = "baselines/cpu/ort-1.20.json"


def runs(n: int, seed: int, scale: float = 1.0) -> np.ndarray:
    return (100.0 + np.random.default_rng(seed).gamma(2.0, 1.0, n)) * scale


def test_each_kind_writes_the_keys_the_results_file_has_always_held_in_their_order() -> None:
    latency = judge_latency(runs(200, 1), runs(200, 2, 1.3), GatePolicy(0.10), baseline=NOTE, remeasured=True)
    accuracy = judge_accuracy(
        [{"output": "y", "mean_rel": 1e-6}], [{"output": "y", "mean_rel": 1e-6}], GatePolicy(0.10), baseline=NOTE
    )
    starved = inconclusive(12, "12 samples in 1.0 s", baseline=NOTE, remeasured=False)
    assert list(latency.to_json()) == ["verdict", "baseline", "reason", "latency", "remeasured"]
    assert list(accuracy.to_json()) == ["verdict", "baseline", "reason", "accuracy"]
    assert list(starved.to_json()) == ["verdict", "baseline", "reason", "samples", "min_samples", "remeasured"]
    assert no_baseline("latency", NOTE).to_json() == {
        "verdict": "new",
        "baseline": NOTE,
        "reason": "no baseline latency for this test",
    }
    assert starved.to_json()["reason"] == "latency inconclusive: 12 samples in 1.0 s"
    assert (starved.samples, starved.min_samples) == (12, MIN_GATE_SAMPLES)


@pytest.mark.parametrize("kind", ["latency", "accuracy", "inconclusive", "new"])
def test_a_verdict_reads_back_from_its_json_unchanged(kind: str) -> None:
    policy = GatePolicy(0.10)
    verdict = {
        "latency": lambda: judge_latency(runs(200, 1), runs(200, 2, 1.3), policy, baseline=NOTE, remeasured=False),
        "accuracy": lambda: judge_accuracy(
            [{"output": "y", "mean_rel": 1e-6}], [{"output": "y", "mean_rel": 5e-6}], policy, baseline=NOTE
        ),
        "inconclusive": lambda: inconclusive(3, "too few", baseline=NOTE, remeasured=True),
        "new": lambda: no_baseline("accuracy", NOTE),
    }[kind]()
    assert GateVerdict.from_json(json.loads(json.dumps(verdict.to_json()))) == verdict


def test_an_older_sparse_record_reads_with_what_it_holds() -> None:
    """A record written before the gate recorded p25 statistics, with only a ratio, its CI and a verdict."""
    gate = GateVerdict.from_json(
        {"verdict": "regression", "reason": "slower", "latency": {"ratio": 1.3, "ratio_ci": [1.2, "inf"]}}
    )
    assert gate is not None and gate.baseline is None and gate.remeasured is None
    assert gate.latency_ratio == 1.3 and gate.latency_ratio_ci == (1.2, math.inf)
    assert gate.latency is not None and math.isnan(gate.latency.low_ratio) and gate.latency.low_quantile == 0.25
    assert GateVerdict.from_json(None) is None and GateVerdict.from_json({}) is None


def test_the_judging_functions_give_the_verdicts_and_reasons_of_the_rules() -> None:
    policy = GatePolicy(0.10)
    slower = judge_latency(runs(800, 1), runs(800, 2, 1.2), policy, note="note: timed under other settings")
    assert slower.verdict == slower.latency_verdict == "regression"
    assert slower.reason.startswith("slower: median ") and slower.reason.endswith("; note: timed under other settings")
    assert slower.latency_ratio == pytest.approx(1.2, rel=0.01)
    grown = judge_accuracy(
        [{"output": "y", "mean_rel": 1e-6}, {"output": "z", "mean_rel": 1e-6}],
        [{"output": "y", "mean_rel": 1e-5}, {"output": "z", "mean_rel": 1e-6}],
        policy,
    )
    assert grown.verdict == "regression"
    assert grown.reason == "output 'y': mean relative error 1e-05 > 2× the baseline's 1e-06"
    assert grown.accuracy is not None and [item.verdict for item in grown.accuracy] == ["regression", "pass"]


def test_compare_reads_an_inconclusive_shortfall_from_the_typed_verdict() -> None:
    """`compare` names a session's inconclusive latency by the samples its verdict recorded."""
    record = {
        "id": "test_latency[identity-fp32-opt-ort]",
        "case": "identity",
        "precision": "fp32",
        "shape": "opt",
        "backend": "ort",
        "verdict": "fail",
        "gate": inconclusive(12, "12 samples in 1.0 s", baseline=NOTE, remeasured=True).to_json(),
    }
    test = TestResult.from_json(record)
    options = GateOptions(
        alpha=0.002, cpu_threshold=None, gpu_threshold=None, accuracy_factor=2.0, fail_on_improvement=False
    )
    row = compare_pair(test, test, options)
    assert (row.verdict, row.detail) == ("inconclusive", f"12 samples < {MIN_GATE_SAMPLES}")
    assert row.reasons == ("latency inconclusive: 12 samples in 1.0 s",)


def test_compare_shows_the_numbers_of_a_latency_test_its_own_session_failed() -> None:
    """A latency regression NEW's session gate failed keeps its samples: compare's row shows old, new and the ratio
    (seen in a new user's pass: the three regressions were the rows with "—" in every number)."""

    def record(samples: np.ndarray, verdict: str) -> TestResult:
        latency = {"median_us": float(np.median(samples)), "count": len(samples), "samples_us": samples.tolist()}
        return TestResult.from_json(
            {
                "id": "test_latency[identity-fp32-opt-ort]",
                "case": "identity",
                "precision": "fp32",
                "shape": "opt",
                "backend": "ort",
                "verdict": verdict,
                "message": "regression against baseline" if verdict == "fail" else None,
                "latency": latency,
            }
        )

    options = GateOptions(
        alpha=0.002, cpu_threshold=None, gpu_threshold=None, accuracy_factor=2.0, fail_on_improvement=False
    )
    row = compare_pair(record(runs(200, 1), "pass"), record(runs(200, 2, scale=1.3), "fail"), options)
    assert row.verdict == "regression" and row.reasons[0].startswith("passed in the old run, fail in the new one")
    assert row.latency is not None and row.latency.ratio == pytest.approx(1.3, rel=0.03)
    unmeasured = TestResult.from_json(
        {key: value for key, value in record(runs(1, 2), "error").raw.items() if key != "latency"}
    )
    errored = compare_pair(record(runs(200, 1), "pass"), unmeasured, options)
    assert errored.verdict == "regression" and errored.latency is None  # nothing measured: no numbers made up
