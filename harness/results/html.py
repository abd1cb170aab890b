"""The HTML report: one self-contained page per run, rendered from the typed results document
(harness/results/document.py's ResultsDocument).

The page opens from disk with no network: the CSS is inline, there are no scripts, no fonts are fetched or
embedded, and a Content-Security-Policy forbids the browser to load anything. The plots are inline SVG drawn
by matplotlib with text kept as text (`svg.fonttype: none`, so the browser sets it in its own sans-serif and
the file stays small). The same document gives the same bytes: each figure's SVG ids are salted with a fixed
string (`svg.hashsalt`) and no date is written into the SVG (the document's own `created` is shown).

The figures stay few and small whatever the size of the matrix: one heat map (the 40 worst cases of a larger
run), one latency figure per case (beyond 8 cases: the 20 worst tests and the medians per precision and
backend), one figure of baseline ratios (the 40 furthest); everything else is HTML, every list bounded with a
note of the rest, so that a fleet's merged file of 100,000 tests gives a report of about a MB
(benchmarks/fleet_scale.py). Messages are capped and grouped (harness/results/text.py).

Sections, in reading order: verdicts (errors and failures first, then passes, skips folded), the accuracy heat
map, latency distributions, baseline ratios, the layer diffs of latency regressions (the 10 largest), the judged
costs (build time, plan size, device memory against the baselines; only where a test judged one), per-layer
precision, localization, builds, the environment.

The plugin writes it after the results file (--harness-html); `python -m harness report RESULTS.json`
(harness/cli/report.py) writes the report of any results file, without pytest, reading it with load(): a record
at a time, each latency test kept as its percentiles.
"""

from __future__ import annotations

import html
import io
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from harness.atomic import write_atomically
from harness.case import Precision
from harness.results import document as results_document
from harness.results import text, units
from harness.results.comparison import cost_numbers
from harness.results.document import (
    VERDICTS,
    BuildResult,
    InputError,
    LayersResult,
    LocalizedLayer,
    ResultsDocument,
    TestResult,
)
from harness.results.explanation import items as explanation_items
from harness.results.terminal import build_time, opset_lines

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.typing import RcKeyType

    from harness.explain import Explanation
    from harness.gate import CostComparison

