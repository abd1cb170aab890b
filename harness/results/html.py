"""The HTML report: one self-contained page per run, rendered from the typed results document
(harness/results/schema.py's ResultsDocument).

The page opens from disk with no network: the CSS is inline, there are no scripts, no fonts are fetched or
embedded, and a Content-Security-Policy forbids the browser to load anything. The plots are inline SVG drawn
by matplotlib with text kept as text (`svg.fonttype: none`, so the browser sets it in its own sans-serif and
the file stays small). The same document gives the same bytes: each figure's SVG ids are salted with a fixed
string (`svg.hashsalt`) and no date is written into the SVG (the document's own `created` is shown).

The figures stay few and small whatever the size of the matrix: one heat map, one latency figure per case,
one figure of baseline ratios; everything else is HTML. Sections, in reading order: verdicts (errors and
failures first, then passes, skips folded), the accuracy heat map, latency distributions, baseline ratios,
per-layer precision, localization, builds, the environment.

The plugin writes it after the results file (--harness-html); `python -m harness report RESULTS.json`
(harness/cli/report.py) writes the report of any results file, without pytest.
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
from harness.results import units
from harness.results.schema import VERDICTS, BuildResult, InputError, LayersResult, ResultsDocument, TestResult
from harness.results.terminal import build_time, opset_lines

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.typing import RcKeyType

# The order verdicts are listed in: what needs reading first. An unknown verdict sorts before all of them.
_VERDICT_ORDER = {verdict: rank for rank, verdict in enumerate(VERDICTS)}
_COUNTED = {"error": "errors", "fail": "failed", "pass": "passed", "skip": "skipped"}  # the header's counts
_MESSAGE_CHARS = 3000  # of a failure's message, as shown; pytest's own output keeps all of it
_GATE_COLOURS = {"regression": "#c62828", "improvement": "#2e7d32", "pass": "#1565c0"}
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


def write(path: Path, document: ResultsDocument) -> None:
    """Render the report of a results document and write it atomically; OSError where `path` cannot be written."""
    write_atomically(path, render(document).encode())


def render(document: ResultsDocument) -> str:
    """The report as one HTML page."""
    tests = document.tests
    sections = (
        _verdicts(tests, document.input_errors),
        _accuracy_map(tests),
        _latency_distributions(tests),
        _baseline_ratios(tests),
        _layer_precision(tests),
        _localizations(tests),
        _builds(tests),
        _environment(document),
    )
    return "\n".join((_HEAD, _header(document), _NAV, *sections, "</body>\n</html>\n"))


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


def _verdicts(tests: Sequence[TestResult], input_errors: Sequence[InputError]) -> str:
    """Bad input found outside the matrix first (a spec entry that is no case), then failures, passes, skips."""
    ran = sorted((test for test in tests if test.verdict != "skip"), key=lambda t: _VERDICT_ORDER.get(t.verdict, -1))
    rows = [
        (_badge("error"), f"<code>{_escaped(error.id)}</code>", "bad input", _message(error.message))
        for error in input_errors
    ]
    rows += [
        (_badge(test.verdict), f"<code>{_escaped(test.id)}</code>", _escaped(_result(test)), _why(test)) for test in ran
    ]
    skipped = [test for test in tests if test.verdict == "skip"]
    folded = (
        f"<details><summary>{len(skipped)} skipped</summary>\n"
        + _table(("test", "why"), ((f"<code>{_escaped(t.id)}</code>", _escaped(t.message)) for t in skipped))
        + "</details>"
        if skipped
        else ""
    )
    body = (
        _table(("verdict", "test", "result", "why / vs baseline"), rows, "verdicts") if rows else _note("no test ran")
    )
    return _section("verdicts", "Verdicts", body + folded)


def _result(test: TestResult) -> str:
    """The test's measurement in a few words."""
    if test.latency is not None:  # its CI is in the test's line of "why / vs baseline" and its box in the figure
        return f"median {units.micros(test.latency.median_us)}, {test.latency.count} runs"
    ratio = test.tolerance_ratio
    if ratio is not None:
        return f"error {ratio:.2g}× tolerance"
    if test.is_build and test.build is not None:
        return f"{build_time(test.build)}, {_plan_size(test.build)}"
    return ""


