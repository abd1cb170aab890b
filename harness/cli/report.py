"""`python -m harness report RESULTS.json [-o REPORT.html]`: the HTML report of any results file, without pytest."""

from __future__ import annotations

from pathlib import Path

from harness.cli.output import write_output
from harness.results import html


def run_report(results: Path, output: Path | None) -> int:
    """Read and check the results file (ResultsFileError names it and the fix), then write its report: beside it
    with the suffix .html unless `output` says where."""
    document = html.load(results)  # a record at a time: a fleet's file of 100,000 tests fits in memory
    report = output or results.with_suffix(".html")
    write_output(f"the HTML report {report}", lambda: html.write(report, document))
    print(f"html report: {report}")
    return 0