# The order verdicts are listed in: what needs reading first. An unknown verdict sorts before all of them.
_VERDICT_ORDER = {verdict: rank for rank, verdict in enumerate(VERDICTS)}
_COUNTED = {"error": "errors", "fail": "failed", "pass": "passed", "skip": "skipped"}  # the header's counts
# A fleet's file (100,000 tests) must give a report that opens: every list and figure is bounded, worst first,
# with a note of what is left out (the results file has all of it).
_LISTED_PASSES = 1000  # passing tests listed one per row; beyond, one row per case
_LISTED_GROUPS = 2000  # rows of failures (one per distinct message) and of skips
_GROUP_IDS = 50  # ids listed (folded) in the row of a message many tests failed with
_PER_CASE_FIGURES = 8  # up to this many timed cases, one latency figure each; beyond, the worst tests and aggregates
_WORST = 20  # tests in the worst-latency figure
_FIGURE_ROWS = 40  # cases in the heat map, tests in the baseline ratios, when there are more
_LISTED_LAYERS = 12  # layers named in a per-layer precision summary
_LOCALIZED = 20  # localized tests shown
_LAYER_DIFFS = 10  # regressed tests given a per-layer diff figure, the most slowed first
_LOCALIZED_LAYERS = 30  # layers shown of one localization, around the first failing one
_LISTED_BUILDS = 500
_LISTED_COSTS = 500  # judged costs listed, the regressions first
# The order judged costs are listed in: regressions, then the costs that could not be judged (which say why), then
# the rest. An unknown verdict sorts last.
_COST_ORDER = {
    verdict: rank for rank, verdict in enumerate(("regression", "inconclusive", "improvement", "new", "pass"))
}
_PERCENTILES = 101  # what the report keeps of a latency test's samples: percentiles 0..100 (see load)
# A layer diff's bars: the old time, and the new one where the layer changed (tactic, formats, …) or not.
_OLD_COLOUR, _CHANGED_COLOUR, _UNCHANGED_COLOUR = "#bdbdbd", "#c62828", "#1565c0"
_GATE_COLOURS = {"regression": "#c62828", "improvement": "#2e7d32", "pass": "#1565c0"}
_NONFINITE_COLOUR = "#4a148c"  # a heat-map cell whose output held NaN/Inf: on no scale, never green
# Heat-map scale: log10 of error ÷ tolerance, green far below 1, yellow near it, red above.
_HEAT_LOW, _HEAT_HIGH = -3.0, 1.0
# Shared by every figure: small type, thin lines (the browser sets the text: fonttype none).
_STYLE: dict[RcKeyType, object] = {
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.linewidth": 0.6,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


# What the report reads of a test's record (TestResult's fields less host_latency); the rest stays in the file.
_READ = frozenset(
    {
        "id", "case", "precision", "profile", "shape_point", "shape", "point", "backend", "backend_name",
        "backend_version", "backend_device", "backend_default_latency_threshold", "compared_with", "build",
        "accuracy", "latency", "gate", "latency_threshold", "derivation", "layers", "localization", "verdict",
        "message",
    }
)  # fmt: skip


def load(path: Path) -> ResultsDocument:
    """A results file read for its report, however large: parsed a record at a time (harness/results/stream.py),
    each record checked as results_document.load checks it, then only what the report reads kept: a latency test's
    samples as their percentiles 0..100 (its box's quartiles and median are exact; its whiskers end at the 1st
    and 99th percentiles themselves), the derivation's opset conversions, and each repeated text once."""
    from harness.results import stream

    texts: dict[str, str] = {}  # one copy of each short text: backend names, devices, verdicts, precisions
    return results_document.document_of(
        path, stream.read(path, lambda record: _kept(str(path), record, texts), _condensed)
    )


# In the file's text, before it is decoded (stream.read's `prepare`): a record's latency samples (a list of plain
# numbers) and an int8 derivation's scales (an object of lists of numbers), the bulk of a fleet's file, found and
# measured with str.find (C's own speed: a regex engine walks each character of them).
_SAMPLES_KEY, _SCALES_KEY = '"samples_us":', '"scales":'


def _condensed(chunk: str) -> str:
    """The chunk with each latency test's samples replaced by their percentiles, and int8 scales by null, each
    padded with spaces to its length; samples that are not all finite numbers > 0 are left for the checks."""
    samples = _each_value(chunk, _SAMPLES_KEY, ("[", "]"), _sample_percentiles)
    return _each_value(samples, _SCALES_KEY, ("{", "}"), _no_scales)


def _each_value(chunk: str, key: str, brackets: tuple[str, str], rewrite: Callable[[str], str | None]) -> str:
    """The chunk with the value of each `key` (from its opening bracket to the first closing one, nothing nested
    between) replaced by `rewrite(what is between them)` where that says something no longer, padded to its
    length. Only a key counts: a quote after whitespace, "{" or "," (inside a string, a quote is escaped); a
    value cut by the chunk's end is left whole."""
    opening, closing = brackets
    pieces, done = [], 0
    found = chunk.find(key)
    while found != -1:
        value = found + len(key)
        while value < len(chunk) and chunk[value] in _BLANK:
            value += 1
        end = chunk.find(closing, value) if chunk.startswith(opening, value) else -1
        if end != -1 and found and chunk[found - 1] in _BLANK + "{," and chunk.find(opening, value + 1, end) == -1:
            replacement = rewrite(chunk[value + 1 : end])
            if replacement is not None and len(key) + 1 + len(replacement) <= end + 1 - found:
                pieces += [chunk[done:found], f"{key} {replacement}".ljust(end + 1 - found)]
                done = end + 1
        found = chunk.find(key, max(found + 1, done))
    return "".join([*pieces, chunk[done:]])


_BLANK = " \t\n\r"


def _sample_percentiles(samples: str) -> str | None:
    """A list of the samples' percentiles, where they are more than those and all finite numbers > 0."""
    import numpy as np

    if samples.count(",") < _PERCENTILES:  # few enough to keep: not parsed twice
        return None
    try:
        values = np.fromstring(samples, sep=",")  # text mode: C's own number parsing, all or ValueError
    except ValueError:  # not a list of numbers: decoded as it is, and refused by the checks
        return None
    if len(values) <= _PERCENTILES or not (np.isfinite(values).all() and (values > 0).all()):
        return None
    return f"[{', '.join(map(repr, _percentiles(values)))}]"


def _no_scales(scales: str) -> str | None:
    """null, where the object is whole: no escape, every quote paired (else its "}" was inside a tensor's name)."""
    return None if "\\" in scales or scales.count('"') % 2 else "null"


def _kept(source: str, record: Mapping[str, object], texts: dict[str, str]) -> Mapping[str, object]:
    kept = {key: texts.setdefault(value, value) if isinstance(value, str) and len(value) < 200 else value
            for key, value in record.items() if key in _READ}  # fmt: skip
    stats = record.get("latency")
    samples = stats.get("samples_us") if isinstance(stats, dict) else None
    if isinstance(stats, dict) and isinstance(samples, list) and len(samples) > _PERCENTILES:  # not condensed
        kept["latency"] = {**stats, "samples_us": _checked_percentiles(source, record, samples)}
    derivation = record.get("derivation")
    if isinstance(derivation, Mapping):  # the report reads its opset conversions only; int8 scales can be large
        kept["derivation"] = {k: v for k, v in derivation.items() if k in ("opset", "reference_opset")}
    return kept


def _checked_percentiles(source: str, record: Mapping[str, object], samples: list[object]) -> list[float]:
    """The samples' percentiles once they are checked: a bad sample fails as in results_document.load, naming the test and
    the field (checked here, on the samples themselves, before they are reduced)."""
    import numpy as np

    results_document.check_records(source, {str(record.get("id")): record})
    return _percentiles(np.asarray(samples, dtype=float))


def _percentiles(values: np.ndarray) -> list[float]:
    """Percentiles 0..100 by numpy's linear interpolation, without np.percentile's general machinery."""
    import numpy as np

    ordered = np.sort(values)
    at = np.linspace(0, len(ordered) - 1, _PERCENTILES)
    below = np.floor(at).astype(int)
    above = np.minimum(below + 1, len(ordered) - 1)
    result: list[float] = (ordered[below] + (ordered[above] - ordered[below]) * (at - below)).tolist()
    return result


def write(path: Path, document: ResultsDocument) -> None:
    """Render the report of a results document and write it atomically; OSError where `path` cannot be written."""
    write_atomically(path, render(document).encode())


def render(document: ResultsDocument) -> str:
    """The report as one HTML page."""
    tests = document.tests
    rendered = (
        _verdicts(tests, document.input_errors, document.source),
        _accuracy_map(tests),
        _latency_distributions(tests),
        _baseline_ratios(tests),
        _layer_diffs(tests),
        _costs(tests),
        _layer_precision(tests, document.source),
        _localizations(tests),
        _builds(tests),
        _environment(document),
    )
    sections = [section for section in rendered if section]  # a section with nothing to show is left out
    return "\n".join((_HEAD, _header(document), _nav(sections), *sections, "</body>\n</html>\n"))


def _label(*parts: object) -> str:
    return " · ".join(str(part) for part in parts)


# --- HTML pieces ---------------------------------------------------------------------------------------------


def _escaped(value: object) -> str:
    """Text as HTML: every cell, label and message of the document goes through here."""
    return html.escape("" if value is None else str(value))


def _badge(verdict: str) -> str:
    return f'<span class="badge {_escaped(verdict)}">{_escaped(verdict)}</span>'


def _table(
    headers: Sequence[str], rows: Iterable[Sequence[str]], css_class: str = "", marked: Iterable[int] = ()
) -> str:
    """A table of cells that are already HTML; the rows numbered in `marked` get the class "marked"."""
    head = "".join(f"<th>{_escaped(header)}</th>" for header in headers)
    highlighted = set(marked)
    body = "\n".join(
        ('<tr class="marked">' if index in highlighted else "<tr>")
        + "".join(f"<td>{cell}</td>" for cell in row)
        + "</tr>"
        for index, row in enumerate(rows)
    )
    return f'<table class="{css_class}"><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>'


def _section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{_escaped(title)}</h2>\n{body}\n</section>'


def _note(text: str) -> str:
    return f'<p class="note">{_escaped(text)}</p>'


def _figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{_escaped(caption)}</figcaption></figure>"


def _plot(name: str, inches: tuple[float, float], draw: Callable[[Figure], None]) -> str:
    """One matplotlib figure as inline SVG. matplotlib is imported here, by the sessions that write a report,
    and used through Figure objects only: no pyplot, no global backend, nothing kept after the call.
    The axes are placed by hand (`_axes`): a layout engine would draw every figure twice, most of the time
    a report takes."""
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context({**_STYLE, "svg.hashsalt": f"trt-harness-{name}"}):
        figure = Figure(figsize=inches)
        draw(figure)
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :]  # inline: without the XML declaration and DOCTYPE


