"""Tests of the timing layer. Time is faked throughout: no test sleeps or depends on the machine."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.measure import LatencyStats, Measurement, MeasurePolicy, measure, median_ci


class FakeClock:
    """A host clock that only moves when a fake timer says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def timer_from(clock: FakeClock, durations: Callable[[], float]) -> Callable[[], float]:
    """A timer whose every run takes the duration it reports, on the fake clock too."""

    def run() -> float:
        duration = durations()
        clock.now += duration
        return duration

    return run


def noisy(seed: int = 0) -> Callable[[], float]:
    """Durations around 1 ms with ~50% spread: a 1% CI of the median needs thousands of samples."""
    rng = np.random.default_rng(seed)
    return lambda: float(rng.lognormal(math.log(1e-3), 0.5))


# --- LatencyStats -----------------------------------------------------------------------------


def test_stats_of_1_to_100_us() -> None:
    stats = LatencyStats.from_samples([i * 1e-6 for i in range(1, 101)])
    std = math.sqrt(100 * 101 / 12)  # sample std of 1..n is sqrt(n(n+1)/12)
    assert stats.count == 100
    assert stats.min_us == pytest.approx(1.0, rel=1e-12)
    assert stats.median_us == pytest.approx(50.5, rel=1e-12)
    assert stats.mean_us == pytest.approx(50.5, rel=1e-12)
    # linear percentiles: rank 0.90 * 99 = 89.1 -> 90.1 and 0.99 * 99 = 98.01 -> 99.01
    assert stats.p90_us == pytest.approx(90.1, rel=1e-12)
    assert stats.p99_us == pytest.approx(99.01, rel=1e-12)
    assert stats.max_us == pytest.approx(100.0, rel=1e-12)
    assert stats.std_us == pytest.approx(std, rel=1e-12)
    assert stats.cv == pytest.approx(std / 50.5, rel=1e-12)
    assert stats.confidence == 0.95
    # n=100 at 95%: ranks 40 and 61 (binomial(100, 1/2)), so 40 us and 61 us
    assert stats.median_ci_us == pytest.approx((40.0, 61.0), rel=1e-12)


def test_stats_keep_samples_in_order() -> None:
    samples_s = [3e-6, 1e-6, 2e-6, 5e-6]
    stats = LatencyStats.from_samples(samples_s)
    assert stats.samples_us == pytest.approx((3.0, 1.0, 2.0, 5.0), rel=1e-12)


def test_single_sample_has_zero_spread() -> None:
    stats = LatencyStats.from_samples([2e-6])
    assert (stats.count, stats.std_us, stats.cv) == (1, 0.0, 0.0)
    assert stats.median_ci_us == (stats.min_us, stats.max_us)


def test_stats_json_round_trip() -> None:
    stats = LatencyStats.from_samples(np.random.default_rng(1).lognormal(-7, 0.3, 57).tolist(), 0.9)
    data = json.loads(json.dumps(stats.to_json()))
    assert list(data) == [
        "count", "min_us", "median_us", "mean_us", "p90_us", "p99_us", "max_us",
        "std_us", "cv", "median_ci_us", "confidence", "samples_us",
    ]  # fmt: skip
    assert isinstance(stats.to_json()["samples_us"], list)
    assert LatencyStats.from_json(data) == stats


def test_stats_from_json_names_missing_keys() -> None:
    data = LatencyStats.from_samples([1e-6, 2e-6]).to_json()
    del data["p99_us"]
    with pytest.raises(ValueError, match="p99_us"):
        LatencyStats.from_json(data)


@pytest.mark.parametrize("bad", [[], [1e-6, float("nan")], [1e-6, -1e-6]])
def test_stats_reject_unusable_samples(bad: list[float]) -> None:
    with pytest.raises(ValueError):
        LatencyStats.from_samples(bad)


# --- median_ci --------------------------------------------------------------------------------


