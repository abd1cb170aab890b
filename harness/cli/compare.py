"""`python -m harness compare OLD NEW`: two results (or baseline) files judged test by test
(harness/results/comparison.py), printed as text or Markdown, and appended to the GitHub job summary."""

from __future__ import annotations

import gc
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from harness import known_failures
from harness.cli.output import CliError
from harness.results import document as results_document
from harness.results import lean
from harness.results.comparison import GateOptions, Side, compare, describe_sides, exit_status, record_problem
from harness.results.markdown import comparison_markdown
from harness.results.terminal import comparison_text

if TYPE_CHECKING:
    import numpy as np


def run_compare(old_path: Path, new_path: Path, options: GateOptions, *, markdown: bool) -> int:
    """Both files are loaded before anything is printed or written: an unusable input leaves no output."""
    # Millions of records, numbers and texts, none in a cycle: the cyclic collector would only walk them again and
    # again as they pile up (a tenth of the time of a 100,000-test comparison). The command ends right after.
    gc.disable()
    try:
        return gate(*_read_both(old_path, new_path), options, markdown=markdown)
    finally:
        gc.enable()


# Above this size a file is read in a second process while this one reads the other: reading is half of a large
# comparison's time and the machine has a core to spare; below it the process would cost more than it saves.
_READ_APART_BYTES = 64 << 20


def _read_both(old_path: Path, new_path: Path) -> tuple[Side, Side]:
    """Both files read lean and typed; OLD in a forked process when both are large (its errors raised here all the
    same)."""
    if os.name != "posix" or min(_size(old_path), _size(new_path)) < _READ_APART_BYTES:
        return load_side(old_path), load_side(new_path)
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(1) as pool:
        old_side = pool.apply_async(load_side, (old_path,))
        new_side = load_side(new_path)
        return old_side.get(), new_side


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # read in this process, whose error names the file


def gate(old: Side, new: Side, options: GateOptions, *, markdown: bool) -> int:
    """Print the comparison, append it to the job summary on GitHub Actions, return the exit status."""
    known = _known_failures(options, old)
    rows = compare(old, new, options, known)
    header = describe_sides(old, new)
    if known.entries:
        header.append(f"Known failures: {len(known.entries)} listed in {known.source}")
    print(comparison_markdown(header, rows) if markdown else comparison_text(header, rows))
    _append_job_summary(comparison_markdown(header, rows))
    return exit_status(rows, options)


def _known_failures(options: GateOptions, old: Side) -> known_failures.KnownFailures:
    """The reviewed list given with --known-failures, else the one in OLD's baselines folder where OLD is a
    baseline file, else baselines/known-failures.toml (the session's default folder); none where it is absent."""
    if options.known_failures is not None:
        if not options.known_failures.is_file():
            raise CliError(
                f"--known-failures {options.known_failures}: no such file; give the path of the reviewed list "
                f"({known_failures.FILE_NAME} in the baselines folder), or leave the option out"
            )
        return known_failures.load(options.known_failures)
    return known_failures.load((old.baselines_folder or Path("baselines")) / known_failures.FILE_NAME)


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

    read = lean.load(path)
    found = read.header.get("schema")
    if found == results_document.SCHEMA:
        return _results_side(path, read)
    if found == BASELINE_SCHEMA:
        baseline = BaselineFile.load(path)  # its own checks and messages (version, duplicate ids)
        records = {test_id: {"id": test_id, **entry} for test_id, entry in baseline.entries.items()}
        results_document.check_records(str(path), records)
        _check(str(path), records)
        tests = {test_id: results_document.TestResult.from_json(r) for test_id, r in records.items()}
        # A baseline lives in BASELINES/DEVICE/BACKEND-VERSION.json: its folder holds the known failures too.
        return Side(str(path), tests, baselines_folder=path.resolve().parent.parent)
    raise CliError(
        f'{path} is not a trt-harness results or baseline file (its "schema" is {found!r}, expected '
        f'"{results_document.SCHEMA}" or "{BASELINE_SCHEMA}"); pass a file written by pytest --results or a baseline'
    )


def _results_side(path: Path, read: lean.LeanFile) -> Side:
    """A results file read lean: its records checked and typed, their samples kept as arrays beside them."""
    document = results_document.from_json({**read.header, "tests": read.records}, str(path))
    samples = {str(read.records[index]["id"]): values for index, values in read.samples.items()}
    _check(document.source, document.records(), samples)
    return side_of(document, samples)


def _check(
    source: str, records: Mapping[str, Mapping[str, object]], samples: Mapping[str, np.ndarray] | None = None
) -> None:
    """Every record can be judged (comparison.record_problem), else ResultsFileError naming the test and field."""
    for test_id, record in records.items():
        problem = record_problem(record, (samples or {}).get(test_id))
        if problem is not None:
            raise results_document.ResultsFileError(
                f"{source}: test {test_id!r}: {problem}; the file is damaged or was not written by the harness: "
                "re-run the tests to write it again, or restore it from version control"
            )


def side_of(document: results_document.ResultsDocument, samples: Mapping[str, np.ndarray] | None = None) -> Side:
    """A results document as a side: its tests by id, its input errors, and its samples where read apart."""
    tests = {test.id: test for test in document.tests}
    return Side(
        document.source, tests, _build_only(document), samples=samples or {}, input_errors=document.input_errors
    )


def _build_only(document: results_document.ResultsDocument) -> bool:
    return document.settings.get("build_only") is True
