"""The latency gate's rules on synthetic samples (harness/gate.py): no machine, no timing."""

from __future__ import annotations

import numpy as np
import pytest

from harness.gate import GatePolicy, compare_latency, rank_test, ratio_ci


def runs(n: int, seed: int, scale: float = 1.0) -> np.ndarray:
    """n run durations (µs) of a 100 µs workload with a right tail, as a CPU gives them."""
    rng = np.random.default_rng(seed)
    return (100.0 + rng.gamma(2.0, 1.0, n)) * scale


def test_a_slowdown_of_every_run_beyond_the_threshold_is_a_regression() -> None:
    result = compare_latency(runs(800, 1), runs(800, 2, 1.2), GatePolicy(0.10))
    assert result.verdict == "regression"
    assert result.ratio == pytest.approx(1.2, rel=0.01) and result.low_ratio == pytest.approx(1.2, rel=0.01)
    assert result.low_ratio_ci[0] < result.low_ratio < result.low_ratio_ci[1]
    assert "p25" in result.reason and result.to_json()["low_ratio_ci"] == list(result.low_ratio_ci)


def test_a_neighbour_slowing_part_of_a_measurement_is_not_a_regression() -> None:
    """60 % of the new runs hit by a neighbour (1.5x): the median moves 30 %+, the fast runs' quartile does not."""
    new = runs(800, 2)
    hit = np.random.default_rng(3).random(new.size) < 0.6
    new[hit] *= 1.5
    result = compare_latency(runs(800, 1), new, GatePolicy(0.10))
    assert result.ratio > 1.3 and result.ratio_ci[1] > 1.1 and result.p_slower < 0.002  # rules 1 and 2 hold
    assert result.low_ratio < 1.05
    assert result.verdict == "pass"
    assert "not a regression: the p25 quartile is within it" in result.reason  # the pass says why


def test_a_slowdown_without_significance_says_so() -> None:
    """Five samples a side, all 30 % slower: beyond the threshold on their face; five cannot reach α = 0.002."""
    result = compare_latency(runs(5, 1), runs(5, 2, 1.3), GatePolicy(0.10))
    assert result.verdict == "pass" and result.ratio > 1.1
    assert "not a regression: not significant, p = " in result.reason


def test_an_improvement_needs_the_quartile_too() -> None:
    assert compare_latency(runs(800, 1), runs(800, 2, 0.8), GatePolicy(0.10)).verdict == "improvement"
    assert compare_latency(runs(800, 1), runs(800, 2), GatePolicy(0.10)).verdict == "pass"


def test_the_policy_keeps_its_positional_interface() -> None:
    policy = GatePolicy(0.05, 0.01)
    assert (policy.latency_threshold, policy.alpha, policy.confidence, policy.low_quantile) == (0.05, 0.01, 0.95, 0.25)


@pytest.mark.parametrize("sizes", [(600, 500), (40, 35), (5000, 4000)])
def test_the_closed_form_ci_agrees_with_scipys_bootstrap(sizes: tuple[int, int]) -> None:
    """The order-statistic CI of the ratio of medians matches a 4000-resample percentile bootstrap."""
    from scipy import stats

    old, new = runs(sizes[0], 4), runs(sizes[1], 5, 1.07)
    low, high = ratio_ci(old, new, 0.95)
    reference = stats.bootstrap(
        (new, old),
        lambda a, b, axis: np.median(a, axis=axis) / np.median(b, axis=axis),
        n_resamples=4000,
        confidence_level=0.95,
        method="percentile",
        vectorized=True,
        random_state=np.random.default_rng(1),
    ).confidence_interval
    assert low == pytest.approx(reference.low, abs=0.003) and high == pytest.approx(reference.high, abs=0.003)


@pytest.mark.parametrize("sizes", [(5, 800), (9, 9), (300, 200), (2000, 2000)])
def test_the_rank_test_agrees_with_scipys_mann_whitney(sizes: tuple[int, int]) -> None:
    """Both one-sided p-values from one ranking equal scipy's, ties (rounded samples) included."""
    from scipy import stats

    old, new = np.round(runs(sizes[0], 6), 1), np.round(runs(sizes[1], 7, 1.01), 1)
    slower, faster = rank_test(new, old)
    assert slower == pytest.approx(stats.mannwhitneyu(new, old, alternative="greater").pvalue, rel=1e-9)
    assert faster == pytest.approx(stats.mannwhitneyu(new, old, alternative="less").pvalue, rel=1e-9)