# --- the sections ----------------------------------------------------------------------------------------------


def _header(document: ResultsDocument) -> str:
    tests = document.tests
    counts = {verdict: sum(test.verdict == verdict for test in tests) for verdict in _VERDICT_ORDER}
    counts["error"] += len(document.input_errors)  # each failed an item of its own
    chips = " ".join(
        f'<span class="badge {verdict}">{count} {_COUNTED[verdict]}</span>' for verdict, count in counts.items()
    )
    backends = ", ".join(
        f"{short_id}: {facts.get('name') or ''} {facts.get('version') or ''} on {facts.get('device') or ''}"
        for short_id, facts in document.backends.items()
    )
    return (
        f"<h1>trt-harness report</h1>\n<p>{len(tests)} tests, created {_escaped(document.created)}"
        f"{' on ' + _escaped(backends) if backends else ''}</p>\n<p>{chips}</p>"
    )


def _verdicts(tests: Sequence[TestResult], input_errors: Sequence[InputError], source: str) -> str:
    """Bad input found outside the matrix first (a spec entry that is no case), then failures, one row per
    distinct message (one build error on nine tests is one row naming the nine), passes (one row per case when
    there are many), skips folded, one row per reason."""
    rows = [
        (_badge("error"), f"<code>{_escaped(error.id)}</code>", "bad input", _message(error.message, source, error.id))
        for error in input_errors
    ]
    ran = sorted((test for test in tests if test.verdict != "skip"), key=lambda t: _VERDICT_ORDER.get(t.verdict, -1))
    passed = [test for test in ran if test.verdict == "pass"]
    failed = text.grouped((test for test in ran if test.verdict != "pass"), key=_same_failure)
    rows += [_failure_row(group, source) for _, group in failed[:_LISTED_GROUPS]]
    left_out = _note(
        f"{len(failed) - _LISTED_GROUPS:,} more distinct failures: every test is in the results file {source}"
    )
    listed = passed if len(passed) <= _LISTED_PASSES else []
    rows += [(_badge(test.verdict), _code(test.id), _escaped(_result(test)), _why(test, source)) for test in listed]
    body = _table(("verdict", "test", "result", "why / vs baseline"), rows, "verdicts") if rows else ""
    body += left_out if len(failed) > _LISTED_GROUPS else ""
    body += "" if listed or not passed else _passes_per_case(passed)
    return _section("verdicts", "Verdicts", (body or _note("no test ran")) + _skips(tests))


def _same_failure(test: TestResult) -> str:
    """Tests that failed with one message are one row; a test without a message is a row of its own."""
    return f"{test.verdict}\n{test.message}" if test.message else f"{test.verdict}\n\n{test.id}"


def _failure_row(group: Sequence[TestResult], source: str) -> tuple[str, str, str, str]:
    first = group[0]
    if len(group) == 1:
        return (_badge(first.verdict), _code(first.id), _escaped(_result(first)), _why(first, source))
    ids = "<br>".join(_code(test.id) for test in group[:_GROUP_IDS])
    more = f"<br>and {len(group) - _GROUP_IDS:,} more" if len(group) > _GROUP_IDS else ""
    named = f"<details><summary>{len(group):,} tests</summary>{ids}{more}</details>"
    return (_badge(first.verdict), named, f"the same message on {len(group):,} tests", _why(first, source))


def _passes_per_case(passed: Sequence[TestResult]) -> str:
    per_case = text.grouped(passed, key=lambda test: test.case)
    rows = [(_escaped(case), f"{len(group):,}") for case, group in per_case]
    return _note(f"{len(passed):,} tests passed: one row per case (each test's numbers are in the results file)") + (
        "<details><summary>passes per case</summary>" + _table(("case", "tests passed"), rows, "passes") + "</details>"
    )


def _skips(tests: Sequence[TestResult]) -> str:
    """The skipped tests folded, one row per reason with the tests it skipped."""
    skipped = [test for test in tests if test.verdict == "skip"]
    if not skipped:
        return ""
    reasons = text.grouped(skipped, key=lambda test: test.message or "")
    rows = [
        (_escaped(text.listed_ids([test.id for test in group])), _escaped(reason))
        for reason, group in reasons[:_LISTED_GROUPS]
    ]
    more = _note(f"{len(reasons) - _LISTED_GROUPS:,} more reasons") if len(reasons) > _LISTED_GROUPS else ""
    return (
        f"<details><summary>{len(skipped)} skipped</summary>\n" + _table(("tests", "why"), rows) + more + "</details>"
    )


def _code(test_id: str) -> str:
    return f"<code>{_escaped(test_id)}</code>"


def _result(test: TestResult) -> str:
    """The test's measurement in a few words."""
    if test.latency is not None:  # its CI is in the test's line of "why / vs baseline" and its box in the figure
        return f"median {units.micros(test.latency.median_us)}, {test.latency.count} runs"
    if test.nonfinite is not None:  # its error is measured over the finite elements: no number says it
        return f"{test.nonfinite} in the output"
    ratio = test.tolerance_ratio
    if ratio is not None:
        return f"error {text.number(ratio)}× tolerance"
    if test.is_build and test.build is not None:
        return f"{build_time(test.build)}, {_plan_size(test.build)}"
    return ""


