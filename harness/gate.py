"""The gate step: a verdict per test from its measurements and its baseline.

Latency. A test regresses when all hold:
  1. the slowdown is significant: one-sided Mann–Whitney U on the raw samples, new slower than old,
     p < alpha (default 0.002), so unchanged code almost never fails (A/A false alarms <= alpha);
  2. the slowdown may reach the threshold: the upper end of the 95 % bootstrap CI of the ratio of
     medians (new / old) lies above 1 + threshold (10 % on CPU backends, 5 % on GPU ones);
  3. the fast runs moved too: the upper end of the 95 % bootstrap CI of the ratio of the lower quartiles
     (GatePolicy.low_quantile, 25th percentile) lies above 1 + threshold as well.
Rule 2 reads "slower than the baseline by more than the threshold" with the measurement's own
uncertainty: a true slowdown of exactly the threshold is flagged about 97 % of the time instead of
a coin toss, while a significant but smaller one (CI entirely below the threshold) passes.
Rule 3 is for shared machines: a neighbour that takes the CPU for part of a measurement slows the runs
it lands on and drags the median up, while the runs it missed keep the lower quartile where it was; a
real regression of the engine moves every run, the quartile with the median, so rule 3 costs it little.
One bootstrap serves both CIs (the same resamples).
Improvements are the mirror image and fail only on request (stale baselines).

Accuracy. A test regresses when an output fails its tolerance (the accuracy test already fails),
or when its mean relative error grows beyond `accuracy_factor` times the baseline's, judged against
at least 1 % of the tolerance so that an exact 0 turning into 1e-12 is not a regression.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

# A latency test that its budget stopped with fewer samples than this is re-measured once, and if still short it
# is "inconclusive" and fails (harness/suite.py): 11 samples left a 2x slowdown inside the CI of the ratio.
MIN_GATE_SAMPLES = 30
# Bootstrap resamples cost O(n) each; this many samples per side keep a CI under ~50 ms.
_MAX_CI_SAMPLES = 4000
_BOOTSTRAP_RESAMPLES = 2000
_BOOTSTRAP_CELLS = 2_000_000  # samples resampled per step of the bootstrap (two float64 arrays of this size)


@dataclass(frozen=True)
class GatePolicy:
    latency_threshold: float  # relative slowdown that counts as a regression (0.10 = 10 %)
    alpha: float = 0.002  # significance of the one-sided rank test
    confidence: float = 0.95  # of the CI of the ratio of medians
    accuracy_factor: float = 2.0  # mean relative error may grow this much before it is a regression
    fail_on_improvement: bool = False  # for stale baselines: an improvement fails too
    low_quantile: float = 0.25  # rule 3: this quantile must have moved beyond the threshold as well


@dataclass(frozen=True)
class LatencyComparison:
    old_median_us: float
    new_median_us: float
    ratio: float  # new / old medians
    ratio_ci: tuple[float, float]
    p_slower: float  # one-sided Mann–Whitney U: new slower than old
    p_faster: float
    verdict: str  # "pass", "regression" or "improvement"
    reason: str
    low_quantile: float = 0.25  # rule 3's quantile, and the same statistics of it:
    old_low_us: float = float("nan")
    new_low_us: float = float("nan")
    low_ratio: float = float("nan")
    low_ratio_ci: tuple[float, float] = (float("nan"), float("nan"))

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["ratio_ci"] = list(self.ratio_ci)
        data["low_ratio_ci"] = list(self.low_ratio_ci)
        return data


@dataclass(frozen=True)
class AccuracyComparison:
    output: str
    old_mean_rel: float
    new_mean_rel: float
    verdict: str  # "pass" or "regression"
    reason: str

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def starved_reason(count: int, timed_s: float, budget_max_s: float, *, twice: bool) -> str:
    """Why a latency measurement with fewer than MIN_GATE_SAMPLES samples gives no verdict, and the budget that
    would: "12 samples in 1.0 s; 30 samples need ~2.6 s: raise --latency-budget to 3". The pace is the host's
    wall time per sample, the timed phase's own (its overhead included), so the advice is what the phase needs."""
    needed_s = timed_s / max(count, 1) * MIN_GATE_SAMPLES
    return (
        f"{count} samples in {timed_s:.1f} s{' (measured twice)' if twice else ''}; {MIN_GATE_SAMPLES} samples need "
        f"~{needed_s:.1f} s, more than --latency-budget-max ({budget_max_s:g} s) lets the budget extend to: raise "
        f"--latency-budget to {math.ceil(needed_s * 1.1)} (ini harness_latency_budget)"
    )


