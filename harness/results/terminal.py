"""Plain-text renderers: the trt-harness section of pytest's terminal summary, and `compare`'s table.

The summary gives each point one row with its latency and its accuracy verdicts in their own columns
(a point that failed on accuracy must not look like a latency result), the builds in a table of their
own, then one line per failing test saying what failed and why (tests that failed alike on one line naming them
all, a message capped with where to read the rest: harness/results/text.py). It stays within 120 columns for
the built-in cases: the full numbers are in the results file and the HTML report.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.gate import UNRESOLVED
from harness.precision.opset import INT8_MIN_OPSET
from harness.progress import LONG_BUILD_S
from harness.results import explanation, units
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
from harness.results.document import VERDICTS, BuildResult, InputError, TestResult
from harness.results.text import capped, grouped, listed_ids, number

if TYPE_CHECKING:
    import pytest  # the summary's functions take pytest's objects; `compare` never needs pytest loaded

# A group's verdict is the worst of its tests'.
_SEVERITY = {verdict: len(VERDICTS) - 1 - rank for rank, verdict in enumerate(VERDICTS)}  # skip 0 … error 3
BENCHMARK_TABLE_OPTION = "--harness-benchmark-table"
# What pytest-benchmark prints only through its own table: asking for one of these shows the table.
_NEEDS_BENCHMARK_TABLE = ("benchmark_histogram", "benchmark_compare", "benchmark_cprofile", "benchmark_verbose")


@dataclass(frozen=True)
class Column:
    title: str
    numeric: bool = False  # right-aligned
    group: str = ""  # shown above the columns it spans


def aligned(columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> list[str]:
    """Columns two spaces apart, numbers right-aligned, a line naming the groups above their columns."""
    widths = [max([len(column.title), *(len(row[index]) for row in rows)]) for index, column in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            value.rjust(width) if column.numeric else value.ljust(width)
            for column, width, value in zip(columns, widths, values)
        ).rstrip()

    lines = [line([column.title for column in columns]), *(line(row) for row in rows)]
    if any(column.group for column in columns):
        lines.insert(0, _group_line(columns, widths))
    return lines


def _group_line(columns: Sequence[Column], widths: Sequence[int]) -> str:
    spans: list[tuple[str, int]] = []  # (group, width) of each run of columns in one group
    for column, width in zip(columns, widths):
        if spans and spans[-1][0] == column.group:
            spans[-1] = (column.group, spans[-1][1] + 2 + width)
        else:
            spans.append((column.group, width))
    return "  ".join(f" {group} ".center(width, "─") if group else " " * width for group, width in spans).rstrip()


# ---------------------------------------------------------------------------------------------------
# The pytest terminal summary

_POINT_COLUMNS = (
    Column("case"),
    Column("precision"),
    Column("shape"),
    Column("backend"),
    Column("median", numeric=True, group="latency"),
    Column("p99", numeric=True, group="latency"),
    Column("vs baseline", group="latency"),
    Column("verdict", group="latency"),
    Column("mean rel", numeric=True, group="accuracy"),
    Column("max rel", numeric=True, group="accuracy"),
    Column("verdict", group="accuracy"),
)
_BUILD_COLUMNS = (
    Column("case"),
    Column("precision"),
    Column("shape"),
    Column("backend"),
    Column("build", numeric=True),
    Column("artifact", numeric=True),
    Column("verdict"),
)
# Why a --build-only session skips every run test (pytest's skip reason, so in each such test's message): the
# summary counts those skips in one line instead of a table row of skips per point.
BUILD_ONLY_REASON = "build-only run"
# The latency gate's verdict beside its ratio, in a word.
_GATE_WORDS = {"regression": "slower", "improvement": "faster", "inconclusive": "inconclusive", UNRESOLVED: UNRESOLVED}


def summary_lines(tests: Sequence[TestResult], input_errors: Sequence[InputError] = (), results: str = "") -> list[str]:
    """The session's tables, then its failures, one line each: the bad input found outside the matrix first; a
    capped message names `results`, the results file, as where to read it whole."""
    not_run = [test for test in tests if _skipped_for_build_only(test)]
    runs = [test for test in tests if not test.is_build and not _skipped_for_build_only(test)]
    builds = [test for test in tests if test.is_build]
    lines = aligned(_POINT_COLUMNS, _point_rows(runs)) if runs else []
    if builds:
        lines += [*([""] if lines else []), *aligned(_BUILD_COLUMNS, [_build_row(test) for test in builds])]
    if not_run:
        lines.append(build_only_line(not_run))
    notes = [*opset_lines(tests), *label_lines(tests), *profile_error_lines(tests), *unresolved_lines(tests)]
    if notes:
        lines += [*([""] if lines else []), *notes]
    failures = [test for test in tests if test.failed]
    if failures or input_errors:
        lines += [
            *([""] if lines else []),
            *(f"ERROR {error.id}: {capped(error.message, results, error.id)}" for error in input_errors),
            *failure_lines(failures, results),
        ]
    return lines


def _skipped_for_build_only(test: TestResult) -> bool:
    return test.verdict == "skip" and (test.message or "").endswith(BUILD_ONLY_REASON)


def build_only_line(not_run: Sequence[TestResult]) -> str:
    """The run tests a --build-only session skipped, in one line: "12 tests not run: --build-only (accuracy,
    latency of 6 points)". The results file still holds each of them."""
    kinds = dict.fromkeys(test.kind.split("_", 1)[0] for test in not_run)  # fuzz_inside_profile and co: "fuzz"
    # The matrix's points (a shape corner each); a fuzz test's whole-profile pseudo-point counts only alone.
    cornered = [test for test in not_run if not test.kind.startswith("fuzz")] or not_run
    points = len({test.point for test in cornered})
    return (
        f"{len(not_run)} test{'s' if len(not_run) > 1 else ''} not run: --build-only "
        f"({', '.join(kinds)} of {points} point{'s' if points > 1 else ''})"
    )


