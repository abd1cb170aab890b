"""The gate step: a verdict per test from its measurements and its baseline.

Latency. A test regresses when all hold:
  1. the slowdown is significant: one-sided Mann–Whitney U on the raw samples, new slower than old,
     p < alpha (default 0.002), so unchanged code almost never fails (A/A false alarms <= alpha);
  2. the slowdown may reach the threshold: the upper end of the 95 % CI of the ratio of medians
     (new / old) lies above 1 + threshold (10 % on CPU backends, 5 % on GPU ones);
  3. the fast runs moved too: the upper end of the 95 % CI of the ratio of the lower quartiles
     (GatePolicy.low_quantile, 25th percentile) lies above 1 + threshold as well.
Rule 2 reads "slower than the baseline by more than the threshold" with the measurement's own
uncertainty: a true slowdown of exactly the threshold is flagged about 97 % of the time instead of
a coin toss, while a significant but smaller one (CI entirely below the threshold) passes.
Rule 3 is for shared machines: a neighbour that takes the CPU for part of a measurement slows the runs
it lands on and drags the median up, while the runs it missed keep the lower quartile where it was; a
real regression of the engine moves every run, the quartile with the median, so rule 3 costs it little.
The CIs are closed-form and distribution-free (Price & Bonett 2002, "Distribution-free confidence intervals
for difference and ratio of medians", generalized to any quantile): each side's log-quantile gets its variance
from the order statistics that bound its binomial CI, and the log-ratio's CI adds both. They agree with a
percentile bootstrap to a few thousandths, and cost one sort per side instead of 2000 resamples (a bootstrap
per test made `compare` take 171 s for 10,000 tests).
Improvements are the mirror image and fail only on request (stale baselines).
A threshold below the resolution of the baseline's machine (its A/A drift, harness/drift.py) gives no verdict on a
move within that resolution: "unresolved", naming the fix (judge_latency's `resolution`). Unresolved neither fails
nor passes the latency: the test passes on its other checks and the summary and `compare` list it apart, because
failing every latency test of a noisy machine teaches users to ignore the gate, and passing them would claim what the
machine cannot show.

Accuracy. A test regresses when an output fails its tolerance (the accuracy test already fails),
or when its mean relative error grows beyond `accuracy_factor` times the baseline's, judged against
at least 1 % of the tolerance so that an exact 0 turning into 1e-12 is not a regression.

Costs. A build test's build time and plan size, and a latency test's device memory and output size (the output
stage: the bytes each inference hands back), are one number per side: a cost regresses when it grew beyond
1 + its threshold (CostPolicy says each default and why), improves when it fell below 1 - threshold. A build found in
the engine cache, or under a second on both sides, is inconclusive on time and fails nothing (judge_build_time);
cost_verdict folds a build test's costs into its GateVerdict, and a latency test's engine cost beyond its threshold
makes its verdict a regression (judge_engine_costs; harness/suite.py).

Verdicts. judge_latency, judge_accuracy, inconclusive and no_baseline take plain data (samples, accuracy entries,
counts) and return a GateVerdict: the session records and asserts it (harness/suite.py), the results file holds its
to_json (harness/results/document.py reads it back with from_json), `compare` judges two files' samples with the same
functions (harness/results/comparison.py), and the renderers show it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from statistics import NormalDist

import numpy as np

from harness.explain import Explanation
from harness.recorded import recorded_number
from harness.results.units import size

# A latency verdict on a machine too noisy for the threshold (judge_latency's `resolution`): neither pass nor fail.
UNRESOLVED = "unresolved"

# A latency test that its budget stopped with fewer samples than this is re-measured once, and if still short it
# is "inconclusive" and fails (harness/suite.py): 11 samples left a 2x slowdown inside the CI of the ratio.
MIN_GATE_SAMPLES = 30


def starved(stop_reason: object, count: object) -> bool:
    """Stopped by its budget with fewer samples than the gate needs (a "ci" stop was precise enough): no verdict
    from it, in the session (harness/suite.py) as in `compare`."""
    return stop_reason == "budget" and isinstance(count, (int, float)) and count < MIN_GATE_SAMPLES


# With this many samples or fewer on a side, the rank test is scipy's own (its exact test where there are no ties);
# beyond, its normal approximation with tie and continuity correction, computed here once for both tails.
_EXACT_RANK_TEST = 8


@dataclass(frozen=True)
class GatePolicy:
    latency_threshold: float  # relative slowdown that counts as a regression (0.10 = 10 %)
    alpha: float = 0.002  # significance of the one-sided rank test
    confidence: float = 0.95  # of the CI of the ratio of medians
    accuracy_factor: float = 2.0  # mean relative error may grow this much before it is a regression
    fail_on_improvement: bool = False  # for stale baselines: an improvement fails too
    low_quantile: float = 0.25  # rule 3: this quantile must have moved beyond the threshold as well


@dataclass(frozen=True)
class Resolution:
    """The smallest latency threshold the baseline's machine supports (harness/drift.py: its A/A drift), and where
    that was recorded ("A/A drift of 14 tests in baselines/…/ort-1.23.json")."""

    threshold: float
    source: str


@dataclass(frozen=True)
class LatencyComparison:
    old_median_us: float
    new_median_us: float
    ratio: float  # new / old medians
    ratio_ci: tuple[float, float]
    p_slower: float  # one-sided Mann–Whitney U, new slower than old (paired rounds: Yuen's trimmed t's)
    p_faster: float
    verdict: str  # "pass", "regression" or "improvement"
    reason: str
    low_quantile: float = 0.25  # rule 3's quantile, and the same statistics of it:
    old_low_us: float = float("nan")
    new_low_us: float = float("nan")
    low_ratio: float = float("nan")
    low_ratio_ci: tuple[float, float] = (float("nan"), float("nan"))

    @property
    def added_us(self) -> float:
        """How much the median rose (new - old): what a regression's layers are set against (harness/explain.py)."""
        return self.new_median_us - self.old_median_us

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["ratio_ci"] = list(self.ratio_ci)
        data["low_ratio_ci"] = list(self.low_ratio_ci)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> LatencyComparison:
        """As to_json wrote it; a number a file lacks (an older or a sparse record) reads as NaN."""
        low_quantile = _json_number(data.get("low_quantile"))
        return cls(
            old_median_us=_json_number(data.get("old_median_us")),
            new_median_us=_json_number(data.get("new_median_us")),
            ratio=_json_number(data.get("ratio")),
            ratio_ci=_json_interval(data.get("ratio_ci")),
            p_slower=_json_number(data.get("p_slower")),
            p_faster=_json_number(data.get("p_faster")),
            verdict=str(data.get("verdict") or ""),
            reason=str(data.get("reason") or ""),
            low_quantile=low_quantile if math.isfinite(low_quantile) else 0.25,
            old_low_us=_json_number(data.get("old_low_us")),
            new_low_us=_json_number(data.get("new_low_us")),
            low_ratio=_json_number(data.get("low_ratio")),
            low_ratio_ci=_json_interval(data.get("low_ratio_ci")),
        )


