"""The latency gate's rules on synthetic samples (harness/gate.py): no machine, no timing."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.gate import GatePolicy, PairedRounds, compare_latency, rank_test, ratio_ci


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


def rounds_of(states: list[float], seed: int, scale: float = 1.0) -> tuple[np.ndarray, tuple[int, ...]]:
    """Interleaved rounds of 200 runs each, every round in its own machine state (a factor on all its runs), as
    `python -m harness ab` pools them: the samples in round order and each round's count."""
    parts = [runs(200, seed * 100 + index, scale * state) for index, state in enumerate(states)]
    return np.concatenate(parts), tuple(part.size for part in parts)


def test_paired_rounds_do_not_count_the_machines_states_as_a_slowdown() -> None:
    """Unchanged work on a VM whose state moves 10-15 % between measurements, B's three rounds in slower states:
    pooling ranks 600 runs as if each were independent evidence (p ~ 1e-197) and calls a regression; three pairs
    cannot tell the states from software at alpha, and say so."""
    old, old_sizes = rounds_of([1.0, 1.02, 0.99], 1)
    new, new_sizes = rounds_of([1.15, 1.12, 1.10], 2)
    policy = GatePolicy(0.10)
    assert compare_latency(old, new, policy).verdict == "regression"  # what ab did before it paired rounds
    paired = compare_latency(old, new, policy, PairedRounds(old_sizes, new_sizes))
    assert paired.verdict == "pass" and paired.ratio == pytest.approx(1.12, abs=0.01) and paired.p_slower > 0.002
    assert "over 3 paired rounds" in paired.reason and "not a regression: not significant" in paired.reason


def test_paired_rounds_find_a_slowdown_through_the_machines_states() -> None:
    """Every round's new runs 20 % slower than the old ones just before them, while the state swings by 40 %."""
    states = [1.0, 1.4, 0.9, 1.2, 1.0, 1.3]
    old, old_sizes = rounds_of(states, 1)
    new, new_sizes = rounds_of(states, 2, scale=1.2)
    paired = compare_latency(old, new, GatePolicy(0.10), PairedRounds(old_sizes, new_sizes))
    assert paired.verdict == "regression" and paired.ratio == pytest.approx(1.2, abs=0.01)
    assert paired.ratio_ci[0] < paired.ratio < paired.ratio_ci[1] and paired.low_ratio == pytest.approx(1.2, abs=0.01)
    assert paired.ratio_ci == pytest.approx((1.2, 1.2), rel=0.01)  # the states cancel: the CI is as narrow as a round
    faster = compare_latency(new, old, GatePolicy(0.10), PairedRounds(new_sizes, old_sizes))
    assert faster.verdict == "improvement"


def test_paired_rounds_see_a_slowdown_through_rounds_that_straddle_a_state_switch() -> None:
    """12 % slower in every round but three, where the VM switched between its 1.0 and 1.5 states between OLD's
    measurement and NEW's (what a shared VM does, docs/gating.md): Student's t on the plain mean of the rounds'
    log-ratios takes their +-0.4 for the noise and calls 12 % not significant; the trimmed mean sets them aside."""
    from scipy import stats

    old_states = [1.0] * 4 + [1.5, 1.0, 1.0, 1.5] + [1.0] * 4 + [1.0, 1.0, 1.0]
    new_states = [1.0] * 4 + [1.0, 1.5, 1.0, 1.0] + [1.0] * 4 + [1.5, 1.0, 1.0]
    old, old_sizes = rounds_of(old_states, 1)
    parts = [runs(200, 200 + index, 1.12 * state) for index, state in enumerate(new_states)]
    new, new_sizes = np.concatenate(parts), tuple(part.size for part in parts)
    paired = compare_latency(old, new, GatePolicy(0.10), PairedRounds(old_sizes, new_sizes))
    assert paired.verdict == "regression" and paired.ratio == pytest.approx(1.12, abs=0.01)
    logs = [
        math.log(np.median(b) / np.median(a))
        for a, b in zip(np.split(old, np.cumsum(old_sizes)[:-1]), np.split(new, np.cumsum(new_sizes)[:-1]))
    ]
    assert stats.ttest_1samp(logs, 0.0, alternative="greater").pvalue > GatePolicy(0.10).alpha


def test_paired_rounds_of_unchanged_work_with_switches_stay_a_pass() -> None:
    """The same switches without a slowdown: the trimmed mean is near 1 and nothing is flagged either way."""
    states = [1.0] * 4 + [1.5, 1.0, 1.0, 1.5] + [1.0] * 7
    shifted = [1.0] * 4 + [1.0, 1.5, 1.0, 1.0] + [1.0] * 4 + [1.5, 1.0, 1.0]
    old, old_sizes = rounds_of(states, 1)
    new, new_sizes = rounds_of(shifted, 2)
    paired = compare_latency(old, new, GatePolicy(0.10), PairedRounds(old_sizes, new_sizes))
    assert paired.verdict == "pass" and paired.ratio == pytest.approx(1.0, abs=0.01)


def test_paired_rounds_of_a_quantized_timer_with_identical_ratios_are_still_evidence() -> None:
    """A GPU timer's medians fall on its quantum, so the kept rounds often share one ratio exactly (107 / 101 in
    every round here): their zero spread is not "no evidence", the rounds' own samples bound the error."""
    old_parts = [np.round(runs(200, 10 + index)) for index in range(5)]
    new_parts = [np.round(runs(200, 20 + index, 1.06)) for index in range(5)]
    (ratio,) = {float(np.median(b) / np.median(a)) for a, b in zip(old_parts, new_parts)}
    sizes = tuple(part.size for part in old_parts)
    paired = compare_latency(
        np.concatenate(old_parts), np.concatenate(new_parts), GatePolicy(0.05), PairedRounds(sizes, sizes)
    )
    assert paired.verdict == "regression" and paired.ratio == pytest.approx(ratio)
    constant = compare_latency(
        np.full(600, 100.0), np.full(600, 106.0), GatePolicy(0.05), PairedRounds((200,) * 3, (200,) * 3)
    )
    assert constant.verdict == "pass" and constant.p_slower == 1.0  # a constant clock says nothing about noise


def test_round_sizes_that_do_not_split_the_samples_are_refused() -> None:
    with pytest.raises(ValueError, match=r"round sizes \[100, 50\] do not split 200 samples"):
        compare_latency(runs(200, 1), runs(200, 2), GatePolicy(0.10), PairedRounds((100, 50), (100, 100)))