def profile_error_lines(tests: Sequence[TestResult]) -> list[str]:
    """One line where latency tests have no layer profile because their profiler failed (they did not fail for it):
    the first such test and its reason, and how many more."""
    missing = [(test.id, why) for test in tests if isinstance(why := test.raw.get("layer_profile_error"), str)]
    if not missing:
        return []
    (first, why), more = missing[0], f" and {len(missing) - 1} more" if len(missing) > 1 else ""
    return [f"layer profile: none for {first}{more}: {why} (the results' layer_profile_error)"]


def unresolved_lines(tests: Sequence[TestResult]) -> list[str]:
    """One line where latency tests passed unjudged because their threshold is below the resolution of the
    baseline's machine (gate.UNRESOLVED): how many, and the first one's reason, which names the fix."""
    unresolved = [test for test in tests if test.gate is not None and test.gate.verdict == UNRESOLVED]
    if not unresolved:
        return []
    first, count = unresolved[0], len(unresolved)
    why = first.gate.reason.removeprefix("latency unresolved: ") if first.gate is not None else ""
    return [f"latency unresolved: {count} test{'s' if count > 1 else ''} not judged, e.g. {first.id}: {why}"]


def opset_lines(tests: Sequence[TestResult]) -> list[str]:
    """One line per opset conversion the harness made (a model older than a backend runs, upgraded: the results'
    derivation.opset and derivation.reference_opset), naming the cases, and the precisions and backends each
    conversion was for: "opset: test_Linear converted from opset 6 to 7 (fp32, fp16 on ort), from 6 to 13 (int8 on
    ort: per-channel Q/DQ)"."""
    models: dict[str, dict[str, dict[str, list[str]]]] = {}  # case -> conversion -> backend -> precisions
    references: dict[tuple[str, str], list[str]] = {}  # (case, conversion) -> backends
    for test in tests:
        for what, text in test.opset_conversions.items():
            if what == "reference":
                _add(references.setdefault((test.case, text), []), test.backend)
            else:
                on = models.setdefault(test.case, {}).setdefault(text, {})
                _add(on.setdefault(test.backend, []), test.precision)
    tails: dict[str, list[str]] = {}  # what was converted -> the cases it was for
    for case, conversions in models.items():
        parts = [
            f"{text if index == 0 else text.removeprefix('converted ').replace('opset ', '')} "
            f"({'; '.join(_for_whom(text, precisions, backend) for backend, precisions in on.items())})"
            for index, (text, on) in enumerate(conversions.items())
        ]
        tails.setdefault(", ".join(parts), []).append(case)
    for (case, text), backends in references.items():
        tails.setdefault(f"{text} for its ONNX Runtime reference (on {', '.join(backends)})", []).append(case)
    return [
        f"opset: {names[0]} {tail}" if len(names) == 1 else f"opset: {tail}: {', '.join(names)}"
        for tail, names in tails.items()
    ]


def _add(seen: list[str], item: str) -> None:
    if item not in seen:
        seen.append(item)


def _for_whom(text: str, precisions: Sequence[str], backend: str) -> str:
    """ "fp32, fp16 on ort"; int8's own conversion to opset 13 says why (per-channel Q/DQ needs it)."""
    why = ": per-channel Q/DQ" if precisions == ["int8"] and text.endswith(f" to {INT8_MIN_OPSET}") else ""
    return f"{', '.join(precisions)} on {backend}{why}"


