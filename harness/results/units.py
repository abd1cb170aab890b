"""The units every renderer writes numbers in: latency in µs or ms, sizes in kB or MB.

One place, so that the terminal summary, `compare`'s tables and the HTML report say a number the same way.
"""

from __future__ import annotations


def micros(value_us: float) -> str:
    """A latency with its unit: "812.4 µs", or "12.35 ms" from 10 ms on."""
    return f"{value_us:,.1f} µs" if value_us < 10_000 else f"{value_us / 1000:,.2f} ms"


def micros_change(old_us: float, new_us: float) -> str:
    """Two latencies in the larger one's unit, "6.15 ms → 11.33 ms", so that a change never reads across units
    ("6,146.5 µs → 11.33 ms")."""
    if max(old_us, new_us) < 10_000:
        return f"{micros(old_us)} → {micros(new_us)}"
    return f"{old_us / 1000:,.2f} ms → {new_us / 1000:,.2f} ms"


def micros_number(value_us: float) -> str:
    """A latency in µs without the unit, for a column whose title says µs: two decimals below 1000 µs."""
    return f"{value_us:,.2f}" if value_us < 1000 else f"{value_us:,.1f}"


def size(nbytes: int) -> str:
    """A byte count: "512.0 kB" below 1 MB, else "3.4 MB" (decimal units, as file managers show them)."""
    return f"{nbytes / 1e3:,.1f} kB" if nbytes < 1_000_000 else f"{nbytes / 1e6:,.1f} MB"