def _message(message: str, source: str, test_id: str) -> str:
    return f'<pre class="message">{_escaped(text.capped(message, source, test_id))}</pre>'


def _why(test: TestResult, source: str) -> str:
    """A failure's message (capped, text.capped); for a pass, how it compared with its baseline; and labels that
    passed only by exemption (TestResult.label_exemptions)."""
    labels = test.label_exemptions
    exempt = f'<div class="labels">labels: {_escaped(labels)}</div>' if labels else ""
    if test.message:
        return _message(test.message, source, test.id) + exempt
    gate = test.gate
    compared = f"{_escaped(gate.verdict)}: {_escaped(gate.reason)}" if gate is not None and gate.verdict else ""
    return compared + exempt


def _accuracy_map(tests: Sequence[TestResult]) -> str:
    """Case × precision: the worst mean relative error ÷ tolerance of its accuracy tests (any shape, backend);
    a cell whose outputs held NaN/Inf says so in a colour of its own. Beyond _FIGURE_ROWS cases, the worst."""
    accuracy = [test for test in tests if test.kind == "accuracy"]
    if not accuracy:
        return _section("accuracy", "Accuracy", _note("no accuracy test in this run"))
    present = {test.precision for test in accuracy}
    precisions = [p.value for p in Precision if p.value in present] + sorted(present - {p.value for p in Precision})
    worst: dict[tuple[str, str], float] = {}
    nonfinite: dict[tuple[str, str], str] = {}
    failed: set[tuple[str, str]] = set()
    for test in accuracy:
        cell = (test.case, test.precision)
        ratio = test.tolerance_ratio
        if test.nonfinite is not None and test.verdict != "skip":
            nonfinite[cell] = "NaN" if "NaN" in (test.nonfinite, nonfinite.get(cell)) else test.nonfinite
        elif ratio is not None and test.verdict != "skip":
            worst[cell] = max(worst.get(cell, 0.0), ratio)
        if test.failed:
            failed.add(cell)
    all_cases = list(dict.fromkeys(test.case for test in accuracy))
    cases = _worst_cases(all_cases, precisions, worst, nonfinite, failed)

    left, cell_width, cell_height, bar_room = _label_room(cases), 0.85, 0.36, 0.9

    def draw(figure: Figure) -> None:
        import numpy as np
        from matplotlib.colors import TwoSlopeNorm
        from matplotlib.patches import Rectangle

        grid = np.full((len(cases), len(precisions)), np.nan)
        for (case, precision), measured in worst.items():
            if case in cases:
                grid[cases.index(case), precisions.index(precision)] = np.log10(max(measured, 1e-12))
        axes = _axes(figure, left, 0.3, right=bar_room, top=0.05)
        norm = TwoSlopeNorm(vmin=_HEAT_LOW, vcenter=0.0, vmax=_HEAT_HIGH)
        image = axes.imshow(np.clip(grid, _HEAT_LOW, _HEAT_HIGH), cmap="RdYlGn_r", norm=norm, aspect="auto")
        axes.set_facecolor("#eeeeee")  # a cell nothing measured: skipped, or only exact outputs
        axes.set_xticks(range(len(precisions)), precisions)
        axes.set_yticks(range(len(cases)), cases)
        axes.tick_params(length=0)
        for row, case in enumerate(cases):
            for column, precision in enumerate(precisions):
                cell = (case, precision)
                if cell in nonfinite:  # on no scale: neither green nor a number
                    axes.add_patch(Rectangle((column - 0.5, row - 0.5), 1, 1, color=_NONFINITE_COLOUR))
                shown = worst.get(cell)
                # white on the dark ends of the scale, and on the NaN/Inf colour
                dark = cell in nonfinite or (
                    shown is not None and not _HEAT_LOW + 0.7 < math.log10(max(shown, 1e-12)) < _HEAT_HIGH - 0.3
                )
                label = _heat_label(nonfinite.get(cell) or shown, cell in failed)
                axes.text(column, row, label, ha="center", va="center", color="white" if dark else "black")
        width, height = figure.get_size_inches()
        scale = figure.add_axes((1 - (bar_room - 0.15) / width, 0.3 / height, 0.1 / width, 1 - 0.35 / height))
        powers = range(int(_HEAT_LOW), int(_HEAT_HIGH) + 1)
        bar = figure.colorbar(image, cax=scale, ticks=list(powers))
        bar.ax.set_yticklabels([f"{10.0**power:g}" for power in powers])

    # At least room for the colour bar's five labels, however few cases there are.
    inches = (left + cell_width * len(precisions) + bar_room, max(1.45, 0.35 + cell_height * len(cases)))
    svg = _plot("accuracy", inches, draw)
    caption = (
        "Worst mean relative error ÷ its tolerance per case and precision, over shapes and backends "
        "(below 1 passes; ✗ a failed or errored test; purple: the outputs held NaN or Inf; grey: not measured)."
    )
    if len(cases) < len(all_cases):
        caption += f" The {len(cases)} worst of {len(all_cases):,} cases; the others are in the results file."
    return _section("accuracy", "Accuracy", _figure(svg, caption))


def _worst_cases(
    cases: Sequence[str],
    precisions: Sequence[str],
    worst: Mapping[tuple[str, str], float],
    nonfinite: Mapping[tuple[str, str], str],
    failed: set[tuple[str, str]],
) -> list[str]:
    """All the cases when few, else the _FIGURE_ROWS worst: NaN/Inf first, then failed, then the largest ratio."""
    if len(cases) <= _FIGURE_ROWS:
        return list(cases)

    def badness(case: str) -> tuple[bool, bool, float]:
        cells = [(case, precision) for precision in precisions]
        ratios = [worst[cell] for cell in cells if cell in worst]
        return (any(c in nonfinite for c in cells), any(c in failed for c in cells), max(ratios, default=0.0))

    return sorted(cases, key=badness, reverse=True)[:_FIGURE_ROWS]


def _heat_label(value: float | str | None, failed: bool) -> str:
    shown = "—" if value is None else value if isinstance(value, str) else text.number(value)
    return f"{shown} ✗" if failed else shown