def compare_latency(
    old_us: Sequence[float], new_us: Sequence[float], policy: GatePolicy, seed: int = 0
) -> LatencyComparison:
    from scipy import stats

    old, new = np.asarray(old_us, dtype=np.float64), np.asarray(new_us, dtype=np.float64)
    q = policy.low_quantile
    old_median, new_median = float(np.median(old)), float(np.median(new))
    old_low, new_low = float(np.quantile(old, q)), float(np.quantile(new, q))
    ratio, low_ratio = new_median / old_median, new_low / old_low
    (low, high), (q_low, q_high) = _ratio_cis(old, new, (0.5, q), policy.confidence, seed)
    p_slower = float(stats.mannwhitneyu(new, old, alternative="greater").pvalue)
    p_faster = float(stats.mannwhitneyu(new, old, alternative="less").pvalue)
    limit = 1 + policy.latency_threshold
    verdict = "pass"
    reason = (
        f"median {ratio:.3f}× the baseline (95 % CI {low:.3f}–{high:.3f}), p{q * 100:.0f} {low_ratio:.3f}× "
        f"(95 % CI {q_low:.3f}–{q_high:.3f})"
    )
    if p_slower < policy.alpha and high > limit and q_high > limit:
        verdict = "regression"
        reason = f"slower: {reason}, beyond the {policy.latency_threshold:.0%} threshold; p = {p_slower:.2g}"
    elif p_faster < policy.alpha and low < 1 - policy.latency_threshold and q_low < 1 - policy.latency_threshold:
        verdict = "improvement"
        reason = f"faster: {reason}, beyond the {policy.latency_threshold:.0%} threshold; p = {p_faster:.2g}"
    elif ratio > limit:  # slower than the threshold on its face, yet passed: say which of the gate's rules held
        if p_slower >= policy.alpha:
            held = f"not significant, p = {p_slower:.2g} ≥ α {policy.alpha:g}"
        elif q_high <= limit:
            held = f"the p{q * 100:.0f} quartile is within it (only part of the runs slowed: a neighbour?)"
        else:
            held = "the median's 95 % CI reaches inside it"
        reason = f"{reason}; beyond the {policy.latency_threshold:.0%} threshold but not a regression: {held}"
    return LatencyComparison(
        old_median,
        new_median,
        ratio,
        (low, high),
        p_slower,
        p_faster,
        verdict,
        reason,
        q,
        old_low,
        new_low,
        low_ratio,
        (q_low, q_high),
    )


def ratio_ci(old: np.ndarray, new: np.ndarray, confidence: float, seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap CI of median(new) / median(old), from at most _MAX_CI_SAMPLES per side."""
    ((low, high),) = _ratio_cis(np.asarray(old), np.asarray(new), (0.5,), confidence, seed)
    return low, high


def _ratio_cis(
    old: np.ndarray, new: np.ndarray, quantiles: Sequence[float], confidence: float, seed: int
) -> list[tuple[float, float]]:
    """Percentile-bootstrap CIs of quantile(new) / quantile(old) for each quantile, from the same resamples
    (at most _MAX_CI_SAMPLES per side, every k-th sample), in numpy."""
    rng = np.random.default_rng(seed)
    a, b = _thinned(new), _thinned(old)
    q = np.asarray(quantiles, dtype=np.float64)
    ratios = np.empty((_BOOTSTRAP_RESAMPLES, q.size))
    batch = max(1, _BOOTSTRAP_CELLS // max(a.size, b.size))  # resamples per step: bounded memory
    for start in range(0, _BOOTSTRAP_RESAMPLES, batch):
        count = min(batch, _BOOTSTRAP_RESAMPLES - start)
        resampled_a = a[rng.integers(0, a.size, (count, a.size))]
        resampled_b = b[rng.integers(0, b.size, (count, b.size))]
        ratios[start : start + count] = (np.quantile(resampled_a, q, axis=1) / np.quantile(resampled_b, q, axis=1)).T
    tail = (1 - confidence) / 2 * 100
    bounds = np.percentile(ratios, [tail, 100 - tail], axis=0)
    return [(float(bounds[0, i]), float(bounds[1, i])) for i in range(q.size)]


def _thinned(samples: np.ndarray) -> np.ndarray:
    """Every k-th sample: the distribution is kept, the order (drift) spread evenly."""
    step = max(1, len(samples) // _MAX_CI_SAMPLES)
    return samples[::step]


def compare_accuracy(
    old: Sequence[Mapping[str, object]], new: Sequence[Mapping[str, object]], policy: GatePolicy
) -> list[AccuracyComparison]:
    """Per output present in both: the mean relative error against the baseline's."""
    before = {str(entry["output"]): entry for entry in old}
    comparisons = []
    for entry in new:
        name = str(entry["output"])
        if name not in before:
            continue
        old_rel, new_rel = _float(before[name]["mean_rel"]), _float(entry["mean_rel"])
        tolerance = entry.get("tolerance") or {}
        limit = _float(tolerance.get("mean_rel") or 0.0) if isinstance(tolerance, Mapping) else 0.0
        reference = max(old_rel, 0.01 * limit)
        if entry.get("failure"):
            verdict, reason = "regression", f"fails its tolerance: {entry['failure']}"
        elif new_rel > policy.accuracy_factor * reference and new_rel > old_rel:
            verdict = "regression"
            reason = f"mean relative error {new_rel:.3g} > {policy.accuracy_factor:g}× the baseline's {old_rel:.3g}"
        else:
            verdict, reason = "pass", f"mean relative error {new_rel:.3g} (baseline {old_rel:.3g})"
        comparisons.append(AccuracyComparison(name, old_rel, new_rel, verdict, reason))
    return comparisons


def _float(value: object) -> float:
    return float(value)  # type: ignore[arg-type]


def timing_differences(old: Mapping[str, object], new: Mapping[str, object]) -> str | None:
    """What conditioned the two records' latencies differently, from their engines' `timing` facts (ONNX Runtime's
    intra-op threads, TensorRT's copies, graph, sync, launches): a latency ratio then measures the settings as well
    as the software, and the verdict says so. None where they agree or either record has none."""
    before, after = _timing(old), _timing(new)
    if not before or not after:
        return None
    changed = [
        f"{key} {before.get(key)!r} → {after.get(key)!r}"
        for key in sorted({*before, *after})
        if before.get(key) != after.get(key)
    ]
    if not changed:
        return None
    return f"note: timed under other settings than the baseline ({', '.join(changed)}): the ratio measures them too"


def _timing(record: Mapping[str, object]) -> Mapping[str, object]:
    engine = record.get("engine")
    timing = engine.get("timing") if isinstance(engine, Mapping) else None
    return timing if isinstance(timing, Mapping) else {}