@dataclass(frozen=True)
class AccuracyComparison:
    output: str
    old_mean_rel: float
    new_mean_rel: float
    verdict: str  # "pass" or "regression"
    reason: str

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> AccuracyComparison:
        return cls(
            output=str(data.get("output", "")),
            old_mean_rel=_json_number(data.get("old_mean_rel")),
            new_mean_rel=_json_number(data.get("new_mean_rel")),
            verdict=str(data.get("verdict") or ""),
            reason=str(data.get("reason") or ""),
        )


@dataclass(frozen=True)
class GateVerdict:
    """One test's verdict against its baseline: what the session records and asserts (harness/suite.py), what the
    results file holds under "gate" (to_json / from_json keep its keys, so older files read) and what the renderers
    show. `compare` judges two files' samples with the same functions (harness/results/comparison.py)."""

    verdict: str  # pass, regression, improvement, new, inconclusive or unresolved (UNRESOLVED)
    reason: str
    baseline: str | None  # which baseline it was judged against, or why there is none
    latency: LatencyComparison | None = None  # a latency test judged against its baseline's samples
    accuracy: tuple[AccuracyComparison, ...] | None = None  # an accuracy test judged against its baseline's errors
    samples: int | None = None  # an inconclusive latency: the samples measured, and the least the gate needs
    min_samples: int | None = None
    remeasured: bool | None = None  # a latency verdict: whether it judged a second measurement
    # A latency regression: the layers that account for it, from the baseline's and this run's layer profiles
    # (harness/explain.py); added once the run is profiled, which never changes the verdict.
    explanation: Explanation | None = None
    # Costs against the baseline's: a build test's build time and plan size, a latency test's device memory and
    # output size
    costs: tuple[CostComparison, ...] | None = None

    @property
    def latency_ratio(self) -> float | None:
        """New median / baseline median, where a latency was compared."""
        return self.latency.ratio if self.latency is not None else None

    @property
    def latency_ratio_ci(self) -> tuple[float, float] | None:
        return self.latency.ratio_ci if self.latency is not None else None

    @property
    def latency_verdict(self) -> str | None:
        """The latency comparison's own verdict, where there was one."""
        return self.latency.verdict if self.latency is not None else None

    def to_json(self) -> dict[str, object]:
        """The results file's "gate": the fields a verdict of its kind has, in the order files have held them."""
        data: dict[str, object] = {"verdict": self.verdict, "baseline": self.baseline, "reason": self.reason}
        optional: dict[str, object | None] = {
            "latency": self.latency.to_json() if self.latency is not None else None,
            "accuracy": [item.to_json() for item in self.accuracy] if self.accuracy is not None else None,
            "samples": self.samples,
            "min_samples": self.min_samples,
            "remeasured": self.remeasured,
            "explanation": self.explanation.to_json() if self.explanation is not None else None,
            "costs": [cost.to_json() for cost in self.costs] if self.costs is not None else None,
        }
        data.update({key: value for key, value in optional.items() if value is not None})
        return data

    @classmethod
    def from_json(cls, data: object) -> GateVerdict | None:
        """A recorded "gate"; None where a record has none. Tolerant of sparse records: what is absent reads empty."""
        if not isinstance(data, Mapping) or not data:
            return None
        latency, accuracy = data.get("latency"), data.get("accuracy")
        reason, baseline, remeasured = data.get("reason"), data.get("baseline"), data.get("remeasured")
        return cls(
            verdict=str(data.get("verdict", "")),
            reason=str(reason) if reason is not None else "",
            baseline=str(baseline) if baseline is not None else None,
            latency=LatencyComparison.from_json(latency) if isinstance(latency, Mapping) else None,
            accuracy=tuple(AccuracyComparison.from_json(item) for item in accuracy if isinstance(item, Mapping))
            if isinstance(accuracy, list)
            else None,
            samples=_json_count(data.get("samples")),
            min_samples=_json_count(data.get("min_samples")),
            remeasured=remeasured if isinstance(remeasured, bool) else None,
            explanation=Explanation.from_json(data.get("explanation")),
            costs=tuple(CostComparison.from_json(cost) for cost in costs if isinstance(cost, Mapping))
            if isinstance(costs := data.get("costs"), list)
            else None,
        )


