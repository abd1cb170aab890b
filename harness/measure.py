"""The timing layer: warm up, sample adaptively until the median is known well enough, summarize.

Nothing here knows about a backend. A backend hands over a Timer that runs its workload once and
reports that run's duration in its own clock (host perf_counter, CUDA events, ...). The host clock
used here only decides when to stop; it never becomes a sample.
"""

from __future__ import annotations

import functools
import math
import numbers
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Literal, TypeGuard

import numpy as np

from harness.gate import MIN_GATE_SAMPLES
from harness.recorded import significant

Timer = Callable[[], float]
# A backend's clock: runs the workload once and returns that run's duration in SECONDS, as the
# backend measures it (host perf_counter around a synchronous run for ONNX Runtime; CUDA events
# for TensorRT).

StopReason = Literal["ci", "budget", "max_samples"]

_US_PER_S = 1e6
# Each timed batch is this much larger than the one before, so the number of CI checks (each O(n))
# grows only with log(n) and the total checking cost stays O(n) even at max_samples.
_BATCH_GROWTH = 1.5


@dataclass(frozen=True)
class MeasurePolicy:
    """When to stop warming up and when to stop sampling."""

    warmup_s: float = 0.05  # warm-up by time ...
    warmup_iters: int = 3  # ... but at least this many runs
    budget_s: float = 1.0  # wall-clock budget for the timed phase (host clock)
    # A slow workload that the budget would stop short of wanted_samples may run on up to this (never below
    # budget_s), when its first samples show that wanted_samples fit in it: a model of 40 ms per run got 25
    # samples in 1 s, and every latency test of it was inconclusive against its baseline.
    budget_max_s: float = 10.0
    wanted_samples: int = MIN_GATE_SAMPLES  # what the gate needs to give a verdict
    target_rel_ci: float = 0.01  # stop when the CI of the median is within ±1% of the median
    confidence: float = 0.95
    min_samples: int = 10
    max_samples: int = 100_000

    def __post_init__(self) -> None:
        _require("warmup_s", self.warmup_s, _is_positive_real(self.warmup_s), "a finite number > 0")
        _require("warmup_iters", self.warmup_iters, _is_int_at_least(self.warmup_iters, 1), "an integer >= 1")
        _require("budget_s", self.budget_s, _is_positive_real(self.budget_s), "a finite number > 0")
        _require("budget_max_s", self.budget_max_s, _is_positive_real(self.budget_max_s), "a finite number > 0")
        _require("wanted_samples", self.wanted_samples, _is_int_at_least(self.wanted_samples, 1), "an integer >= 1")
        _require("target_rel_ci", self.target_rel_ci, _is_probability(self.target_rel_ci), "a number in (0, 1)")
        _require("confidence", self.confidence, _is_probability(self.confidence), "a number in (0, 1)")
        # Fewer than 3 samples give no spread at all, so no statistic would mean anything.
        _require("min_samples", self.min_samples, _is_int_at_least(self.min_samples, 3), "an integer >= 3")
        _require(
            "max_samples",
            self.max_samples,
            _is_int_at_least(self.max_samples, self.min_samples),
            f"an integer >= min_samples ({self.min_samples})",
        )


class PolicyValueError(ValueError):
    """A MeasurePolicy field out of its range: which field and what it must be, for a caller that names it its own
    way (the pytest options)."""

    def __init__(self, name: str, value: object, allowed: str) -> None:
        super().__init__(f"MeasurePolicy.{name} must be {allowed}, got {value!r}")
        self.field, self.allowed = name, allowed


def _require(name: str, value: object, ok: bool, allowed: str) -> None:
    if not ok:
        raise PolicyValueError(name, value, allowed)


def _is_real(value: object) -> TypeGuard[numbers.Real]:
    # bool is an int to Python, but True as a duration or a count is always a mistake.
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_positive_real(value: object) -> bool:
    return _is_real(value) and math.isfinite(value) and float(value) > 0


def _is_probability(value: object) -> bool:
    return _is_real(value) and 0 < float(value) < 1


def _is_int_at_least(value: object, low: int) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) >= low