def _latency_distributions(tests: Sequence[TestResult]) -> str:
    """One figure per case, a box per latency test from its samples; beyond _PER_CASE_FIGURES cases, two
    figures whatever their number: the _WORST tests, and the spread of every test's median per precision and
    backend."""
    timed = [test for test in tests if _samples(test)]
    if not timed:
        return _section("latency", "Latency", _note("no latency was measured in this run"))
    by_case = text.grouped(timed, key=lambda test: test.case)
    caption = _note(
        "Boxes: quartiles and median of each test's timed runs; whiskers: 1st–99th percentile. Red: the test failed."
    )
    if len(by_case) <= _PER_CASE_FIGURES:
        figures = [f"<figure>{_latency_plot(case, group, with_case=False)}</figure>" for case, group in by_case]
    else:
        worst = sorted(timed, key=_slowness, reverse=True)[:_WORST]
        title = f"the {len(worst)} worst of {len(timed):,} latency tests ({len(by_case):,} cases)"
        figures = [f"<figure>{_latency_plot(title, worst, with_case=True)}</figure>", _medians_plot(timed)]
        caption += _note(
            "Worst: failed first, then the largest ratio to the baseline, then the slowest median. "
            "Every test's numbers are in the verdicts and the results file."
        )
    return _section("latency", "Latency", caption + '<div class="figures">' + "\n".join(figures) + "</div>")


def _slowness(test: TestResult) -> tuple[bool, float, float]:
    ratio = test.gate.latency_ratio if test.gate is not None else None
    median = test.latency.median_us if test.latency is not None else 0.0
    return (test.failed, ratio if ratio is not None and math.isfinite(ratio) else 0.0, median)


def _samples(test: TestResult) -> list[float]:
    """The test's finite latency samples (the schema checks that a file's are; a sparse record may have none)."""
    return [sample for sample in test.latency.samples_us if math.isfinite(sample)] if test.latency else []


def _latency_plot(title: str, tests: Sequence[TestResult], *, with_case: bool) -> str:
    labels = [_label(*((test.case,) if with_case else ()), test.precision, test.shape, test.backend) for test in tests]
    boxes = [_samples(test) for test in tests]
    return _boxes(f"latency-{title}", title, labels, boxes, [test.failed for test in tests], "latency (µs)")


def _medians_plot(timed: Sequence[TestResult]) -> str:
    """A box per precision and backend over its tests' medians: the fleet's latency in one figure."""
    groups = text.grouped(timed, key=lambda test: _label(test.precision, test.backend))
    medians = [[test.latency.median_us for test in group if test.latency is not None] for _, group in groups]
    labels = [f"{name} ({len(group):,} tests)" for name, group in groups]
    failed = [any(test.failed for test in group) for _, group in groups]
    svg = _boxes("latency-medians", "medians per precision and backend", labels, medians, failed, "median (µs)")
    return f"<figure>{svg}</figure>"


def _boxes(
    name: str, title: str, labels: Sequence[str], data: Sequence[Sequence[float]], failed: Sequence[bool], x: str
) -> str:
    left = _label_room(labels)

    def draw(figure: Figure) -> None:
        axes = _axes(figure, left, 0.4, top=0.25)
        axes.set_title(title, loc="left")
        boxes = axes.boxplot(
            data,
            orientation="horizontal",
            whis=(1, 99),
            showfliers=False,
            patch_artist=True,
            widths=0.6,
            medianprops={"color": "black", "linewidth": 1},
        )
        for patch, bad in zip(boxes["boxes"], failed):
            patch.set_facecolor("#ef9a9a" if bad else "#90caf9")
            patch.set_linewidth(0.6)
        axes.set_yticks(range(1, len(labels) + 1), labels)
        axes.invert_yaxis()  # the first on top, as listed
        _plain_log_axis(axes)
        axes.set_xlabel(x)
        _grid(axes)

    return _plot(name, (left + 3.2, 0.65 + 0.18 * len(labels)), draw)


def _axes(figure: Figure, left: float, bottom: float, right: float = 0.15, top: float = 0.1) -> Axes:
    """Axes filling the figure less these margins, in inches (the labels' room)."""
    width, height = figure.get_size_inches()
    return figure.add_axes((left / width, bottom / height, 1 - (left + right) / width, 1 - (bottom + top) / height))


def _label_room(labels: Iterable[str]) -> float:
    """Inches that tick labels of 9 pt need beside an axis: about 0.07 in per character, and a gap."""
    return 0.2 + 0.07 * max((len(label) for label in labels), default=0)