def _json_number(value: object) -> float:
    """A recorded number (compare.recorded_number), NaN where there is none."""
    number = recorded_number(value)
    return math.nan if number is None else number


def _json_interval(value: object) -> tuple[float, float]:
    if isinstance(value, list) and len(value) == 2:
        return _json_number(value[0]), _json_number(value[1])
    return math.nan, math.nan


def _json_count(value: object) -> int | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and float(value).is_integer():
        return int(value)
    return None


def no_baseline(measured: str, baseline: str | None) -> GateVerdict:
    """Nothing to judge against: "no baseline latency for this test"."""
    return GateVerdict("new", f"no baseline {measured} for this test", baseline)


def inconclusive(count: int, why: str, *, baseline: str | None, remeasured: bool) -> GateVerdict:
    """A latency the gate cannot judge: too few samples on a side (starved), and why."""
    return GateVerdict(
        "inconclusive",
        f"latency inconclusive: {why}",
        baseline,
        samples=count,
        min_samples=MIN_GATE_SAMPLES,
        remeasured=remeasured,
    )


def judge_latency(
    old_us: Sequence[float] | np.ndarray,
    new_us: Sequence[float] | np.ndarray,
    policy: GatePolicy,
    *,
    baseline: str | None = None,
    remeasured: bool | None = None,
    note: str | None = None,
    resolution: Resolution | None = None,
    rounds: PairedRounds | None = None,
) -> GateVerdict:
    """NEW's latency samples against OLD's (compare_latency; by paired `rounds` where both sides ran interleaved);
    `note` (timing_differences) follows the reason.

    Where the threshold is below the `resolution` the baseline's machine supports, a move within that resolution
    is noise as much as software: the verdict is UNRESOLVED, saying so and naming the fix. A move beyond it (judged
    at the resolution) is still a regression or an improvement."""
    comparison = compare_latency(old_us, new_us, policy, rounds)
    suffix = f"; {note}" if note else ""
    if resolution is None or policy.latency_threshold >= resolution.threshold:
        return GateVerdict(
            comparison.verdict, comparison.reason + suffix, baseline, latency=comparison, remeasured=remeasured
        )
    coarse = compare_latency(old_us, new_us, replace(policy, latency_threshold=resolution.threshold), rounds)
    if coarse.verdict != "pass":
        reason = f"{coarse.reason} (this machine's resolution, {resolution.source}: above the threshold){suffix}"
        return GateVerdict(coarse.verdict, reason, baseline, latency=coarse, remeasured=remeasured)
    return GateVerdict(
        UNRESOLVED,
        f"latency unresolved: {below_resolution(policy.latency_threshold, resolution)}; {comparison.reason}{suffix}",
        baseline,
        latency=comparison,
        remeasured=remeasured,
    )


