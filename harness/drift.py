"""A/A drift: how far this machine's latency medians move between two measurements of unchanged work, and the
smallest latency threshold the gate can hold on it (its resolution).

With --update-baselines every latency test is measured twice, the measurement and one more of the same engine on
the same inputs right after it (harness/suite.py); the test's record keeps the pair as `aa_drift` (AAPair), and a
baseline file summarizes the pairs of its entries (Drift, written under "drift").

The method. Each pair is judged by the gate's own rules (harness/gate.py), once in each order, since which of two
unchanged measurements comes first is chance. A pair would be flagged at every threshold below its flag level: the
lower of the upper ends of the 95 % CIs of the ratio of medians and of the ratio of lower quartiles, less 1, where
the rank test is significant (p < alpha), else 0; the pair's level is the larger of its two orders'. A false alarm
is one order slower, so with drift that favours neither order "at most 1 % false alarms" means at most 2 % of the
pairs' levels above the threshold: the resolution is the 98th percentile of the levels, numpy's inverted-CDF
quantile (the smallest level with at most 2 % of the pairs above it; with fewer than 50 pairs, the largest). The
gate re-measures a flagged test once before failing it, which this ignores: the resolution errs on the safe side.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from harness.gate import GatePolicy, compare_latency
from harness.recorded import is_number

FALSE_ALARMS = 0.01  # the share of false alarms the resolution keeps the gate under
_LEVEL_QUANTILE = 1 - 2 * FALSE_ALARMS  # both orders of a pair are judged: a one-sided 1 % is 2 % of the pairs
_SHOWN_QUANTILES = (0.5, 0.9, 0.98)  # of |log ratio| in a baseline file's summary, with the largest


@dataclass(frozen=True)
class AAPair:
    """Two measurements of one unchanged test: how far the second's median moved, and the threshold below which
    the gate would have called the move a regression (0.0: at none)."""

    log_ratio: float  # log(second median / first median)
    flag_level: float

    def to_json(self) -> dict[str, float]:
        return {"log_ratio": self.log_ratio, "flag_level": self.flag_level}

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> AAPair:
        """As to_json wrote it (pair_problem has checked it)."""
        return cls(float(data["log_ratio"]), float(data["flag_level"]))  # type: ignore[arg-type]


def measured_pair(first_us: Sequence[float], second_us: Sequence[float], policy: GatePolicy) -> AAPair:
    """The pair of two measurements' samples, judged with the gate's alpha, confidence and lower quantile."""
    levels = [_flag_level(old, new, policy) for old, new in ((first_us, second_us), (second_us, first_us))]
    ratio = compare_latency(first_us, second_us, policy).ratio
    return AAPair(math.log(ratio), max(levels))


def _flag_level(old_us: Sequence[float], new_us: Sequence[float], policy: GatePolicy) -> float:
    """The largest threshold at which the gate would call NEW slower than OLD: its rules 2 and 3 hold below the
    lower of the two CIs' upper ends, rule 1 (significance) at any threshold or none."""
    comparison = compare_latency(old_us, new_us, policy)
    if comparison.p_slower >= policy.alpha:
        return 0.0
    return max(0.0, min(comparison.ratio_ci[1], comparison.low_ratio_ci[1]) - 1)


def pair_problem(value: object) -> str | None:
    """What is wrong with a record's "aa_drift" (None or absent is fine: a run that did not update baselines)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        return f'"aa_drift" must be an object {{log_ratio, flag_level}} or null, got {type(value).__name__}'
    for key in ("log_ratio", "flag_level"):
        number = value.get(key)
        if not (is_number(number) and math.isfinite(number)):
            return f'"aa_drift.{key}" must be a finite number, got {number!r}'
    if value["flag_level"] < 0:
        return f'"aa_drift.flag_level" must be >= 0, got {value["flag_level"]!r}'
    return None


def resolution(levels: Sequence[float]) -> float:
    """The smallest threshold with at most 2 % of the pairs' flag levels above it (module docstring)."""
    return float(np.quantile(np.asarray(levels, dtype=np.float64), _LEVEL_QUANTILE, method="inverted_cdf"))


@dataclass(frozen=True)
class Drift:
    """A baseline file's (or a results file's) A/A drift: over its tests' pairs, the spread of |log ratio| of the
    two medians and the resolution."""

    pairs: int
    abs_log_ratio: Mapping[str, float]  # "p50", "p90", "p98", "max"
    resolution: float

    @classmethod
    def of_records(cls, records: Iterable[Mapping[str, object]]) -> Drift | None:
        """From the records that carry a pair; None where none does (a file written before drift was recorded, or
        by runs that did not update baselines)."""
        pairs = [AAPair.from_json(pair) for record in records if isinstance(pair := record.get("aa_drift"), Mapping)]
        if not pairs:
            return None
        moves = np.abs([pair.log_ratio for pair in pairs])
        spread = {f"p{q * 100:.0f}": float(np.quantile(moves, q, method="inverted_cdf")) for q in _SHOWN_QUANTILES}
        return cls(len(pairs), {**spread, "max": float(moves.max())}, resolution([pair.flag_level for pair in pairs]))

    def to_json(self) -> dict[str, object]:
        return {"pairs": self.pairs, "abs_log_ratio": dict(self.abs_log_ratio), "resolution": self.resolution}