def _plain_log_axis(axes: Axes) -> None:
    """A log x axis labelled 1, 2, 5, 10, 20, ... in plain numbers (no 10^x, no crowded minor labels)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axes.set_xscale("log")
    axes.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.6g}"))
    axes.xaxis.set_minor_formatter(NullFormatter())


def _grid(axes: Axes) -> None:
    axes.grid(axis="x", which="both", color="#dddddd", linewidth=0.5)
    axes.set_axisbelow(True)


def _baseline_ratios(tests: Sequence[TestResult]) -> str:
    gates = [test.gate for test in tests if test.gate is not None]
    compared = [test for test in tests if test.gate is not None and test.gate.latency_ratio is not None]
    gate_verdicts: dict[str, int] = {}
    for gate in gates:
        if gate.verdict:
            gate_verdicts[gate.verdict] = gate_verdicts.get(gate.verdict, 0) + 1
    tally = ", ".join(f"{verdict} {count}" for verdict, count in gate_verdicts.items())
    notes = sorted({gate.baseline for gate in gates if gate.baseline})
    said = _note(f"Gate verdicts: {tally}." if tally else "Nothing was compared with a baseline.")
    said += "".join(_note(f"Baseline: {note}") for note in notes)
    if not compared:
        return _section("baselines", "Against the baselines", said)
    if len(compared) > _FIGURE_ROWS:  # the furthest from their baselines, slower first
        said += _note(f"The {_FIGURE_ROWS} furthest from their baselines of {len(compared):,} compared tests.")
        compared = sorted(compared, key=_off_baseline, reverse=True)[:_FIGURE_ROWS]

    labels = [_label(test.case, test.precision, test.shape, test.backend) for test in compared]
    left = _label_room(labels)

    def draw(figure: Figure) -> None:
        axes = _axes(figure, left, 0.4)
        for row, test in enumerate(compared):
            gate = test.gate
            assert gate is not None and gate.latency_ratio is not None  # as selected into `compared`
            ratio = gate.latency_ratio
            low, high = gate.latency_ratio_ci or (math.nan, math.nan)
            axes.errorbar(
                ratio,
                row,
                xerr=[[ratio - low], [high - ratio]],
                fmt="o",
                color=_GATE_COLOURS.get(gate.latency_verdict or "", "#424242"),
                markersize=3,
                elinewidth=1,
                capsize=2,
            )
            if test.threshold is not None:  # a grey band: within the test's threshold of its baseline
                band = (1 - test.threshold, 1 + test.threshold)
                axes.fill_betweenx([row - 0.5, row + 0.5], *band, color="#eeeeee", zorder=0)
        axes.axvline(1.0, color="black", linewidth=0.6)
        axes.set_yticks(range(len(compared)), labels)
        axes.set_ylim(len(compared) - 0.5, -0.5)  # the first test on top; the bands fill the rows exactly
        axes.set_xlabel("median latency ÷ baseline's (95 % CI)")
        _grid(axes)

    svg = _plot("baselines", (left + 3.6, 0.5 + 0.18 * len(compared)), draw)
    caption = (
        "Each latency test's median against its baseline's, with its 95 % bootstrap CI; "
        "the grey band: within the test's threshold."
    )
    return _section("baselines", "Against the baselines", said + _figure(svg, caption))


def _off_baseline(test: TestResult) -> tuple[bool, float]:
    gate = test.gate
    ratio = gate.latency_ratio if gate is not None and gate.latency_ratio is not None else 1.0
    distance = abs(math.log(ratio)) if math.isfinite(ratio) and ratio > 0 else math.inf
    return (gate is not None and gate.latency_verdict == "regression", distance)


def _layer_diffs(tests: Sequence[TestResult]) -> str:
    """For each latency regression whose gate named its layers (GateVerdict.explanation, recorded in the results
    file: the baseline's profile is not needed here), old vs new time of its kept layers (the most added time
    first), changed layers marked; the explanation's items below. At most _LAYER_DIFFS figures, the largest ratio
    first."""
    explained = [test for test in tests if test.gate is not None and test.gate.explanation is not None]
    if not explained:
        return _section("layer-diff", "Layer diff", _note("no latency regression was explained by its layers"))
    explained.sort(key=_off_baseline, reverse=True)
    parts = []
    for test in explained[:_LAYER_DIFFS]:
        explanation = test.gate.explanation if test.gate is not None else None
        assert explanation is not None  # as selected into `explained`
        items = "".join(f"<li>{_escaped(item)}</li>" for item in explanation_items(explanation))
        figure = _layer_diff_figure(test.id, explanation) if explanation.layers else ""
        parts.append(f"<h3>{_badge(test.verdict)} <code>{_escaped(test.id)}</code></h3><ul>{items}</ul>{figure}")
    if len(explained) > _LAYER_DIFFS:
        parts.append(_note(f"{len(explained) - _LAYER_DIFFS:,} more explained regressions: in the results file"))
    return _section("layer-diff", "Layer diff", "\n".join(parts))


def _layer_diff_figure(test_id: str, explanation: Explanation) -> str:
    """Horizontal bars, a pair per layer: the old time (grey) over the new one (red where the layer changed: its
    tactic, formats, precision or fusion; blue where only its time did); a changed layer's label ends in " *"."""
    layers = explanation.layers
    labels = [f"{layer.label} *" if layer.changes else layer.label for layer in layers]
    left = _label_room(labels)

    def draw(figure: Figure) -> None:
        from matplotlib.patches import Patch

        axes = _axes(figure, left, 0.4)
        rows = range(len(layers))
        axes.barh([row - 0.2 for row in rows], [layer.old_us for layer in layers], 0.4, color=_OLD_COLOUR)
        colours = [_CHANGED_COLOUR if layer.changes else _UNCHANGED_COLOUR for layer in layers]
        axes.barh([row + 0.2 for row in rows], [layer.new_us for layer in layers], 0.4, color=colours)
        axes.set_yticks(rows, labels)
        axes.invert_yaxis()  # the layer that added the most on top
        axes.set_xlabel("median layer time (µs)")
        keys = ((_OLD_COLOUR, "old"), (_CHANGED_COLOUR, "new, changed *"), (_UNCHANGED_COLOUR, "new, same layer"))
        axes.legend(handles=[Patch(color=colour, label=said) for colour, said in keys], loc="best", frameon=False)
        _grid(axes)

    svg = _plot(f"layer-diff-{test_id}", (left + 3.6, 0.5 + 0.22 * len(layers)), draw)
    caption = (
        f"The {len(layers)} layers by the time they added, the most first (any that got faster last), old (grey) "
        "and new; * and red: the layer changed (tactic, formats, precision or fusion), blue: only its time did."
    )
    return _figure(svg, caption)


def _costs(tests: Sequence[TestResult]) -> str:
    """Each cost the gate judged (GateVerdict.costs: a build test's build time and plan size, a latency test's device
    memory where its backend reports it) against the baseline's: old, new, their ratio, the threshold and the verdict,
    a regression's row marked, and why a cost was not judged. Nothing, not even the section, where no test judged a
    cost (a run without build tests or baselines): an empty table would be noise. At most _LISTED_COSTS rows,
    regressions first, the largest ratio first within a verdict."""
    judged = [(test, cost) for test in tests if test.gate is not None for cost in test.gate.costs or ()]
    if not judged:
        return ""
    judged.sort(key=lambda pair: _cost_rank(pair[1]))
    more = ""
    if len(judged) > _LISTED_COSTS:
        more = _note(f"The first {_LISTED_COSTS} of {len(judged):,} judged costs; the others are in the results file.")
        judged = judged[:_LISTED_COSTS]
    rows = [
        (_code(test.id), _escaped(cost.cost), *map(_escaped, cost_numbers(cost)), *_cost_verdict(cost))
        for test, cost in judged
    ]
    marked = [index for index, (_, cost) in enumerate(judged) if cost.verdict == "regression"]
    headers = ("test", "cost", "old", "new", "ratio", "threshold", "verdict")
    return _section("costs", "Costs", _table(headers, rows, "costs", marked) + more)