def below_resolution(threshold: float, resolution: Resolution) -> str:
    """Why a threshold gives no verdict on this machine, and the fix: the resolution rounded up to the 0.5 % the
    threshold scan of benchmarks/gate_quality.py steps in, so that the advised threshold is enough."""
    advised = math.ceil(resolution.threshold * 200 - 1e-9) / 200
    return (
        f"threshold {threshold:.1%} is below this machine's resolution {resolution.threshold:.1%} "
        f"({resolution.source}): raise --latency-threshold to {advised:g} ({advised:.1%}) or use "
        "`python -m harness ab` (interleaved, so drift cancels)"
    )


def judge_accuracy(
    old: Sequence[Mapping[str, object]],
    new: Sequence[Mapping[str, object]],
    policy: GatePolicy,
    *,
    baseline: str | None = None,
) -> GateVerdict:
    """NEW's accuracy entries against OLD's, output by output (compare_accuracy): a regression where any regressed;
    the reason names the regressed outputs, else every compared one."""
    comparisons = tuple(compare_accuracy(old, new, policy))
    failing = [c for c in comparisons if c.verdict == "regression"]
    return GateVerdict(
        "regression" if failing else "pass",
        "; ".join(f"output '{c.output}': {c.reason}" for c in failing or comparisons),
        baseline,
        accuracy=comparisons,
    )


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
    old_us: Sequence[float] | np.ndarray,
    new_us: Sequence[float] | np.ndarray,
    policy: GatePolicy,
    rounds: PairedRounds | None = None,
) -> LatencyComparison:
    """NEW's samples against OLD's by the module's rules; with `rounds`, by their interleaved rounds
    (compare_rounds)."""
    if rounds is not None:
        return compare_rounds(old_us, new_us, rounds, policy)
    old, new = np.sort(np.asarray(old_us, dtype=np.float64)), np.sort(np.asarray(new_us, dtype=np.float64))
    q = policy.low_quantile
    (low, high), (q_low, q_high) = _ratio_cis(old, new, (0.5, q), policy.confidence)
    medians, lows = (_quantile(old, 0.5), _quantile(new, 0.5)), (_quantile(old, q), _quantile(new, q))
    return _judged(
        _Moves(medians, lows, medians[1] / medians[0], (low, high), lows[1] / lows[0], (q_low, q_high)),
        _rank_test(new, old),
        policy,
        "",
    )


@dataclass(frozen=True)
class PairedRounds:
    """How many samples each round of an interleaved run contributed, in order, on each side (`python -m harness
    ab`: round i of OLD ran right before round i of NEW). Both sides have the same number of rounds, at least 2."""

    old_sizes: tuple[int, ...]
    new_sizes: tuple[int, ...]


def compare_rounds(
    old_us: Sequence[float] | np.ndarray, new_us: Sequence[float] | np.ndarray, rounds: PairedRounds, policy: GatePolicy
) -> LatencyComparison:
    """NEW against OLD round by round: the machine drifts between rounds (a shared VM's medians move by 10 % from one
    second to the next), so pooling the rounds' samples and ranking them would count that drift as evidence, while
    each round's NEW against the OLD measured just before it cancels it. The rules are the module's, on the rounds'
    log-ratios of medians (and of lower quartiles): their 20 % trimmed mean is the ratio, Yuen's trimmed t gives its
    CI and the one-sided p (paired_trimmed_t), so with n rounds the evidence grows as sqrt(n) whatever the drift."""
    old_rounds, new_rounds = _split(old_us, rounds.old_sizes), _split(new_us, rounds.new_sizes)
    q = policy.low_quantile
    pairs = list(zip(old_rounds, new_rounds))
    per_round = np.array([[_quantile(side, 0.5), _quantile(side, q)] for pair in pairs for side in pair]).reshape(
        len(old_rounds), 2, 2
    )  # round, side (old, new), quantile (median, low)
    logs = np.log(per_round[:, 1, :] / per_round[:, 0, :])  # round, quantile
    z = NormalDist().inv_cdf(1 - (1 - policy.confidence) / 2)
    sampling = [  # each quantile's log-ratio variance within a round, from the round's own samples; mean of rounds
        float(np.mean([_log_quantile_variance(old, p, z) + _log_quantile_variance(new, p, z) for old, new in pairs]))
        for p in (0.5, q)
    ]
    (ratio, ci, p_slower, p_faster), (low_ratio, low_ci, _, _) = (
        paired_trimmed_t(logs[:, i], sampling[i], policy.confidence) for i in (0, 1)
    )
    medians = (float(np.median(per_round[:, 0, 0])), float(np.median(per_round[:, 1, 0])))
    lows = (float(np.median(per_round[:, 0, 1])), float(np.median(per_round[:, 1, 1])))
    moves = _Moves(medians, lows, ratio, ci, low_ratio, low_ci)
    return _judged(moves, (p_slower, p_faster), policy, f" over {len(logs)} paired rounds")


