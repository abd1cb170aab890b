"""The HTML report (harness/results/html.py): written by real sessions, self-contained, reproducible, and
rendered by a real headless Chromium (skipped where there is none, unless HARNESS_REQUIRE_BROWSER=1).

HARNESS_REPORT_SCREENSHOT=PATH makes the browser test save a screenshot of the report there, from its top to the
end of its figures (docs/report.png).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.results import document as results_document
from harness.results import html
from tests.test_plugin import FAST, make_project, results_of

CHROMIUM = Path("/usr/bin/chromium")
# Chromium as a quiet, offline tool: no sandbox (CI runs as root), no GPU, no background traffic.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
# identity and mnist at fp32, tf32 (skipped on ONNX Runtime) and fp16, mnist's fp16 tolerance made too tight: its accuracy tests fail (and are
# localized), everything else passes.
FAILING_MNIST = (
    "from cases.mnist import CASE as MNIST\n"
    "TIGHT = dataclasses.replace(MNIST, tolerances={**MNIST.tolerances, "
    "(Precision.FP16, 'probabilities'): Tolerance(mean_rel=1e-6, justification='made to fail')})\n"
    "CASES = [IDENTITY, TIGHT]"
)


def run_failing_session(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    make_project(pytester, FAILING_MNIST)
    return pytester.runpytest(*FAST, "--precision", "fp32,tf32,fp16", "--results", "r.json", *args)


def test_a_session_writes_its_report_beside_the_results_and_names_it(pytester: pytest.Pytester) -> None:
    result = run_failing_session(pytester)
    result.assert_outcomes(passed=21, failed=3, skipped=12)
    report = pytester.path / "r.html"
    # named in the harness's summary, next to the results file's line
    named = result.outlines.index(f"html report: {report}")
    assert result.outlines[named - 1] == f"results: {pytester.path / 'r.json'}"
    page = report.read_text()
    failing = [test["id"] for test in results_of(pytester, "r.json")["tests"] if test["verdict"] == "fail"]  # type: ignore[attr-defined]
    assert sorted(failing) == [f"test_accuracy[mnist-fp16-{shape}-ort]" for shape in ("max", "min", "opt")]
    rows = re.findall(r"<tr><td><span class=\"badge (\w+)\">.*?<code>(.*?)</code>", _section(page, "verdicts"))
    assert [verdict for verdict, _ in rows[:3]] == ["fail"] * 3 and {test_id for _, test_id in rows[:3]} == set(failing)
    assert all(verdict == "pass" for verdict, _ in rows[3:])
    assert "12 skipped</summary>" in page
    assert page.count("<svg") == 3  # the heat map, the latency of identity and of mnist (no baselines: no ratios)
    localization = _section(page, "localization")
    assert "first layer beyond 1e-06: conv1 (Conv)" in localization
    assert '<tr class="marked"><td>conv1</td><td>Conv</td>' in localization  # every layer, the failing marked
    assert "conv1 Half" in _section(page, "layers")


def test_the_report_path_and_off_from_the_command_line_and_the_ini_file(pytester: pytest.Pytester) -> None:
    make_project(pytester, "CASES = [IDENTITY]")
    pytester.makeini("[pytest]\nharness_html = reports/run.html\n")
    pytester.runpytest(*FAST, "--precision", "fp32", "--results", "r.json").assert_outcomes(passed=6)
    assert (pytester.path / "reports" / "run.html").is_file() and not (pytester.path / "r.html").exists()
    pytester.runpytest(*FAST, "--precision", "fp32", "--results", "s.json", "--harness-html=off")
    assert (pytester.path / "s.json").is_file() and not list(pytester.path.glob("s.*html"))


def test_an_unwritable_report_path_is_refused_at_start_up_with_the_fix(pytester: pytest.Pytester) -> None:
    make_project(pytester, "CASES = [IDENTITY]")
    pytester.makefile(".txt", blocker="a file where a directory should be")
    result = pytester.runpytest(
        *FAST, "--precision", "fp32", "--results", "r.json", "--harness-html", "blocker.txt/report.html"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # before any test ran: nothing to lose
    why = "cannot write *blocker.txt/report.html: *blocker.txt, above *, is not a directory"
    result.stderr.fnmatch_lines([f"*--harness-html / harness_html: {why}; pass --harness-html a writable file path*"])


def test_a_report_that_fails_to_write_keeps_the_results_file_and_fails_with_the_fix(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(path: Path, document: results_document.ResultsDocument) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(html, "write", full_disk)  # the in-process session's writer: the disk fills after the run
    make_project(pytester, "CASES = [IDENTITY]")
    result = pytester.runpytest(*FAST, "--precision", "fp32", "--results", "r.json", "--harness-html", "report.html")
    result.assert_outcomes(passed=6)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    fix = "pass --harness-html a writable path, or --harness-html=off"
    result.stdout.fnmatch_lines([f"*trt-harness: could not write the HTML report *report.html: *No space left*{fix}*"])
    assert len(results_of(pytester, "r.json")["tests"]) == 6  # type: ignore[arg-type]


def test_the_report_is_reproducible_and_loads_nothing(pytester: pytest.Pytester) -> None:
    make_project(pytester, "CASES = [IDENTITY]")
    pytester.runpytest(*FAST, "--precision", "fp32,fp16", "--results", "r.json").assert_outcomes(passed=12)
    # The session renders its document from memory; from the file it wrote, the same page comes out.
    page = html.render(results_document.load(pytester.path / "r.json"))
    assert page == (pytester.path / "r.html").read_text()
    assert "<script" not in page and "@import" not in page and "@font-face" not in page
    # Every URL in the page is an SVG namespace, an in-page anchor or inline data: nothing to fetch.
    urls = re.findall(r"""(?:href|src|url)\s*[=(]\s*["']?([^"') >]+)""", page)
    assert urls and all(url.startswith(("#", "data:")) for url in urls), urls
    assert "default-src 'none'" in page  # and the browser is told to refuse anything else


def test_a_sparse_document_renders_what_it_has() -> None:
    """A report renders whatever a valid results document holds: missing fields, non-finite numbers as
    strict JSON spells them."""
    document = results_document.from_json(
        {
            "schema": results_document.SCHEMA,
            "schema_version": results_document.SCHEMA_VERSION,
            "tests": [
                {"id": "test_accuracy[a-fp16-opt-ort]", "case": "a", "precision": "fp16", "verdict": "error"},
                {"id": "test_latency[a-fp16-opt-ort]", "verdict": "pass", "latency": {"samples_us": [1.0]}},
                {
                    "id": "test_accuracy[a-fp32-opt-ort]",
                    "verdict": "pass",
                    "accuracy": [{"output": "y", "mean_rel": "inf", "tolerance": {"mean_rel": 1}}],
                },
            ],
        }
    )
    page = html.render(document)
    assert page.index("test_accuracy[a-fp16-opt-ort]") < page.index("test_latency[a-fp16-opt-ort]")
    assert "Inf in the output" in page and "inf×" not in page  # a non-finite error is named, never a number


def test_a_localization_held_in_memory_renders_as_from_its_file() -> None:
    """The session's own document holds tuples (dataclasses.asdict keeps them) where the file has lists."""
    localized = {
        "id": "test_accuracy[a-fp16-opt-ort]",
        "verdict": "fail",
        "localization": {
            "layers": ({"node": "conv1", "op_type": "Conv", "tensor": "t", "mean_rel": 0.5, "exceeds": True},),
            "tolerance": 0.01,
            "summary": "first layer beyond 0.01: conv1 (Conv)",
            "ran_on": "onnxruntime, unoptimized",
        },
    }
    contents = {
        "schema": results_document.SCHEMA,
        "schema_version": results_document.SCHEMA_VERSION,
        "tests": [localized],
    }
    page = html.render(results_document.from_session(contents, "this session"))
    assert '<tr class="marked"><td>conv1</td><td>Conv</td><td>t</td><td>5.00e-01</td>' in page
    assert page == html.render(results_document.from_json(json.loads(json.dumps(contents))))


def test_importing_the_renderer_does_not_import_matplotlib() -> None:
    code = "import sys, harness.results.html; print('matplotlib' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


def test_the_report_in_a_real_browser(pytester: pytest.Pytester) -> None:
    """Chromium renders the plots (SVG of non-zero size), logs no error (none of the page's Content-Security-
    Policy either: nothing is fetched), and the first verdict row is a failing test."""
    sync_playwright = _browser_driver()
    # A baseline, then the run compared with it; a latency test may regress too on a busy machine (the gate's
    # own business): the mnist fp16 accuracy tests fail in any case.
    budget = ("--latency-budget", "0.2", "--baselines", "baselines")
    run_failing_session(pytester, *budget, "--update-baselines")
    run_failing_session(pytester, *budget).stdout.fnmatch_lines(["*FAILED*test_accuracy[[]mnist-fp16-opt-ort[]]*"])
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS))
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            problems: list[str] = []
            page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.goto((pytester.path / "r.html").as_uri())
            # the figures of every run; a layer-diff figure only where a noisy run's latency regressed
            sizes = page.eval_on_selector_all(
                "section:not(#layer-diff) figure svg",
                "svgs => svgs.map(s => [s.getBoundingClientRect().width, s.getBoundingClientRect().height])",
            )
            drawn = page.eval_on_selector_all(
                "section:not(#layer-diff) figure svg",
                "svgs => svgs.map(s => s.querySelectorAll('path, image, text').length)",
            )
            first = page.inner_text("table.verdicts tbody tr:first-child")
            screenshot = os.environ.get("HARNESS_REPORT_SCREENSHOT")
            if screenshot:  # from the top to the end of the figures: verdicts, accuracy, latency, baselines
                bottom = page.eval_on_selector("#layers", "section => section.getBoundingClientRect().top")
                page.screenshot(path=screenshot, full_page=True, clip={"x": 0, "y": 0, "width": 1280, "height": bottom})
        finally:
            browser.close()
    assert problems == []
    # the heat map, the latency of identity and of mnist, the ratios to the baselines
    assert len(sizes) == 4 and all(width > 100 and height > 50 for width, height in sizes), sizes
    assert all(count > 10 for count in drawn), drawn
    assert first.startswith("fail") and re.search(r"test_accuracy\[mnist-fp16-\w+-ort\]", first), first


def _browser_driver():  # type: ignore[no-untyped-def]  # playwright's sync_playwright, typed by playwright
    """Playwright and Debian's Chromium, or a skip saying which is missing (a failure with HARNESS_REQUIRE_BROWSER=1)."""
    required = os.environ.get("HARNESS_REQUIRE_BROWSER") == "1"
    missing = []
    if not CHROMIUM.is_file():
        missing.append(f"Chromium ({CHROMIUM}; apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing.append("Playwright (pip install -e '.[test]')")
    if missing:
        why = f"the browser test needs {' and '.join(missing)}"
        if required:
            pytest.fail(f"{why}; HARNESS_REQUIRE_BROWSER=1 makes it required")
        pytest.skip(why)
    return sync_playwright


def _section(page: str, anchor: str) -> str:
    start = page.index(f'<section id="{anchor}">')
    return page[start : page.index("</section>", start)]