def test_median_ci_covers_true_median_at_about_95_percent() -> None:
    rng = np.random.default_rng(12345)
    draws = rng.normal(0.0, 1.0, size=(1000, 101))  # true median 0
    hits = 0
    for row in draws:
        lo, hi = median_ci(row)
        hits += lo <= 0.0 <= hi
    assert 0.93 <= hits / len(draws) <= 0.99


def test_median_ci_narrows_as_n_grows() -> None:
    rng = np.random.default_rng(7)
    intervals = [median_ci(rng.normal(size=n)) for n in (100, 1_000, 10_000, 100_000)]
    widths = [hi - lo for lo, hi in intervals]
    assert all(a > b for a, b in itertools.pairwise(widths))


def test_median_ci_of_two_samples_is_their_range() -> None:
    assert median_ci([5.0, 3.0]) == (3.0, 5.0)


def test_median_ci_is_an_order_statistic_pair() -> None:
    # n=10 at 95%: the largest symmetric ranks with coverage >= 95% are 2 and 9 (97.9%).
    assert median_ci([float(v) for v in range(10, 0, -1)]) == (2.0, 9.0)


# --- measure ----------------------------------------------------------------------------------


def test_low_noise_timer_stops_on_ci() -> None:
    clock = FakeClock()
    rng = np.random.default_rng(3)
    timer = timer_from(clock, lambda: 1e-3 * (1 + 1e-4 * rng.standard_normal()))
    result = measure(timer, MeasurePolicy(), clock)
    assert result.stop_reason == "ci"
    assert result.stats.count == MeasurePolicy().min_samples  # the first batch is already precise
    lo, hi = result.stats.median_ci_us
    assert (hi - lo) / 2 <= 0.01 * result.stats.median_us


def test_noisy_timer_stops_on_budget() -> None:
    clock = FakeClock()
    policy = MeasurePolicy(budget_s=0.5)
    result = measure(timer_from(clock, noisy()), policy, clock)
    assert result.stop_reason == "budget"
    # ~1 ms per run: a few hundred samples, and the last one crossed the budget
    assert 100 < result.stats.count < 1000
    timed_s = sum(result.stats.samples_us) / 1e6
    assert policy.budget_s <= timed_s < policy.budget_s + max(result.stats.samples_us) / 1e6


def test_sample_cap_stops_on_max_samples() -> None:
    clock = FakeClock()
    policy = MeasurePolicy(budget_s=1e6, max_samples=50)
    result = measure(timer_from(clock, noisy()), policy, clock)
    assert (result.stop_reason, result.stats.count) == ("max_samples", 50)


def test_takes_min_samples_even_when_budget_is_spent() -> None:
    clock = FakeClock()
    policy = MeasurePolicy(budget_s=1.0, min_samples=10)
    result = measure(timer_from(clock, lambda: 10.0 + 0.1 * (clock.now % 7)), policy, clock)
    assert (result.stop_reason, result.stats.count) == ("budget", 10)


def test_budget_is_checked_between_single_samples() -> None:
    clock = FakeClock()
    policy = MeasurePolicy(warmup_iters=1, warmup_s=0.1, budget_s=1.0, min_samples=3)
    result = measure(timer_from(clock, lambda: 0.4), policy, clock)
    # 0.4 s per run: after 3 runs 1.2 s >= 1.0 s, long before a batch could end; 3 samples are too
    # few for a 95% interval, so the constant durations do not count as "ci".
    assert (result.stop_reason, result.stats.count) == ("budget", 3)
    assert result.wall_s == pytest.approx(0.4 * (1 + 3))


def test_warm_up_runs_are_not_in_the_stats() -> None:
    clock = FakeClock()
    calls: list[int] = []

    def timer() -> float:
        calls.append(len(calls))
        clock.now += 1 / 64
        return (len(calls) - 1) * 1e-6  # run i reports i us

    # 5/64 s of warm-up at 1/64 s per run (exact in binary) is 5 runs, more than warmup_iters=3
    policy = MeasurePolicy(warmup_s=5 / 64, warmup_iters=3, budget_s=1e6, max_samples=20)
    result = measure(timer, policy, clock)
    assert result.warmup_iters == 5
    assert result.stats.samples_us == pytest.approx(tuple(float(i) for i in range(5, 25)), rel=1e-12)
    assert result.wall_s == pytest.approx(25 / 64)


