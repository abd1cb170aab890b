"""How the harness writes numbers into its JSON files (results, baselines) and reads them back.

Strict JSON has no NaN or infinity, yet an error can be NaN and a ratio infinite: json_safe spells them as the
strings "nan", "inf" and "-inf", recorded_number reads either form back. Latency samples are recorded to
SAMPLE_DIGITS significant digits (significant). Kept apart from what is recorded (measure, compare, gate) so that
the results document's module reads and writes files without importing the code that made the numbers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeGuard

import numpy as np

# Digits a recorded sample keeps: beyond 6 significant digits a microsecond count is below every clock's tick, yet
# full float digits made a fleet's results file (and every baseline) twice its size and its reading twice as slow.
SAMPLE_DIGITS = 6


def significant(values: Iterable[float]) -> list[float]:
    """Each value to SAMPLE_DIGITS significant digits, as recorded."""
    return [float(f"{value:.{SAMPLE_DIGITS}g}") for value in values]


def is_number(value: object) -> TypeGuard[int | float]:
    """A JSON number: int or float, not bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def json_float(value: float) -> float | str:
    """A float as strict JSON holds it: itself where finite, else "nan", "inf" or "-inf"."""
    return value if np.isfinite(value) else str(value)


def recorded_number(value: object) -> float | None:
    """A number as json_safe wrote it: a JSON number, or the strings "nan", "inf", "-inf" that spell the non-finite
    ones in strict JSON; None for anything else."""
    if is_number(value):
        return float(value)
    if value in ("nan", "inf", "-inf"):
        return float(str(value))
    return None


def json_safe(value: object) -> object:
    """`value` with every non-finite float spelled as the string "nan", "inf" or "-inf" (json_float) and numpy
    scalars and arrays made plain: strict JSON (allow_nan=False) can then always be written, so a NaN anywhere
    never costs the results file."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    elif isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return json_float(value)
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value