def label_lines(tests: Sequence[TestResult]) -> list[str]:
    """One line per test whose labels passed only by exemption (near ties inside the scores' error bound: the
    results' accuracy[].exemption), so that a `pass` that hides differing labels says so."""
    return [f"labels: {test.id} {note}" for test in tests if (note := test.label_exemptions)]


def _point_rows(tests: Iterable[TestResult]) -> list[list[str]]:
    """One row per point: latency from its latency test, accuracy from the others (accuracy, agreement, fuzz)."""
    points: dict[str, list[TestResult]] = {}
    for test in tests:
        points.setdefault(test.point, []).append(test)
    return [_point_row(group) for group in points.values()]


def _point_row(tests: Sequence[TestResult]) -> list[str]:
    first = tests[0]
    timed = [test for test in tests if test.kind == "latency"]
    checked = [test for test in tests if test.kind != "latency"]
    latency = next((test.latency for test in timed if test.latency is not None), None)
    return [
        first.case,
        first.precision,
        first.shape,
        first.backend,
        units.micros(latency.median_us) if latency else "",
        units.micros(latency.p99_us) if latency and latency.p99_us is not None else "",
        next((cell for test in timed if (cell := _vs_baseline(test))), ""),
        _worst(timed),
        _error_cell(checked, "mean_rel"),
        _error_cell(checked, "max_rel"),
        _worst(checked),
    ]


def _error_cell(tests: Sequence[TestResult], metric: str) -> str:
    """The worst error of the point's accuracy tests; "NaN" or "Inf" where an output held such elements (its errors
    are measured over the finite ones only: a number would hide it)."""
    nonfinite = {test.nonfinite for test in tests} - {None}
    if nonfinite:
        return "NaN" if "NaN" in nonfinite else "Inf"
    values = [value for test in tests if (value := test.worst(metric)) is not None]
    return number(max(values), ".1e") if values else ""


def _build_row(test: TestResult) -> list[str]:
    build = test.build
    took = "" if build is None else build_time(build)
    artifact = ""
    if build is not None and build.artifact_bytes is not None:
        count = len(build.warnings)
        artifact = units.size(build.artifact_bytes) + (f", {count} warning{'s' if count > 1 else ''}" if count else "")
    return [test.case, test.precision, test.shape, test.backend, took, artifact, test.verdict]


def build_time(build: BuildResult) -> str:
    """What the engine cost, its model's derivation included (an int8 calibration can dwarf the build): "53.80 s";
    a cached engine is "cached", "+ 51.7 s" when deriving its model was long."""
    derive_s = build.derive_s or 0.0
    if build.cached:
        return "cached" + (f" + {derive_s:.1f} s" if derive_s >= LONG_BUILD_S else "")
    return f"{derive_s + build.build_s:.2f} s" if build.build_s is not None else ""


def _worst(tests: Sequence[TestResult]) -> str:
    return max((test.verdict for test in tests), key=lambda verdict: _SEVERITY.get(verdict, 0), default="")


def _vs_baseline(test: TestResult) -> str:
    """The latency against its baseline: the ratio of medians, with a word when the gate called it."""
    gate = test.gate
    if gate is None:
        return ""
    # The latency comparison's own word where there is one (a test that failed on its device memory is not
    # "slower"), but an unresolved latency says so: its comparison's own verdict is one the gate did not give.
    judged = gate.verdict if gate.verdict == UNRESOLVED else gate.latency_verdict or gate.verdict
    word = _GATE_WORDS.get(judged, "")
    if gate.latency_ratio is not None:
        return f"{gate.latency_ratio:.3f}× {word}".rstrip()
    return "no baseline" if gate.verdict == "new" else word


def failure_lines(failures: Sequence[TestResult], results: str = "") -> list[str]:
    """One line per failure, and one for tests that failed with the same verdict and why: "ERROR 9 tests
    (test_build[a-…], …): BuildError: …" (one build error repeated nine times is read once). A latency regression
    the gate explained by its layers gets them on a line of their own, indented: its why is the verdict's reason."""
    lines = []
    for _, group in grouped(failures, key=lambda test: f"{test.verdict}\n{_why(test)}"):
        first = group[0]
        if len(group) > 1:
            ids = listed_ids([test.id for test in group])
            lines.append(
                f"{first.verdict.upper()} {len(group)} tests ({ids}): {capped(_why(first), results, first.id)}"
            )
            continue
        lines.append(failure_line(first, results))
        if first.gate is not None and first.gate.explanation is not None:
            lines.append(f"  {capped(explanation.line(first.gate.explanation), results, first.id)}")
    return lines


