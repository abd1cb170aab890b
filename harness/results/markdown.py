"""GitHub-flavoured Markdown of a comparison: `compare --markdown` and the GitHub Actions job summary."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from harness.results.comparison import (
    COLUMNS,
    COST_COLUMNS,
    COST_NUMERIC,
    NUMERIC,
    Row,
    cells,
    cost_cells,
    cost_notes,
    costs_of,
    counts,
    label,
    notable,
)
from harness.results.explanation import items as explanation_items

if TYPE_CHECKING:
    from harness.explain import Explanation
    from harness.gate import CostComparison


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
    text = "\n\n".join(header) + "\n\n" + "\n".join(table) + _costs_markdown(rows) + f"\n\n{counts(rows)}"
    return text + ("\n\n" + "\n".join(notes) if notes else "") + "\n"


def _layers(row: Row, explanation: Explanation) -> str:
    """ "- REGRESSION `id`: layers (…): 180.0 µs → 240.0 µs, +60.0 µs" and one nested item per layer named."""
    headline, *named = explanation_items(explanation)
    nested = "".join(f"\n  - {_escaped(item)}" for item in named)
    return f"- {label(row.verdict)} `{row.test_id}`: {_escaped(headline)}{nested}"


def _costs_markdown(rows: Sequence[Row]) -> str:
    """The costs table under its own heading, and why a cost was not judged; nothing where no test recorded one."""
    judged = costs_of(rows)
    if not judged:
        return ""

    def line(values: Iterable[str]) -> str:
        return "| " + " | ".join(_escaped(value) for value in values) + " |"

    def emphasized(row: Row, cost: CostComparison) -> dict[str, str]:
        shown = cost_cells(row, cost)
        if cost.verdict == "regression":
            shown["verdict"] = f"**{shown['verdict']}**"
        return shown

    align = ["---:" if column in COST_NUMERIC else "---" for column in COST_COLUMNS]
    table = [line(COST_COLUMNS), line(align), *(line(emphasized(row, cost).values()) for row, cost in judged)]
    notes = [
        f"- {cost.verdict} {cost.cost} of `{row.test_id}`: {_escaped(cost.reason)}" for row, cost in cost_notes(rows)
    ]
    return "\n\n**Costs**\n\n" + "\n".join(table) + ("\n\n" + "\n".join(notes) if notes else "")


def _escaped(text: str) -> str:
    """A pipe would end the table cell."""
    return text.replace("|", "\\|")