def _cost_rank(cost: CostComparison) -> tuple[int, float]:
    ratio = cost.ratio if cost.ratio is not None else 1.0
    return _COST_ORDER.get(cost.verdict, len(_COST_ORDER)), -ratio


def _cost_verdict(cost: CostComparison) -> tuple[str, str]:
    """The threshold and verdict cells; a cost that was not judged (inconclusive, new) says why beside its verdict."""
    why = f" {_escaped(cost.reason)}" if cost.verdict in ("inconclusive", "new") else ""
    return _escaped(f"{cost.threshold:.0%}"), _badge(cost.verdict) + why


def _layer_precision(tests: Sequence[TestResult], source: str) -> str:
    """The precision each layer ran in, once per case, precision and backend (shapes share it); a test that
    found problems is the one shown. A large model's layers are counted per precision, a few named."""
    seen: dict[tuple[str, str, str], LayersResult] = {}
    for test in tests:
        key = (test.case, test.precision, test.backend)
        if test.layers is not None and (key not in seen or test.layers.problems):
            seen[key] = test.layers
    if not seen:
        return _section("layers", "Per-layer precision", _note("no accuracy test recorded its layers"))
    listed = sorted(seen.items(), key=lambda item: not item[1].problems)[:_LISTED_GROUPS]  # problems first
    rows = [
        (
            _escaped(case),
            _escaped(precision),
            _escaped(backend),
            _escaped(layers.source),
            _escaped(layer_summary(layers.summary)),
            "<br>".join(f'<span class="problem">{_escaped(problem)}</span>' for problem in layers.problems[:_WORST])
            + (f"<br>and {len(layers.problems) - _WORST:,} more" if len(layers.problems) > _WORST else ""),
        )
        for (case, precision, backend), layers in listed
    ]
    more = _note(f"{len(seen) - len(listed):,} more: in the results file {source}") if len(seen) > len(listed) else ""
    return _section(
        "layers",
        "Per-layer precision",
        _table(("case", "precision", "backend", "read from", "layers as run", "problems"), rows, "layers") + more,
    )


def layer_summary(summary: str) -> str:
    """A per-layer summary ("conv1 Half, pool1 Half, fc1 Float (kept)") as shown: whole for a small model, else
    its layers counted per precision and the first few named: "1,712 layers: 1,650 Half, 62 Float (kept);
    conv1 Half, … (1,700 more)"."""
    layers = summary.split(", ")
    if len(layers) <= _LISTED_LAYERS:
        return summary
    counts = sorted(text.grouped(layers, key=lambda layer: layer.partition(" ")[2] or "?"), key=lambda c: -len(c[1]))
    tally = ", ".join(f"{len(group):,} {precision}" for precision, group in counts)  # the most common first
    named = ", ".join(layers[: text.LIST_ITEMS])
    return f"{len(layers):,} layers: {tally}; {named}, … ({len(layers) - text.LIST_ITEMS:,} more)"


def _localizations(tests: Sequence[TestResult]) -> str:
    localized = [(test, test.localization) for test in tests if test.localization is not None]
    if not localized:
        return _section(
            "localization",
            "Localization",
            _note("no point was localized (failing fp16/bf16/int8 accuracy tests are, or every one with --localize)"),
        )
    parts = []
    for test, found in sorted(localized, key=lambda pair: not pair[0].failed)[:_LOCALIZED]:
        shown, skipped = _around_first_failing(found.layers)
        rows = [
            (
                _escaped(layer.node),
                _escaped(layer.op_type),
                _escaped(layer.tensor),
                _escaped(_scientific(layer.mean_rel)),
                _bar(layer.mean_rel, found.tolerance),
            )
            for layer in shown
        ]
        beyond = [index for index, layer in enumerate(shown) if layer.exceeds]
        table = _table(("node", "op", "tensor", "mean rel. error", "÷ tolerance"), rows, "localization", beyond)
        left_out = _note(f"{skipped:,} more layers: in the results file") if skipped else ""
        parts.append(
            f"<h3>{_badge(test.verdict)} <code>{_escaped(test.id)}</code></h3>"
            f'<p>{_escaped(found.summary)} <span class="note">(ran on {_escaped(found.ran_on)})</span></p>{table}'
            + left_out
        )
    if len(localized) > _LOCALIZED:
        parts.append(_note(f"{len(localized) - _LOCALIZED:,} more localized tests: in the results file"))
    return _section("localization", "Localization", "\n".join(parts))