def _message(message: str) -> str:
    shown = message if len(message) <= _MESSAGE_CHARS else message[:_MESSAGE_CHARS] + " …"
    return f'<pre class="message">{_escaped(shown)}</pre>'


def _why(test: TestResult) -> str:
    """A failure's message in full (up to a limit); for a pass, how it compared with its baseline; and labels that
    passed only by exemption (TestResult.label_exemptions)."""
    labels = test.label_exemptions
    exempt = f'<div class="labels">labels: {_escaped(labels)}</div>' if labels else ""
    if test.message:
        return _message(test.message) + exempt
    gate = test.gate
    compared = f"{_escaped(gate.verdict)}: {_escaped(gate.reason)}" if gate is not None and gate.verdict else ""
    return compared + exempt


def _accuracy_map(tests: Sequence[TestResult]) -> str:
    """Case × precision: the worst mean relative error ÷ tolerance of its accuracy tests (any shape, backend)."""
    accuracy = [test for test in tests if test.kind == "accuracy"]
    if not accuracy:
        return _section("accuracy", "Accuracy", _note("no accuracy test in this run"))
    cases = list(dict.fromkeys(test.case for test in accuracy))
    present = {test.precision for test in accuracy}
    precisions = [p.value for p in Precision if p.value in present] + sorted(present - {p.value for p in Precision})
    worst: dict[tuple[str, str], float] = {}
    failed: set[tuple[str, str]] = set()
    for test in accuracy:
        cell = (test.case, test.precision)
        ratio = test.tolerance_ratio
        if ratio is not None and test.verdict != "skip":
            worst[cell] = max(worst.get(cell, 0.0), ratio)
        if test.failed:
            failed.add(cell)

    left, cell_width, cell_height, bar_room = _label_room(cases), 0.85, 0.36, 0.9

    def draw(figure: Figure) -> None:
        import numpy as np
        from matplotlib.colors import TwoSlopeNorm

        grid = np.full((len(cases), len(precisions)), np.nan)
        for (case, precision), measured in worst.items():
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
                shown = worst.get((case, precision))
                # white on the dark ends of the scale
                dark = shown is not None and not _HEAT_LOW + 0.7 < math.log10(max(shown, 1e-12)) < _HEAT_HIGH - 0.3
                label = _heat_label(shown, (case, precision) in failed)
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
        "(below 1 passes; ✗ a failed or errored test; grey: not measured)."
    )
    return _section("accuracy", "Accuracy", _figure(svg, caption))


def _heat_label(ratio: float | None, failed: bool) -> str:
    shown = "—" if ratio is None else f"{ratio:.2g}"
    return f"{shown} ✗" if failed else shown


def _latency_distributions(tests: Sequence[TestResult]) -> str:
    """One figure per case: a box per latency test from its raw samples."""
    timed = [test for test in tests if _samples(test)]
    if not timed:
        return _section("latency", "Latency", _note("no latency was measured in this run"))
    figures = []
    for case in dict.fromkeys(test.case for test in timed):
        figures.append(f"<figure>{_latency_plot(case, [test for test in timed if test.case == case])}</figure>")
    caption = _note(
        "Boxes: quartiles and median of each test's timed runs; whiskers: 1st–99th percentile. Red: the test failed."
    )
    return _section("latency", "Latency", caption + '<div class="figures">' + "\n".join(figures) + "</div>")


def _samples(test: TestResult) -> list[float]:
    """The test's finite latency samples (the schema checks that a file's are; a sparse record may have none)."""
    return [sample for sample in test.latency.samples_us if math.isfinite(sample)] if test.latency else []


def _latency_plot(case: str, tests: Sequence[TestResult]) -> str:
    labels = [_label(test.precision, test.shape, test.backend) for test in tests]
    left = _label_room(labels)

    def draw(figure: Figure) -> None:
        axes = _axes(figure, left, 0.4, top=0.25)
        axes.set_title(case, loc="left")
        boxes = axes.boxplot(
            [_samples(test) for test in tests],
            orientation="horizontal",
            whis=(1, 99),
            showfliers=False,
            patch_artist=True,
            widths=0.6,
            medianprops={"color": "black", "linewidth": 1},
        )
        for patch, test in zip(boxes["boxes"], tests):
            patch.set_facecolor("#ef9a9a" if test.failed else "#90caf9")
            patch.set_linewidth(0.6)
        axes.set_yticks(range(1, len(tests) + 1), labels)
        axes.invert_yaxis()  # the first test on top, as listed
        _plain_log_axis(axes)
        axes.set_xlabel("latency (µs)")
        _grid(axes)

    return _plot(f"latency-{case}", (left + 3.2, 0.65 + 0.18 * len(tests)), draw)


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


