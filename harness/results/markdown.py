"""GitHub-flavoured Markdown of a comparison: `compare --markdown` and the GitHub Actions job summary."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from harness.results.comparison import COLUMNS, NUMERIC, Row, cells, counts, label, notable
from harness.results.explanation import items as explanation_items

if TYPE_CHECKING:
    from harness.explain import Explanation


def comparison_markdown(header: Sequence[str], rows: Sequence[Row]) -> str:
    """The header lines as paragraphs, one table row per test, the counts, why each notable verdict was called, then
    the layers that account for each latency regression (a nested list)."""

    def line(values: Iterable[str]) -> str:
        return "| " + " | ".join(_escaped(value) for value in values) + " |"

    def emphasized(row: Row) -> dict[str, str]:
        shown = cells(row)
        if row.verdict == "regression":
            shown["verdict"] = f"**{shown['verdict']}**"
        return shown

    align = ["---:" if column in NUMERIC else "---" for column in COLUMNS]
    table = [line(COLUMNS), line(align), *(line(emphasized(row).values()) for row in rows)]
    notes = [f"- {label(row.verdict)} `{row.test_id}`: {_escaped(reason)}" for row, reason in notable(rows)]
    notes += [_layers(row, row.explanation) for row in rows if row.explanation is not None]
    text = "\n\n".join(header) + "\n\n" + "\n".join(table) + f"\n\n{counts(rows)}"
    return text + ("\n\n" + "\n".join(notes) if notes else "") + "\n"


def _layers(row: Row, explanation: Explanation) -> str:
    """ "- REGRESSION `id`: layers (…): 180.0 µs → 240.0 µs, +60.0 µs" and one nested item per layer named."""
    headline, *named = explanation_items(explanation)
    nested = "".join(f"\n  - {_escaped(item)}" for item in named)
    return f"- {label(row.verdict)} `{row.test_id}`: {_escaped(headline)}{nested}"


def _escaped(text: str) -> str:
    """A pipe would end the table cell."""
    return text.replace("|", "\\|")
