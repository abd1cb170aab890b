"""A latency regression's explanation by layer (harness/explain.py) as text: one line for a terminal verdict (the
session's failure message, its summary, `compare`'s text), a list of items for Markdown and HTML."""

from __future__ import annotations

from harness.explain import Explanation
from harness.profile import LayerChange
from harness.results.units import micros, micros_change


def line(explanation: Explanation) -> str:
    """The explanation in one line."""
    return "; ".join(items(explanation))


def items(explanation: Explanation) -> list[str]:
    """The headline, one item per named layer, one per count of the others; or the clause saying why none is named:
    "layers not explained: the baseline has no layer profile"."""
    if explanation.missing is not None:
        return [f"layers not explained: {explanation.missing}"]
    named = explanation.named()
    described = [_described(explanation, layer) for layer in named]
    return [_headline(explanation), *described, *_others(explanation, len(named))]


def _headline(explanation: Explanation) -> str:
    """ "layers (onnxruntime profiler): 180.0 µs → 240.0 µs, +60.0 µs of the median's +75.0 µs (80 %)" """
    source = f" ({explanation.source})" if explanation.source else ""
    layers = explanation.diff
    totals = micros_change(layers.old_total_us, layers.new_total_us)
    rise = explanation.latency_added_us
    if layers.added_us <= 0:  # the end-to-end latency regressed, the layers' sum did not: outside the layers
        of_median = f" (the median's +{micros(rise)})" if rise is not None and rise > 0 else ""
        return (
            f"layers{source}: {totals}, the profiled layers did not add time{of_median}: the slowdown is between them"
        )
    if rise is None or rise <= 0:
        return f"layers{source}: {totals}, +{micros(layers.added_us)}"
    part = f"{layers.added_us / rise * 100:.0f} %"
    return f"layers{source}: {totals}, +{micros(layers.added_us)} of the median's +{micros(rise)} ({part})"


def _described(explanation: Explanation, layer: LayerChange) -> str:
    """ "conv1 +40.0 µs (80 % of the layers' added time, 100.0 µs → 140.0 µs): tactic a -> b" """
    share = explanation.diff.share(layer)
    part = f"{share * 100:.0f} % of the layers' added time, " if share is not None else ""
    times = micros_change(layer.old_us, layer.new_us)
    what = ", ".join(layer.changes) or "no change recorded"
    return f"{layer.label} +{micros(layer.added_us)} ({part}{times}): {what}"


def _others(explanation: Explanation, named: int) -> list[str]:
    more = explanation.grown - named
    said = [f"{more} more {_layers(more)} grew"] if more > 0 else []
    if explanation.changed_without_time:
        count = explanation.changed_without_time
        said.append(f"{count} other {_layers(count)} changed without adding time")
    return said


def _layers(count: int) -> str:
    return "layer" if count == 1 else "layers"