ROUND_TRIM = 0.2  # share of the rounds' log-ratios set aside at each end: Wilcox's default for Yuen's trimmed t


def paired_trimmed_t(
    log_ratios: np.ndarray, sampling_variance: float, confidence: float
) -> tuple[float, tuple[float, float], float, float]:
    """(ratio, its CI, p slower, p faster) from the rounds' log-ratios by Yuen's trimmed t (Yuen 1974; Wilcox,
    "Introduction to Robust Estimation and Hypothesis Testing", 4.3): the 20 % trimmed mean, its standard error from
    the winsorized variance, Student's t with h - 1 degrees of freedom (h rounds kept).

    Why trimmed: a shared VM switches between states whose latencies differ by 1.5x (208 against 320 us on the
    2-core CI machine), and a round whose two sides straddle a switch gives a log-ratio of +-0.4 where the others
    agree within 2 %. Student's t on the plain mean lets those few rounds set the spread (sd 0.13 against 0.018 from
    the quartiles in 3,000 A/A rounds), so a real 12 % slowdown went undetected 8 times in 100 at 30 rounds.

    The standard error is never below what one round's samples know of its log-ratio (`sampling_variance`, a
    round's mean, over the h kept rounds): a GPU timer's quantized medians often give the kept rounds the very same
    ratio, whose zero spread would otherwise read as no evidence at all. Where even the samples have no spread
    (a constant clock), the p-values are 1.0: identical numbers say nothing about noise."""
    from scipy import stats

    n = log_ratios.size
    kept = n - 2 * int(ROUND_TRIM * n)
    mean = float(stats.trim_mean(log_ratios, ROUND_TRIM))
    winsorized = np.asarray(stats.mstats.winsorize(log_ratios, limits=(ROUND_TRIM, ROUND_TRIM)))
    spread = float(np.var(winsorized, ddof=1)) if np.ptp(winsorized) > 0 else 0.0  # equal values: exactly none
    trimmed_variance = (n - 1) * spread / (kept * (kept - 1))
    error = math.sqrt(max(trimmed_variance, sampling_variance / kept))
    if error == 0:
        return math.exp(mean), (math.exp(mean), math.exp(mean)), 1.0, 1.0
    t = stats.t(kept - 1)
    half = float(t.ppf(1 - (1 - confidence) / 2)) * error
    ci = (math.exp(mean - half), math.exp(mean + half))
    return math.exp(mean), ci, float(t.sf(mean / error)), float(t.cdf(mean / error))


def _split(samples_us: Sequence[float] | np.ndarray, sizes: Sequence[int]) -> list[np.ndarray]:
    """The rounds' sorted samples, from all samples in round order and each round's count."""
    ordered = np.asarray(samples_us, dtype=np.float64)
    if len(sizes) < 2 or sum(sizes) != ordered.size or min(sizes) < 1:
        raise ValueError(f"round sizes {list(sizes)} do not split {ordered.size} samples into 2 or more rounds")
    return [np.sort(part) for part in np.split(ordered, np.cumsum(sizes)[:-1])]


@dataclass(frozen=True)
class _Moves:
    """What the rules read: each side's median and lower quantile, and the two ratios with their CIs."""

    medians: tuple[float, float]
    lows: tuple[float, float]
    ratio: float
    ratio_ci: tuple[float, float]
    low_ratio: float
    low_ratio_ci: tuple[float, float]