def _around_first_failing(layers: Sequence[LocalizedLayer]) -> tuple[Sequence[LocalizedLayer], int]:
    """Every layer of a small model; of a large one, _LOCALIZED_LAYERS around the first beyond its tolerance (the
    last third after it), and how many are left out."""
    if len(layers) <= _LOCALIZED_LAYERS:
        return layers, 0
    first = next((index for index, layer in enumerate(layers) if layer.exceeds), 0)
    start = max(0, min(first - 2 * _LOCALIZED_LAYERS // 3, len(layers) - _LOCALIZED_LAYERS))
    return layers[start : start + _LOCALIZED_LAYERS], len(layers) - _LOCALIZED_LAYERS


def _scientific(value: float | None) -> str:
    return "" if value is None else text.number(value, ".2e")


def _bar(error: float | None, tolerance: float | None) -> str:
    """error ÷ tolerance as a number and a bar on a log scale from 0.001 to 10 (the tolerance at 3/4)."""
    if error is None or not tolerance:
        return ""
    ratio = error / tolerance
    if not math.isfinite(ratio):  # a layer's NaN/Inf: beyond any tolerance, never a short green bar
        return f'<span class="bar over" style="width:100px"></span> {text.number(ratio)}'
    width = 100 * min(max((math.log10(ratio) - _HEAT_LOW) / (_HEAT_HIGH - _HEAT_LOW), 0.0), 1.0) if ratio > 0 else 0
    level = "over" if ratio > 1 else "under"
    return f'<span class="bar {level}" style="width:{width:.0f}px"></span> {ratio:.2g}'


def _builds(tests: Sequence[TestResult]) -> str:
    """The build tests' records; without build tests, each distinct engine the run tests built or loaded."""
    builds = [test for test in tests if test.is_build and test.build is not None]
    if not builds:
        builds = list({test.build.key: test for test in tests if test.build is not None}.values())
    conversions = "".join(_note(line) for line in opset_lines(tests))  # which precisions ran an upgraded model
    if not builds:
        return _section("builds", "Builds", _note("nothing was built in this run") + conversions)
    more = ""
    if len(builds) > _LISTED_BUILDS:  # the slowest
        more = _note(f"The {_LISTED_BUILDS} slowest of {len(builds):,} builds; the others are in the results file.")
        builds = sorted(builds, key=lambda test: test.build.build_s or 0.0 if test.build else 0.0, reverse=True)
        builds = builds[:_LISTED_BUILDS]
    rows = [
        (
            _escaped(test.case),
            _escaped(test.precision),
            _escaped(test.profile),
            _escaped(test.backend),
            _escaped(build_time(build)),
            _escaped(_plan_size(build)),
            f"<details><summary>{len(build.warnings)}</summary>{_warnings(build.warnings, test.id)}</details>"
            if build.warnings
            else "0",
        )
        for test in builds
        if (build := test.build) is not None
    ]
    headers = ("case", "precision", "profile", "backend", "build time", "plan size", "builder warnings")
    return _section("builds", "Builds", _table(headers, rows, "builds") + more + conversions)


def _warnings(warnings: Sequence[str], test_id: str) -> str:
    shown = "<br>".join(_escaped(text.capped(warning, "", test_id)) for warning in warnings[:_WORST])
    return shown + (f"<br>and {len(warnings) - _WORST:,} more" if len(warnings) > _WORST else "")


def _plan_size(build: BuildResult) -> str:
    return units.size(build.artifact_bytes) if build.artifact_bytes is not None else ""


def _environment(document: ResultsDocument) -> str:
    """The environment and settings as recorded: free-form facts, each on one line."""
    rows = [(_escaped(key), _escaped(_flat(value))) for key, value in document.environment.items()]
    rows += [(f"settings: {_escaped(key)}", _escaped(_flat(value))) for key, value in document.settings.items()]
    if document.merged_from:
        rows.append(("merged from", _escaped(", ".join(document.merged_from))))
    return _section("environment", "Environment and settings", _table(("", ""), rows, "environment"))


def _flat(value: object) -> str:
    """A nested value on one line: `a 1, b (c 2)` for a mapping, `x, y` for a list."""
    if isinstance(value, Mapping):
        return ", ".join(
            f"{key} ({_flat(item)})" if isinstance(item, Mapping) else f"{key} {_flat(item)}"
            for key, item in value.items()
        )
    if isinstance(value, list):
        return ", ".join(_flat(item) for item in value)
    return "" if value is None else str(value)


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans", sans-serif;
       margin: 0 auto; max-width: 1280px; padding: 1rem 1.5rem; color: #212121; font-size: 14px; }
h1 { font-size: 1.5rem; margin: 0.3rem 0; } h2 { font-size: 1.2rem; border-bottom: 1px solid #ddd; margin-top: 2rem; }
h3 { font-size: 1rem; font-weight: normal; }
nav a { margin-right: 0.8rem; color: #1565c0; text-decoration: none; }
table { border-collapse: collapse; margin: 0.5rem 0; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: 0.2rem 0.5rem; border-bottom: 1px solid #eee; }
th { background: #f5f5f5; font-weight: 600; }
code { font-size: 0.85rem; }
table.verdicts td:nth-child(2), table.verdicts td:nth-child(3) { white-space: nowrap; }
pre.message { white-space: pre-wrap; margin: 0; font-size: 0.8rem; max-height: 4.6rem; overflow: auto;
              background: #fff8f8; border-left: 3px solid #c62828; padding: 0.3rem; }
.badge { display: inline-block; padding: 0.05rem 0.45rem; border-radius: 0.6rem; color: white;
         font-size: 0.8rem; font-weight: 600; background: #424242; }
.badge.fail { background: #c62828; } .badge.error { background: #6a1b9a; }
.badge.pass { background: #2e7d32; } .badge.skip { background: #757575; }
.badge.regression { background: #c62828; } .badge.improvement { background: #2e7d32; }
.note { color: #616161; }
.problem { color: #c62828; }
tr.marked td { background: #ffebee; }
.bar { display: inline-block; height: 0.6rem; vertical-align: middle; }
.bar.under { background: #81c784; } .bar.over { background: #e57373; }
figure { margin: 0.5rem 0; } figcaption { color: #616161; font-size: 0.85rem; }
figure svg { max-width: 100%; height: auto; }
.figures { display: flex; flex-wrap: wrap; gap: 1rem; align-items: flex-start; }
details summary { cursor: pointer; color: #1565c0; }
table.environment td:first-child { white-space: nowrap; color: #616161; width: 12rem; }
"""

_NAV = (
    ("verdicts", "Verdicts"),
    ("accuracy", "Accuracy"),
    ("latency", "Latency"),
    ("baselines", "Baselines"),
    ("layer-diff", "Layer diff"),
    ("costs", "Costs"),
    ("layers", "Layers"),
    ("localization", "Localization"),
    ("builds", "Builds"),
    ("environment", "Environment"),
)


def _nav(sections: Sequence[str]) -> str:
    """The links to the sections on the page: none to a section left out (Costs, where no test judged one)."""
    shown = [
        (anchor, title) for anchor, title in _NAV if any(s.startswith(f'<section id="{anchor}">') for s in sections)
    ]
    return "<nav>" + " ".join(f'<a href="#{anchor}">{title}</a>' for anchor, title in shown) + "</nav>"


_HEAD = (
    '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
    # Nothing may load from anywhere (matplotlib's raster parts are inline data: images): the report is read
    # offline, and the browser enforces it.
    "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n"
    '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
    f"<title>trt-harness report</title>\n<style>{_CSS}</style>\n</head>\n<body>"
)
