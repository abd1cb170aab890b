"""GitHub-flavoured Markdown of a comparison: `compare --markdown` and the GitHub Actions job summary."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from harness.results.comparison import COLUMNS, NUMERIC, Row, cells, counts, label, notable


def comparison_markdown(header: Sequence[str], rows: Sequence[Row]) -> str:
    """The header lines as paragraphs, one table row per test, the counts, then why each notable verdict was called."""

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
    text = "\n\n".join(header) + "\n\n" + "\n".join(table) + f"\n\n{counts(rows)}"
    return text + ("\n\n" + "\n".join(notes) if notes else "") + "\n"


def _escaped(text: str) -> str:
    """A pipe would end the table cell."""
    return text.replace("|", "\\|")