def _judged(moves: _Moves, p: tuple[float, float], policy: GatePolicy, over: str) -> LatencyComparison:
    """The module's three rules on the moves and the one-sided p-values (slower, faster); `over` says what the
    statistics were taken over, where that is not the two sides' samples."""
    (low, high), (q_low, q_high), (p_slower, p_faster) = moves.ratio_ci, moves.low_ratio_ci, p
    q, ratio, limit = policy.low_quantile, moves.ratio, 1 + policy.latency_threshold
    verdict = "pass"
    reason = (
        f"median {ratio:.3f}× the baseline{over} (95 % CI {low:.3f}–{high:.3f}), p{q * 100:.0f} "
        f"{moves.low_ratio:.3f}× (95 % CI {q_low:.3f}–{q_high:.3f})"
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
        *moves.medians,
        ratio,
        (low, high),
        p_slower,
        p_faster,
        verdict,
        reason,
        q,
        *moves.lows,
        moves.low_ratio,
        (q_low, q_high),
    )


def ratio_ci(old: np.ndarray, new: np.ndarray, confidence: float) -> tuple[float, float]:
    """CI of median(new) / median(old) at this confidence (the module's docstring says how)."""
    ((low, high),) = _ratio_cis(np.sort(old), np.sort(new), (0.5,), confidence)
    return low, high


def _ratio_cis(
    old: np.ndarray, new: np.ndarray, quantiles: Sequence[float], confidence: float
) -> list[tuple[float, float]]:
    """CIs of quantile(new) / quantile(old) for each quantile, from the sorted samples of each side."""
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    cis = []
    for q in quantiles:
        log_ratio = math.log(_quantile(new, q) / _quantile(old, q))
        half = z * math.sqrt(_log_quantile_variance(new, q, z) + _log_quantile_variance(old, q, z))
        cis.append((math.exp(log_ratio - half), math.exp(log_ratio + half)))
    return cis


def _log_quantile_variance(ordered: np.ndarray, q: float, z: float) -> float:
    """Variance of log(quantile q) from the order statistics bounding its distribution-free CI: the ranks
    n q ± z √(n q (1 - q)) (the binomial's normal approximation), their log-distance over 2 z, squared."""
    n = ordered.size
    spread = z * math.sqrt(n * q * (1 - q))
    low = min(max(math.floor(n * q - spread), 0), n - 1)
    high = min(max(math.ceil(n * q + spread) - 1, 0), n - 1)
    return ((math.log(ordered[high]) - math.log(ordered[low])) / (2 * z)) ** 2


def _quantile(ordered: np.ndarray, q: float) -> float:
    """np.quantile's default (linear interpolation) of sorted samples, without its per-call overhead."""
    position = (ordered.size - 1) * q
    below = math.floor(position)
    above = min(below + 1, ordered.size - 1)
    return float(ordered[below] + (position - below) * (ordered[above] - ordered[below]))


def rank_test(new: np.ndarray, old: np.ndarray) -> tuple[float, float]:
    """(p slower, p faster): the one-sided Mann–Whitney U p-values of new against old, both from one pass over the
    sorted samples. Equal to scipy.stats.mannwhitneyu's (its exact test for small samples, else its asymptotic one
    with tie and continuity correction), which would rank the samples again for each tail."""
    return _rank_test(np.sort(new), np.sort(old))


def _rank_test(new: np.ndarray, old: np.ndarray) -> tuple[float, float]:
    """rank_test of sorted samples."""
    n1, n2 = new.size, old.size
    if min(n1, n2) <= _EXACT_RANK_TEST:  # scipy then picks its exact test where there are no ties
        from scipy import stats

        return (
            float(stats.mannwhitneyu(new, old, alternative="greater").pvalue),
            float(stats.mannwhitneyu(new, old, alternative="less").pvalue),
        )
    # U of new: for each new sample, the old ones below it, and half of those equal to it.
    below, not_above = np.searchsorted(old, new, "left"), np.searchsorted(old, new, "right")
    u = (float(below.sum()) + float(not_above.sum())) / 2
    both = np.sort(np.concatenate([new, old]))  # two sorted runs: merged in linear time
    changes = np.flatnonzero(both[1:] != both[:-1])  # where a run of equal values ends
    ties = np.diff(np.concatenate(([-1], changes, [both.size - 1]))).astype(np.float64)
    n = n1 + n2
    sigma = math.sqrt(n1 * n2 / 12 * ((n + 1) - float((ties**3 - ties).sum()) / (n * (n - 1))))
    mean = n1 * n2 / 2
    if sigma == 0:  # every sample equal: no evidence either way
        return 1.0, 1.0
    return _normal_tail((u - mean - 0.5) / sigma), _normal_tail((mean - u - 0.5) / sigma)


def _normal_tail(z: float) -> float:
    """P(Z >= z) for a standard normal Z."""
    return 0.5 * math.erfc(z / math.sqrt(2))


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


