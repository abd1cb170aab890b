"""`python -m harness compare OLD NEW`: two results (or baseline) files judged test by test
(harness/results/comparison.py), printed as text or Markdown, and appended to the GitHub job summary."""

from __future__ import annotations

import os
from pathlib import Path

from harness.cli import CliError
from harness.results import schema
from harness.results.comparison import GateOptions, Side, compare, describe_sides, exit_status
from harness.results.markdown import comparison_markdown
from harness.results.terminal import comparison_text


def run_compare(old_path: Path, new_path: Path, options: GateOptions, *, markdown: bool) -> int:
    """Both files are loaded before anything is printed or written: an unusable input leaves no output."""
    return gate(load_side(old_path), load_side(new_path), options, markdown=markdown)


def gate(old: Side, new: Side, options: GateOptions, *, markdown: bool) -> int:
    """Print the comparison, append it to the job summary on GitHub Actions, return the exit status."""
    rows = compare(old, new, options)
    header = describe_sides(old, new)
    print(comparison_markdown(header, rows) if markdown else comparison_text(header, rows))
    _append_job_summary(comparison_markdown(header, rows))
    return exit_status(rows, options)


def _append_job_summary(markdown: str) -> None:
    """On GitHub Actions the table also goes to the job's summary page, whatever the printed format."""
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if not summary:
        return
    try:
        with open(summary, "a", encoding="utf-8") as handle:  # appended: earlier steps' summaries stay
            handle.write(markdown + "\n")
    except OSError as error:
        raise CliError(f"cannot append the job summary to GITHUB_STEP_SUMMARY={summary} ({error})") from None


def load_side(path: Path) -> Side:
    """A results file (schema trt-harness/results) or a baseline file (trt-harness/baseline)."""
    from harness.baselines import SCHEMA as BASELINE_SCHEMA
    from harness.baselines import BaselineFile

    data = schema.read_json(path)
    found = data.get("schema") if isinstance(data, dict) else None
    if isinstance(data, dict) and found == schema.SCHEMA:
        return side_of(schema.from_json(data, str(path)))
    if isinstance(data, dict) and found == BASELINE_SCHEMA:
        baseline = BaselineFile.load(path)  # its own checks and messages (version, duplicate ids)
        records = {test_id: {"id": test_id, **entry} for test_id, entry in baseline.entries.items()}
        schema.check_records(str(path), records)
        return Side(str(path), {test_id: schema.TestResult.from_json(r) for test_id, r in records.items()})
    raise CliError(
        f'{path} is not a trt-harness results or baseline file (its "schema" is {found!r}, expected '
        f'"{schema.SCHEMA}" or "{BASELINE_SCHEMA}"); pass a file written by pytest --results or a baseline'
    )


def side_of(document: schema.ResultsDocument) -> Side:
    build_only = document.settings.get("build_only") is True
    return Side(document.source, {test.id: test for test in document.tests}, build_only)