def test_warm_up_runs_at_least_warmup_iters() -> None:
    clock = FakeClock()
    policy = MeasurePolicy(warmup_s=1e-3, warmup_iters=4, budget_s=0.1, min_samples=3, max_samples=3)
    assert measure(timer_from(clock, lambda: 1.0), policy, clock).warmup_iters == 4


def test_measurement_json() -> None:
    clock = FakeClock()
    result = measure(timer_from(clock, lambda: 1e-3), MeasurePolicy(), clock)
    data = json.loads(json.dumps(result.to_json()))
    assert list(data)[:3] == ["stop_reason", "warmup_iters", "wall_s"]
    assert data["stop_reason"] == result.stop_reason and data["wall_s"] == result.wall_s
    assert LatencyStats.from_json(data) == result.stats
    assert isinstance(result, Measurement)


# --- MeasurePolicy ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("warmup_s", 0.0),
        ("warmup_s", float("inf")),
        ("warmup_iters", 0),
        ("warmup_iters", 2.5),
        ("budget_s", -1.0),
        ("budget_s", float("nan")),
        ("target_rel_ci", 0),
        ("confidence", 0.0),
        ("confidence", 1.0),
        ("min_samples", 2),
        ("min_samples", True),
        ("max_samples", 5),  # below the default min_samples of 10
    ],
)
def test_policy_rejects_bad_values(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=rf"MeasurePolicy\.{field} must be"):
        MeasurePolicy(**{field: value})  # type: ignore[arg-type]


def test_policy_accepts_equal_min_and_max_samples() -> None:
    assert MeasurePolicy(min_samples=3, max_samples=3).max_samples == 3


# --- properties -------------------------------------------------------------------------------

# Durations from 1 ns to 1000 s: every time a benchmark can plausibly report.
durations = st.lists(st.floats(min_value=1e-9, max_value=1e3), min_size=1, max_size=300)


@settings(max_examples=300, deadline=None)
@given(samples_s=durations, confidence=st.floats(min_value=0.5, max_value=0.999))
def test_stats_are_ordered(samples_s: list[float], confidence: float) -> None:
    stats = LatencyStats.from_samples(samples_s, confidence)
    lo, hi = stats.median_ci_us
    assert stats.min_us <= lo <= stats.median_us <= hi <= stats.max_us
    assert stats.min_us <= stats.median_us <= stats.p90_us <= stats.p99_us <= stats.max_us


# --- nothing slow in the timed phase ----------------------------------------------------------


@pytest.mark.parametrize("confidence", [0.5, 0.9, 0.95, 0.99, 0.999])
def test_ci_rank_is_the_exact_binomial_quantile(confidence: float) -> None:
    from scipy.stats import binom

    from harness.measure import _lower_rank

    for n in [*range(1, 400), 1000, 4321, 100_000]:
        assert _lower_rank(n, confidence) == int(binom.ppf((1 - confidence) / 2, n, 0.5)), n


def test_the_timed_phase_imports_nothing_slow() -> None:
    """scipy.stats, imported lazily inside the timed phase for the CI of the median, took 0.9-3 s on a loaded
    machine and starved the first latency test of a session. Measuring must work with scipy unimportable."""
    script = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'scipy':\n"
        "            raise ImportError('scipy imported during a measurement')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import random\n"
        "from harness.measure import MeasurePolicy, measure\n"
        "m = measure(lambda: random.lognormvariate(-7, 0.5), MeasurePolicy(budget_s=0.5, target_rel_ci=1e-9))\n"
        "assert m.stop_reason in ('budget', 'max_samples') and m.stats.count > 30, (m.stop_reason, m.stats.count)\n"
        "print('ok', m.stats.count)\n"
    )
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", script], check=False, cwd=repo, capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("ok"), done.stderr