@dataclass(frozen=True)
class LatencyStats:
    """Summary of one series of run durations. All times are in microseconds.

    Percentiles use numpy's "linear" method (interpolation between the two nearest order
    statistics, numpy's default), so p99 of few samples lies between the two largest ones.
    """

    count: int
    min_us: float
    median_us: float
    mean_us: float
    p90_us: float
    p99_us: float
    max_us: float
    std_us: float  # sample standard deviation (ddof=1); 0.0 for a single sample
    cv: float  # std / mean; 0.0 when the mean is 0 (then every sample is 0)
    median_ci_us: tuple[float, float]  # distribution-free CI of the median at `confidence`
    confidence: float
    samples_us: tuple[float, ...]  # raw samples in the order they were taken

    @classmethod
    def from_samples(cls, samples_s: Sequence[float], confidence: float = 0.95) -> LatencyStats:
        """Summarize durations given in seconds."""
        seconds = _finite_samples(samples_s)
        if (seconds < 0).any():
            raise ValueError(f"durations must be >= 0 seconds, got {float(seconds.min())!r}; check the timer")
        us = np.asarray(significant(seconds * _US_PER_S))
        mean = float(us.mean())
        std = float(us.std(ddof=1)) if us.size > 1 else 0.0
        p90, p99 = (float(p) for p in np.percentile(us, [90, 99], method="linear"))
        return cls(
            count=int(us.size),
            min_us=float(us.min()),
            median_us=float(np.median(us)),
            mean_us=mean,
            p90_us=p90,
            p99_us=p99,
            max_us=float(us.max()),
            std_us=std,
            cv=std / mean if mean > 0 else 0.0,
            median_ci_us=median_ci(us, confidence),
            confidence=float(confidence),
            samples_us=tuple(us.tolist()),
        )

    def to_json(self) -> dict[str, object]:
        """A dict of plain JSON types, keyed by field name."""
        data: dict[str, object] = {f.name: getattr(self, f.name) for f in fields(self)}
        data["median_ci_us"] = list(self.median_ci_us)
        data["samples_us"] = list(self.samples_us)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> LatencyStats:
        """Inverse of to_json. Other keys are ignored, so a Measurement's JSON is accepted too."""
        missing = [f.name for f in fields(cls) if f.name not in data]
        if missing:
            raise ValueError(f"latency stats JSON lacks {missing}; was it written by LatencyStats.to_json?")
        lo, hi = _json_floats(data, "median_ci_us", length=2)
        return cls(
            count=int(_json_float(data, "count")),
            min_us=_json_float(data, "min_us"),
            median_us=_json_float(data, "median_us"),
            mean_us=_json_float(data, "mean_us"),
            p90_us=_json_float(data, "p90_us"),
            p99_us=_json_float(data, "p99_us"),
            max_us=_json_float(data, "max_us"),
            std_us=_json_float(data, "std_us"),
            cv=_json_float(data, "cv"),
            median_ci_us=(lo, hi),
            confidence=_json_float(data, "confidence"),
            samples_us=_json_floats(data, "samples_us"),
        )


def _json_number(key: str, value: object) -> float:
    if not _is_real(value):
        raise ValueError(f"latency stats JSON: '{key}' must hold numbers, got {value!r}")
    return float(value)


def _json_float(data: Mapping[str, object], key: str) -> float:
    return _json_number(key, data[key])


def _json_floats(data: Mapping[str, object], key: str, length: int | None = None) -> tuple[float, ...]:
    value = data[key]
    if not isinstance(value, (list, tuple)) or (length is not None and len(value) != length):
        size = "a list" if length is None else f"a list of {length}"
        raise ValueError(f"latency stats JSON: '{key}' must be {size} numbers, got {value!r}")
    return tuple(_json_number(key, item) for item in value)


@dataclass(frozen=True)
class Measurement:
    """The outcome of measure(): the statistics and how the sampling ended."""

    stats: LatencyStats
    stop_reason: StopReason  # "ci" (target reached), "budget" (time spent) or "max_samples"
    warmup_iters: int
    wall_s: float  # host wall time of warm-up + timed phase
    timed_s: float  # host wall time of the timed phase alone: what the samples cost (the budget it used)

    def to_json(self) -> dict[str, object]:
        return {
            "stop_reason": self.stop_reason,
            "warmup_iters": self.warmup_iters,
            "wall_s": self.wall_s,
            "timed_s": self.timed_s,
            **self.stats.to_json(),
        }


