"""Why a latency regressed, layer by layer: two layer profiles' diff (harness/profile.py) turned into what an engineer
signing off an upgrade reads in the failing gate.

explain(old, new) keeps the layers that added the most time, with their share of the total added time, their old and
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

from harness.profile import LayerChange, LayerProfile, diff
from harness.recorded import recorded_number

NAMED = 3  # layers named in a verdict: the few that account for most of a slowdown
KEPT = 15  # layers kept in a verdict, by added time: what the HTML report's per-layer figure draws


@dataclass(frozen=True)
class Explanation:
    """Which layers account for a slowdown; or, in `missing`, why no layer can be named."""

    layers: tuple[LayerChange, ...] = ()  # at most KEPT, the most added time first
    old_total_us: float = 0.0  # the profiled layers' medians summed, on each side
    new_total_us: float = 0.0
    grown: int = 0  # layers (or groups) that added time, those kept included
    changed_without_time: int = 0  # layers that changed (tactic, formats, …) without adding time
    source: str = ""  # what measured the new profile (LayerProfile.source)
    missing: str | None = None  # "the baseline has no layer profile": nothing else is set then

    @property
    def added_us(self) -> float:
        return self.new_total_us - self.old_total_us

    def share(self, layer: LayerChange) -> float | None:
        """The layer's part of the total added time; None where the layers' total did not grow."""
        return layer.added_us / self.added_us if self.added_us > 0 else None

    def named(self) -> tuple[LayerChange, ...]:
        """The NAMED layers that added the most time."""
        return tuple(layer for layer in self.layers if layer.added_us > 0)[:NAMED]

    def to_json(self) -> dict[str, object]:
        if self.missing is not None:
            return {"missing": self.missing}
        return {
            "source": self.source,
            "old_total_us": self.old_total_us,
            "new_total_us": self.new_total_us,
            "grown": self.grown,
            "changed_without_time": self.changed_without_time,
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
        return cls(
            layers=tuple(LayerChange.from_json(item) for item in layers if isinstance(item, Mapping))
            if isinstance(layers, list)
            else (),
            old_total_us=recorded_number(data.get("old_total_us")) or 0.0,
            new_total_us=recorded_number(data.get("new_total_us")) or 0.0,
            grown=_count(data.get("grown")),
            changed_without_time=_count(data.get("changed_without_time")),
            source=str(data.get("source") or ""),
        )


def explain(
    old: LayerProfile | None, new: LayerProfile | None, *, old_side: str = "the baseline", new_side: str = "this run"
) -> Explanation:
    """The layers of `new` that account for its slowdown against `old`; `old_side` and `new_side` name the two in
    the clause that says a profile is missing or empty ("the old file", "the new file" in `compare`)."""
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
        layers=layers.entries[:KEPT],
        old_total_us=layers.old_total_us,
        new_total_us=layers.new_total_us,
        grown=sum(change.added_us > 0 for change in layers.entries),
        changed_without_time=sum(bool(change.changes) and change.added_us <= 0 for change in layers.entries),
        source=new.source,
    )


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