# ---------------------------------------------------------------------------------------------------
# Costs: build time, plan size, device memory, output size. One number per side, no samples: a cost regresses when
# the new number exceeds the old by more than its threshold, and improves when it falls below by as much (the
# latency gate's mirror, 1 - threshold). The verdict words are the latency gate's.

BUILD_TIME = "build time"
PLAN_SIZE = "plan size"
DEVICE_MEMORY = "device memory"
OUTPUT_SIZE = "output size"  # the output stage: the bytes one inference hands back (TensorRT copies them to the host)


@dataclass(frozen=True)
class CostPolicy:
    # +50 %: a build is timed once (no samples, no CI) on a machine that may be building other engines meanwhile
    # (xdist workers), and TensorRT's build times its tactics on a GPU whose clocks vary: identical builds differ
    # by far more than a latency does, while the slower builds an upgrade is refused for are slower by far more.
    build_time_threshold: float = 0.5
    # +20 %: a plan's size barely moves between builds of one model by one builder (its weights dominate it; only
    # the tactics chosen, and their kernels, may change), so a growth this large is the builder's; 20 % is what a
    # fleet's storage and engine load time feel.
    plan_size_threshold: float = 0.2
    # +20 %: device memory is TensorRT's figure for one plan's activations and scratch, fixed by its tactics; 20 %
    # more is what decides whether a fleet's engines still fit beside each other on one GPU.
    memory_threshold: float = 0.2
    # +20 %: the output stage moves every output of every inference (device to host on TensorRT); an upgrade that
    # hands back fp32 where it handed fp16, or pads an output, makes that copy grow with it on every call, while an
    # unchanged engine's outputs do not move by a byte.
    output_size_threshold: float = 0.2
    # Below a second a build's time is mostly the process's own overhead (imports, parsing, page cache), which
    # swings by more than the threshold between runs: such a build is too short for its time to be judged.
    build_time_floor_s: float = 1.0


@dataclass(frozen=True)
class CostComparison:
    """One cost of a test judged against the old side's: what `compare` shows in its costs table and what a build
    test asserts in the session."""

    cost: str  # BUILD_TIME, PLAN_SIZE, DEVICE_MEMORY or OUTPUT_SIZE
    old: float | None  # seconds or bytes; None where the old side recorded none
    new: float | None
    threshold: float
    verdict: str  # pass, regression, improvement, new or inconclusive
    reason: str

    @property
    def ratio(self) -> float | None:
        """New / old; None where a side recorded none."""
        return _cost_ratio(self.old, self.new) if self.old is not None and self.new is not None else None

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> CostComparison:
        return cls(
            cost=str(data.get("cost", "")),
            old=recorded_number(data.get("old")),
            new=recorded_number(data.get("new")),
            threshold=_json_number(data.get("threshold")),
            verdict=str(data.get("verdict") or ""),
            reason=str(data.get("reason") or ""),
        )


# What a build record's "build" holds that the cost gate reads: the results reader keeps these (results/lean.py) and
# a baseline keeps them of a build test (baselines.py), nothing else of the build (its local paths, its warnings).
BUILD_COST_FIELDS = ("cached", "build_s", "artifact_bytes")
# The engine facts (a latency record's "engine") that the cost gate reads: kept by the results reader and the baselines.
ENGINE_DEVICE_MEMORY = "device_memory_bytes"
ENGINE_OUTPUT_BYTES = "output_bytes"


def judge_build(
    old: Mapping[str, object], new: Mapping[str, object], policy: CostPolicy
) -> tuple[CostComparison, CostComparison]:
    """A build's time and plan size (records' "build" objects: harness/build.py's BuildRecord) against the old one's."""
    time = judge_build_time(
        recorded_number(old.get("build_s")),
        recorded_number(new.get("build_s")),
        old_cached=old.get("cached") is True,
        new_cached=new.get("cached") is True,
        policy=policy,
    )
    return time, judge_plan_size(
        recorded_number(old.get("artifact_bytes")), recorded_number(new.get("artifact_bytes")), policy
    )


def cost_verdict(costs: Sequence[CostComparison], *, baseline: str | None) -> GateVerdict:
    """A test's verdict on its costs: a regression where one regressed (the reason names those), else an improvement
    where one improved, else a pass whose reason says each cost, the ones that could not be judged with why. A cost
    that could not be judged (a cached or too short build) fails nothing: the measurement is coarse, not worse."""
    regressed = [cost for cost in costs if cost.verdict == "regression"]
    improved = [cost for cost in costs if cost.verdict == "improvement"]
    verdict = "regression" if regressed else "improvement" if improved else "pass"
    reason = "; ".join(cost.reason for cost in regressed or improved or costs)
    return GateVerdict(verdict, reason, baseline, costs=tuple(costs))