def _layer_precision(tests: Sequence[TestResult]) -> str:
    """The precision each layer ran in, once per case, precision and backend (shapes share it); a test that
    found problems is the one shown."""
    seen: dict[tuple[str, str, str], LayersResult] = {}
    for test in tests:
        key = (test.case, test.precision, test.backend)
        if test.layers is not None and (key not in seen or test.layers.problems):
            seen[key] = test.layers
    if not seen:
        return _section("layers", "Per-layer precision", _note("no accuracy test recorded its layers"))
    rows = [
        (
            _escaped(case),
            _escaped(precision),
            _escaped(backend),
            _escaped(layers.source),
            _escaped(layers.summary),
            "<br>".join(f'<span class="problem">{_escaped(problem)}</span>' for problem in layers.problems),
        )
        for (case, precision, backend), layers in seen.items()
    ]
    return _section(
        "layers",
        "Per-layer precision",
        _table(("case", "precision", "backend", "read from", "layers as run", "problems"), rows, "layers"),
    )


def _localizations(tests: Sequence[TestResult]) -> str:
    localized = [(test, test.localization) for test in tests if test.localization is not None]
    if not localized:
        return _section(
            "localization",
            "Localization",
            _note("no point was localized (failing fp16/bf16/int8 accuracy tests are, or every one with --localize)"),
        )
    parts = []
    for test, found in localized:
        rows = [
            (
                _escaped(layer.node),
                _escaped(layer.op_type),
                _escaped(layer.tensor),
                _escaped(_scientific(layer.mean_rel)),
                _bar(layer.mean_rel, found.tolerance),
            )
            for layer in found.layers
        ]
        beyond = [index for index, layer in enumerate(found.layers) if layer.exceeds]
        table = _table(("node", "op", "tensor", "mean rel. error", "÷ tolerance"), rows, "localization", beyond)
        parts.append(
            f"<h3>{_badge(test.verdict)} <code>{_escaped(test.id)}</code></h3>"
            f'<p>{_escaped(found.summary)} <span class="note">(ran on {_escaped(found.ran_on)})</span></p>{table}'
        )
    return _section("localization", "Localization", "\n".join(parts))


def _scientific(value: float | None) -> str:
    return "" if value is None else f"{value:.2e}"


def _bar(error: float | None, tolerance: float | None) -> str:
    """error ÷ tolerance as a number and a bar on a log scale from 0.001 to 10 (the tolerance at 3/4)."""
    if error is None or not tolerance:
        return ""
    ratio = error / tolerance
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
    rows = [
        (
            _escaped(test.case),
            _escaped(test.precision),
            _escaped(test.profile),
            _escaped(test.backend),
            _escaped(build_time(build)),
            _escaped(_plan_size(build)),
            f"<details><summary>{len(build.warnings)}</summary>{'<br>'.join(_escaped(w) for w in build.warnings)}</details>"
            if build.warnings
            else "0",
        )
        for test in builds
        if (build := test.build) is not None
    ]
    headers = ("case", "precision", "profile", "backend", "build time", "plan size", "builder warnings")
    return _section("builds", "Builds", _table(headers, rows, "builds") + conversions)


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
    "<nav>"
    + " ".join(
        f'<a href="#{anchor}">{title}</a>'
        for anchor, title in (
            ("verdicts", "Verdicts"),
            ("accuracy", "Accuracy"),
            ("latency", "Latency"),
            ("baselines", "Baselines"),
            ("layers", "Layers"),
            ("localization", "Localization"),
            ("builds", "Builds"),
            ("environment", "Environment"),
        )
    )
    + "</nav>"
)

_HEAD = (
    '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
    # Nothing may load from anywhere (matplotlib's raster parts are inline data: images): the report is read
    # offline, and the browser enforces it.
    "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n"
    '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
    f"<title>trt-harness report</title>\n<style>{_CSS}</style>\n</head>\n<body>"
)
