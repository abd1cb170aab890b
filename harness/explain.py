"""Why a latency regressed, layer by layer: two layer profiles' diff (harness/profile.py) turned into what an engineer
signing off an upgrade reads in the failing gate.

explain(old, new) keeps the layers that added the most time, with their share of the layers' added time, their old and
new times and what changed in each (tactic, formats, precision, fusion, a layer that appeared or disappeared), and
counts the other layers that grew or changed without adding time. The session's gate records it in its verdict
(harness/gate.py's GateVerdict.explanation), `compare` computes it from two files' profiles, and the renderers show
it (harness/results/explanation.py: one line in a terminal verdict, a list in Markdown and HTML; its layers in the
report's per-layer figure). Where a side has no profile (a backend that does not profile its layers,
--no-harness-profile, an older file) it says so in one clause instead. Plain data and arithmetic: no backend, no
pytest, no rendering.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from harness.profile import LayerChange, LayerDiff, LayerProfile, diff
from harness.recorded import recorded_number

NAMED = 3  # layers named in a verdict: the few that account for most of a slowdown
KEPT = 15  # layers kept in a verdict, by added time: what the HTML report's per-layer figure draws
_NO_LAYERS = LayerDiff((), 0.0, 0.0)  # a missing explanation's (frozen: one serves all)


@dataclass(frozen=True)
class Explanation:
    """Which layers account for a slowdown; or, in `missing`, why no layer can be named."""

    diff: LayerDiff = _NO_LAYERS  # its KEPT entries that added the most time, the profiles' totals
    grown: int = 0  # layers (or groups) that added time, those kept included: the whole diff's, as kept drops some
    changed_without_time: int = 0  # layers that changed (tactic, formats, …) without adding time, of the whole diff
    source: str = ""  # what measured the new profile (LayerProfile.source)
    missing: str | None = None  # "the baseline has no layer profile": nothing else is set then
    # How much the measured median rose (new - old, µs), where the verdict judged one: the profiled layers' sum is
    # only part of a latency (launches, copies, the framework's own time are in no layer), so the headline says
    # which part of the rise the layers account for.
    latency_added_us: float | None = None

    @property
    def layers(self) -> tuple[LayerChange, ...]:
        """The kept layers, the most added time first: what the HTML report's per-layer figure draws."""
        return self.diff.entries

    def named(self) -> tuple[LayerChange, ...]:
        """The NAMED layers that added the most time."""
        return self.diff.top(NAMED)

    def to_json(self) -> dict[str, object]:
        if self.missing is not None:
            return {"missing": self.missing}
        return {
            "source": self.source,
            "old_total_us": self.diff.old_total_us,
            "new_total_us": self.diff.new_total_us,
            "grown": self.grown,
            "changed_without_time": self.changed_without_time,
            "latency_added_us": self.latency_added_us,
            "layers": [layer.to_json() for layer in self.layers],
        }

    @classmethod
    def from_json(cls, data: object) -> Explanation | None:
        """As to_json wrote it; None where a verdict has none. Tolerant of sparse records, as GateVerdict is."""
        if not isinstance(data, Mapping) or not data:
            return None
        missing = data.get("missing")
        if missing is not None:
            return cls(missing=str(missing))
        layers = data.get("layers")
        kept = LayerDiff(
            tuple(LayerChange.from_json(item) for item in layers if isinstance(item, Mapping))
            if isinstance(layers, list)
            else (),
            recorded_number(data.get("old_total_us")) or 0.0,
            recorded_number(data.get("new_total_us")) or 0.0,
        )
        return cls(
            diff=kept,
            grown=_count(data.get("grown")),
            changed_without_time=_count(data.get("changed_without_time")),
            source=str(data.get("source") or ""),
            latency_added_us=recorded_number(data.get("latency_added_us")),
        )


def explain(
    old: LayerProfile | None,
    new: LayerProfile | None,
    *,
    old_side: str = "the baseline",
    new_side: str = "this run",
    latency_added_us: float | None = None,
) -> Explanation:
    """The layers of `new` that account for its slowdown against `old`; `old_side` and `new_side` name the two in
    the clause that says a profile is missing or empty ("the old file", "the new file" in `compare`);
    `latency_added_us`, the measured median's rise, for the headline to relate the layers' rise to."""
    absent = [side for side, profile in ((old_side, old), (new_side, new)) if profile is None]
    if len(absent) == 2:
        return Explanation(missing=f"neither {old_side} nor {new_side} has a layer profile")
    if absent:
        return Explanation(missing=f"{absent[0]} has no layer profile")
    assert old is not None and new is not None  # as checked: neither is absent
    empty = [side for side, profile in ((old_side, old), (new_side, new)) if not profile.layers]
    if empty:
        return Explanation(missing=f"{' and '.join(empty)} recorded an empty layer profile")
    layers = diff(old, new)
    return Explanation(
        diff=layers.kept(KEPT),
        grown=len(layers.grown()),
        changed_without_time=len(layers.changed_without_time()),
        source=new.source,
        latency_added_us=latency_added_us,
    )


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
