"""Messages and numbers as every renderer shows them: capped, their long lists summarised, repeats grouped,
NaN and Inf spelled as such.

The results file keeps each message whole; the terminal summary and the HTML report show a message of at most
MESSAGE_CHARS characters, saying how much more there is and where to read it. A list of many items inside a
message (ONNX Runtime's "Required inputs ([...])" names every weight of the model) is shown as its first few
items and a count.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

MESSAGE_CHARS = 500  # of a message, as the terminal summary and the HTML report show it
LIST_ITEMS = 5  # of a long list inside a message, the items shown
_LONG_LIST = 8  # a bracketed list of more items than this is summarised
IDS_SHOWN = 10  # of a group of tests with one message, the ids listed
# A bracketed, comma-separated list without nested brackets: [a, b, c] or {a, b, c}.
_BRACKETED = re.compile(r"\[([^\[\]{}]*)\]|\{([^\[\]{}]*)\}")

T = TypeVar("T")


def number(value: float, spec: str = ".2g") -> str:
    """A float as shown: "NaN", "Inf", "-Inf" for the non-finite ones (never Python's "nan" or a 0)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Inf" if value > 0 else "-Inf"
    return format(value, spec)


def summarised_lists(message: str) -> str:
    """Each bracketed list of more than _LONG_LIST items shown as its first LIST_ITEMS and how many more."""

    def shorter(match: re.Match[str]) -> str:
        inner = match.group(1) if match.group(1) is not None else match.group(2)
        items = inner.split(", ")
        if len(items) <= _LONG_LIST:
            return match.group(0)
        opening, closing = match.group(0)[0], match.group(0)[-1]
        return f"{opening}{', '.join(items[:LIST_ITEMS])}, … ({len(items) - LIST_ITEMS:,} more){closing}"

    return _BRACKETED.sub(shorter, message)


def capped(message: str, results: str, test_id: str, limit: int = MESSAGE_CHARS) -> str:
    """A message as shown: its long lists summarised, then cut at `limit` characters with where to read the rest
    ("… (2,345 more characters: full text in results.json, test test_build[…])")."""
    shown = summarised_lists(message)
    if len(shown) <= limit:
        return shown
    where = f"full text in {results}, test {test_id}" if results else f"full text in the results file, test {test_id}"
    return f"{shown[:limit]}… ({len(shown) - limit:,} more characters: {where})"


def grouped(items: Iterable[T], key: Callable[[T], str]) -> list[tuple[str, list[T]]]:
    """Items with one key together, in order of first appearance: one error repeated on nine tests is one group."""
    groups: dict[str, list[T]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return list(groups.items())


def listed_ids(ids: Sequence[str], shown: int = IDS_SHOWN) -> str:
    """Test ids, compactly: all of a few, else the first `shown` and how many more."""
    if len(ids) <= shown:
        return ", ".join(ids)
    return f"{', '.join(ids[:shown])} and {len(ids) - shown:,} more"