def median_ci(samples: Sequence[float] | np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free confidence interval of the median, from order statistics.

    The number of samples below the true median is binomial(n, 1/2) whatever the distribution,
    so (X_(j), X_(n+1-j)) covers the median with probability 1 - 2 * F(j - 1). j is the largest
    rank that keeps this >= confidence. When n is so small that even (min, max) falls short,
    (min, max) is returned anyway: it is the widest interval the data can give.
    """
    values = _finite_samples(samples)
    if not _is_probability(confidence):
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    rank = _lower_rank(values.size, confidence)
    if rank == 0:
        return float(values.min()), float(values.max())
    low, high = rank - 1, values.size - rank  # 0-based indices of X_(j) and X_(n+1-j)
    # Partitioning finds both order statistics in O(n), cheaper than a full sort at 100k samples.
    ordered = np.partition(values, (low, high))
    return float(ordered[low]), float(ordered[high])


@functools.lru_cache(maxsize=1024)
def _lower_rank(n: int, confidence: float) -> int:
    """The 1-based rank j of the CI's lower end, or 0 when no interval reaches `confidence`.

    Exact Binomial(n, 1/2) in numpy. It runs between the batches of the timed phase, so it must cost
    microseconds: scipy.stats (binom.ppf) took 0.9-3 s to import there under load and starved the first
    latency test of a session of its budget (11 samples, a 2x slowdown passed the gate).
    """
    tail = (1 - confidence) / 2
    # log P(X = k) for k = 0 .. n // 2 (the lower tail is all that is needed, and the pmf is symmetric):
    # log C(n, k) = sum over i <= k of log((n - i + 1) / i), accumulated, minus n log 2.
    k = np.arange(1, n // 2 + 1, dtype=np.float64)
    log_pmf = np.concatenate(([0.0], np.cumsum(np.log((n - k + 1) / k)))) - n * math.log(2)
    cdf = np.cumsum(np.exp(log_pmf))
    # The smallest x with F(x) >= tail; then F(x - 1) < tail, so j = x is the largest rank whose coverage
    # 1 - 2 * F(j - 1) is at least `confidence` (what scipy's binom.ppf(tail, n, 0.5) gives).
    return int(np.searchsorted(cdf, tail, side="left"))


def _finite_samples(samples: Sequence[float] | np.ndarray) -> np.ndarray:
    values = np.asarray(samples, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"need a non-empty 1-d sequence of samples, got shape {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError("samples must be finite; a NaN or inf duration means the timer failed")
    return values


def measure(
    timer: Timer,
    policy: MeasurePolicy = MeasurePolicy(),
    clock: Callable[[], float] = time.perf_counter,
) -> Measurement:
    """Warm up, then time `timer` until the median is precise enough, the budget is spent or the cap is hit.

    `clock` (seconds) only paces the phases; tests pass a fake one to drive time deterministically.
    """
    start = clock()
    warmup_iters = _warm_up(timer, policy, clock)
    timed_from = clock()
    samples, stop_reason = _timed_phase(timer, policy, clock)
    end = clock()
    return Measurement(
        stats=LatencyStats.from_samples(samples, policy.confidence),
        stop_reason=stop_reason,
        warmup_iters=warmup_iters,
        wall_s=end - start,
        timed_s=end - timed_from,
    )


def _warm_up(timer: Timer, policy: MeasurePolicy, clock: Callable[[], float]) -> int:
    """Run until both warm-up limits are met, discarding the durations; return the run count."""
    start = clock()
    runs = 0
    while runs < policy.warmup_iters or clock() - start < policy.warmup_s:
        timer()
        runs += 1
    return runs


def _timed_phase(timer: Timer, policy: MeasurePolicy, clock: Callable[[], float]) -> tuple[list[float], StopReason]:
    samples: list[float] = []
    start = clock()
    batch = policy.min_samples
    while True:
        goal = min(len(samples) + batch, policy.max_samples)
        spent = False
        while len(samples) < goal and not spent:
            samples.append(float(timer()))
            # Checked after every run so a slow workload overruns the budget by one run, not a
            # batch; but never before min_samples, so there are always samples to summarize.
            spent = len(samples) >= policy.min_samples and _budget_spent(len(samples), clock() - start, policy)
        # The precision target is reported first: if it was met, the budget did not matter.
        if _precise_enough(samples, policy):
            return samples, "ci"
        if spent:
            return samples, "budget"
        if len(samples) >= policy.max_samples:
            return samples, "max_samples"
        batch = math.ceil(batch * _BATCH_GROWTH)


def _budget_spent(count: int, elapsed_s: float, policy: MeasurePolicy) -> bool:
    """Whether the timed phase must stop after `count` samples in `elapsed_s`: the budget is spent, unless fewer
    than wanted_samples were taken and, at the pace so far, wanted_samples fit within budget_max_s; then the
    budget extends until they are taken (or budget_max_s is spent). When even budget_max_s is too short, the
    phase stops at the budget: the verdict is inconclusive either way, and says how long it would need."""
    if elapsed_s < policy.budget_s:
        return False
    if count >= policy.wanted_samples:
        return True
    cap = max(policy.budget_s, policy.budget_max_s)
    return elapsed_s >= cap or elapsed_s / count * policy.wanted_samples > cap


def _precise_enough(samples: list[float], policy: MeasurePolicy) -> bool:
    values = np.asarray(samples)
    # Too few samples for any interval at this confidence: median_ci's (min, max) fallback would
    # claim a precision the data cannot back, however narrow it happens to be.
    if _lower_rank(values.size, policy.confidence) == 0:
        return False
    low, high = median_ci(values, policy.confidence)
    return (high - low) / 2 <= policy.target_rel_ci * float(np.median(values))