def failure_line(test: TestResult, results: str = "") -> str:
    """What failed and why, in one line: "FAIL test_accuracy[…]: … output 'y': mean relative error … > …".
    Not cut to the terminal's width (the why is at the end); a long one is capped (text.capped)."""
    return f"{test.verdict.upper()} {test.id}: {capped(_why(test), results, test.id)}"


def _why(test: TestResult) -> str:
    gate = test.gate
    if test.message is None:
        return gate.reason if gate is not None and gate.reason else "no message recorded"
    first = test.message.strip().splitlines()[0] if test.message.strip() else "no message recorded"
    first = first.removeprefix("Failed: ").removeprefix(f"{test.id}: ")
    kind, colon, rest = first.partition(": ")
    if colon and "." in kind and " " not in kind:  # an exception's dotted name: its class says enough
        first = f"{kind.rsplit('.', 1)[1]}: {rest}"
    return first


def write_summary(
    terminal: pytest.TerminalReporter,
    tests: Sequence[TestResult],
    results: str,
    notes: Sequence[str],
    *,
    error: str | None = None,
    input_errors: Sequence[InputError] = (),
    html_report: str | None = None,
    report_errors: Sequence[str] = (),
) -> None:
    """The trt-harness section: tables, failures (the bad input found outside the matrix first), where the results
    and the HTML report went (or why they, or a plugin's report, did not), baseline notes."""
    terminal.write_sep("=", "trt-harness")
    for line in summary_lines(tests, input_errors, results):
        terminal.write_line(line)
    if error:
        terminal.write_line(f"trt-harness: {error}", red=True)
    else:
        terminal.write_line(f"results: {results}")
    if html_report:
        terminal.write_line(f"html report: {html_report}")
    for report_error in report_errors:
        terminal.write_line(f"trt-harness: {report_error}", red=True)
    for note in notes:
        terminal.write_line(f"baselines: {note}")


# ---------------------------------------------------------------------------------------------------
# pytest-benchmark's own table


def add_options(parser: pytest.Parser) -> None:
    parser.getgroup("harness").addoption(
        BENCHMARK_TABLE_OPTION,
        action="store_true",
        default=False,
        help="show pytest-benchmark's own table too (off by default: the trt-harness summary has the latencies; "
        "--benchmark-json, --benchmark-histogram and --benchmark-compare work either way)",
    )


def quiet_benchmark_table(config: pytest.Config) -> None:
    """Turn pytest-benchmark's table off (its --benchmark-quiet) unless asked for, or needed by what the user
    asked of it: its histogram, comparison and profile are made while it prints the table. Its JSON is
    written either way. Runs before pytest-benchmark's trylast pytest_configure reads the option."""
    if not hasattr(config.option, "benchmark_quiet"):
        return  # pytest-benchmark not loaded (-p no:benchmark)
    if config.getoption("harness_benchmark_table") or any(
        config.getoption(name, None) for name in _NEEDS_BENCHMARK_TABLE
    ):
        return
    config.option.benchmark_quiet = True


# ---------------------------------------------------------------------------------------------------
# compare's text table


def comparison_text(header: Sequence[str], rows: Sequence[Row]) -> str:
    """The header lines, one table row per test, the counts, why each notable verdict was called, then the layers
    that account for each latency regression."""
    columns = [Column(title, numeric=title in NUMERIC) for title in COLUMNS]
    table = aligned(columns, [list(cells(row).values()) for row in rows])
    notes = [f"{label(row.verdict)} {row.test_id}: {reason}" for row, reason in notable(rows)]
    layers = [
        f"{label(row.verdict)} {row.test_id}: {explanation.line(row.explanation)}" for row in rows if row.explanation
    ]
    return "\n".join([*header, "", *table, *_costs_text(rows), "", counts(rows), *notes, *layers])


def _costs_text(rows: Sequence[Row]) -> list[str]:
    """The costs table (build time, plan size, device memory), and why a cost was not judged; nothing where no test
    recorded one."""
    judged = costs_of(rows)
    if not judged:
        return []
    columns = [Column(title, numeric=title in COST_NUMERIC) for title in COST_COLUMNS]
    table = aligned(columns, [list(cost_cells(row, cost).values()) for row, cost in judged])
    notes = [f"{cost.verdict} {cost.cost} of {row.test_id}: {cost.reason}" for row, cost in cost_notes(rows)]
    return ["", "Costs", *table, *notes]