def judge_cost(cost: str, old: float | None, new: float | None, threshold: float) -> CostComparison:
    """NEW's cost against OLD's: "new" where OLD recorded none, "inconclusive" where NEW recorded none, else a
    regression beyond 1 + threshold, an improvement below 1 - threshold, a pass between."""
    if old is None:
        return CostComparison(cost, old, new, threshold, "new", f"no old {cost} recorded to judge against")
    if new is None:
        return CostComparison(cost, old, new, threshold, "inconclusive", f"the new run recorded no {cost}")
    ratio = _cost_ratio(old, new)
    numbers = f"{cost_value(cost, old)} → {cost_value(cost, new)} ({ratio:.2f}×)"
    if ratio > 1 + threshold:
        verdict, reason = "regression", f"{cost} grew {numbers}, beyond the {threshold:.0%} threshold"
    elif ratio < 1 - threshold:
        verdict, reason = "improvement", f"{cost} fell {numbers}, beyond the {threshold:.0%} threshold"
    else:
        verdict, reason = "pass", f"{cost} {numbers}, within the {threshold:.0%} threshold"
    return CostComparison(cost, old, new, threshold, verdict, reason)


def judge_build_time(
    old_s: float | None, new_s: float | None, *, old_cached: bool, new_cached: bool, policy: CostPolicy
) -> CostComparison:
    """judge_cost of the engine build's seconds, unless a side built nothing (found in the engine cache) or the
    builds are too short for their time to mean anything (CostPolicy.build_time_floor_s): inconclusive, saying so."""
    threshold = policy.build_time_threshold
    cached = [side for side, was in (("old", old_cached), ("new", new_cached)) if was]
    if cached:
        why = f"the {' and '.join(cached)} run found the engine in the engine cache: no build was timed"
        fix = "; time it with an empty engine cache (--engine-cache pointing to a new folder, or off)"
        return CostComparison(BUILD_TIME, old_s, new_s, threshold, "inconclusive", why + fix)
    floor = policy.build_time_floor_s
    if old_s is not None and new_s is not None and max(old_s, new_s) < floor:
        numbers = f"{cost_value(BUILD_TIME, old_s)} → {cost_value(BUILD_TIME, new_s)}"
        why = f"{numbers}: both builds under {floor:g} s, too short for their time to be judged"
        return CostComparison(BUILD_TIME, old_s, new_s, threshold, "inconclusive", why)
    return judge_cost(BUILD_TIME, old_s, new_s, threshold)


def judge_plan_size(old_bytes: float | None, new_bytes: float | None, policy: CostPolicy) -> CostComparison:
    return judge_cost(PLAN_SIZE, old_bytes, new_bytes, policy.plan_size_threshold)


def judge_device_memory(old_bytes: float | None, new_bytes: float | None, policy: CostPolicy) -> CostComparison:
    return judge_cost(DEVICE_MEMORY, old_bytes, new_bytes, policy.memory_threshold)


def judge_output_size(old_bytes: float | None, new_bytes: float | None, policy: CostPolicy) -> CostComparison:
    return judge_cost(OUTPUT_SIZE, old_bytes, new_bytes, policy.output_size_threshold)


def judge_engine_costs(
    old: Mapping[str, object], new: Mapping[str, object], policy: CostPolicy
) -> tuple[CostComparison, ...]:
    """A latency test's engine costs (records' "engine" facts) against the old one's: device memory where the backend
    reports it (TensorRT), and the output size; none where neither side recorded a cost."""
    judged = (
        (judge_device_memory, ENGINE_DEVICE_MEMORY),
        (judge_output_size, ENGINE_OUTPUT_BYTES),
    )
    return tuple(
        judge(recorded_number(old.get(key)), recorded_number(new.get(key)), policy)
        for judge, key in judged
        if old.get(key) is not None or new.get(key) is not None
    )


def _cost_ratio(old: float, new: float) -> float:
    """new / old, where an old 0 (an engine that needed no device memory) makes any new amount an infinite growth."""
    if old > 0:
        return new / old
    return 1.0 if new == 0 else math.inf


def cost_value(cost: str, value: float) -> str:
    """A cost as every verdict and table writes it: seconds with two decimals, bytes in kB or MB (units.size)."""
    return f"{value:.2f} s" if cost == BUILD_TIME else size(int(value))
