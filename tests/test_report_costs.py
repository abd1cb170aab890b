"""The HTML report's Costs view (harness/results/html.py's _costs): each cost the gate judged (a build test's build
time and plan size, a latency test's device memory) old against new with the ratio, the threshold and the verdict, a
regression's row marked; no section and no link where no test judged a cost. The page is parsed as HTML, not
searched as text: a row is marked only where its <tr> says so."""

from __future__ import annotations

import json
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import pytest

from harness.gate import CostPolicy, GatePolicy, cost_verdict, judge_build, judge_device_memory, judge_latency
from harness.results import document as results_document
from harness.results import html
from tests.test_cost_gate import BUILD_ONLY, GROWN_CONFTEST

BUILD = "test_build[conv_add_relu-fp32-build-ort]"
LATENCY = "test_latency[conv_add_relu-fp32-opt-trt]"
BASELINE = "baseline b.json"


class _Page(HTMLParser):
    """What the tests read of a report: its sections' ids, the nav's links, and the costs table's rows (each its
    <tr>'s class and its cells' text)."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.links: list[str] = []
        self.rows: list[tuple[str, list[str]]] = []
        self._section = ""
        self._in_body = False
        self._cell: list[str] | None = None
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "section":
            self._section = attributes.get("id") or ""
            self.sections.append(self._section)
        elif tag == "a" and (href := attributes.get("href")) is not None:
            self.links.append(href)
        elif self._section == "costs" and tag == "tbody":
            self._in_body = True
        elif self._in_body and tag == "tr":
            self.rows.append((attributes.get("class") or "", []))
        elif self._in_body and tag == "td":
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.rows[-1][1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tbody":
            self._in_body = False
        elif tag == "section":
            self._section = ""

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _document(*tests: dict[str, object]) -> results_document.ResultsDocument:
    contents = {"schema": results_document.SCHEMA, "schema_version": results_document.SCHEMA_VERSION}
    return results_document.from_json({**contents, "tests": list(tests)})


def _build_test(old: dict[str, object], new: dict[str, object]) -> dict[str, object]:
    gate = cost_verdict(judge_build(old, new, CostPolicy()), baseline=BASELINE)
    return {"id": BUILD, "verdict": "fail" if gate.verdict == "regression" else "pass", "gate": gate.to_json()}


def _latency_test(memory: tuple[float, float] | None) -> dict[str, object]:
    """A passing latency test; with `memory` (old, new bytes), its engine's device memory judged as on TensorRT."""
    samples = [100.0 + 0.1 * i for i in range(50)]
    gate = judge_latency(samples, samples, GatePolicy(0.1), baseline=BASELINE)
    if memory is not None:
        gate = replace(gate, costs=(judge_device_memory(*memory, CostPolicy()),))
    return {"id": LATENCY, "verdict": "pass", "latency": {"samples_us": samples}, "gate": gate.to_json()}


def test_a_cost_regression_is_listed_first_and_marked_with_old_new_ratio_threshold_and_verdict() -> None:
    cached = {"cached": True, "build_s": 8.0, "artifact_bytes": 5_400}
    grown = {"cached": False, "build_s": 12.0, "artifact_bytes": 13_600}
    page = _Page(html.render(_document(_latency_test((1_000_000, 1_050_000)), _build_test(cached, grown))))
    assert "costs" in page.sections and "#costs" in page.links
    (regression, inconclusive, passed) = page.rows
    assert regression == ("marked", [BUILD, "plan size", "5.4 kB", "13.6 kB", "2.52", "20%", "regression"])
    marked, cells = inconclusive  # cached: its time not judged, and it says why
    assert marked == "" and cells[:6] == [BUILD, "build time", "8.00 s", "12.00 s", "1.50", "50%"]
    assert cells[6].startswith("inconclusive the old run found the engine in the engine cache: no build was timed")
    assert passed == ("", [LATENCY, "device memory", "1.0 MB", "1.1 MB", "1.05", "20%", "pass"])


def test_a_run_without_judged_costs_has_no_costs_section_nor_link() -> None:
    page = _Page(html.render(_document(_latency_test(None))))  # ONNX Runtime: no device memory
    assert "baselines" in page.sections and "costs" not in page.sections
    assert "#baselines" in page.links and "#costs" not in page.links and page.rows == []


def test_the_costs_listed_are_bounded_with_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(html, "_LISTED_COSTS", 1)
    old, new = {"build_s": 10.0, "artifact_bytes": 5_400}, {"build_s": 30.0, "artifact_bytes": 5_400}
    rendered = html.render(_document(_build_test(old, new)))
    (only,) = _Page(rendered).rows
    assert only[1][1:3] == ["build time", "10.00 s"] and only[0] == "marked"  # the regression, not the passed size
    assert "The first 1 of 2 judged costs; the others are in the results file." in rendered


def test_the_report_of_a_file_shows_the_costs_the_session_judged(tmp_path: Path) -> None:
    """`python -m harness report` reads the file with html.load (a record at a time): the costs come through."""
    record = _build_test({"build_s": 1.4, "artifact_bytes": 5_400}, {"build_s": 1.5, "artifact_bytes": 13_600})
    contents = {"schema": results_document.SCHEMA, "schema_version": results_document.SCHEMA_VERSION}
    path = tmp_path / "r.json"
    path.write_text(json.dumps({**contents, "tests": [record]}))
    from_file = html.render(html.load(path))
    assert from_file == html.render(_document(record))  # as the session renders its document from memory
    regression = ("marked", [BUILD, "plan size", "5.4 kB", "13.6 kB", "2.52", "20%", "regression"])
    assert _Page(from_file).rows[0] == regression


def test_a_session_whose_plan_grew_shows_the_regression_in_its_report(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """End to end on ONNX Runtime: a real build against its baseline, the session's own report."""
    pytester.makeconftest(GROWN_CONFTEST)
    pytester.makepyfile(test_matrix="from harness.suite import test_build\n")
    monkeypatch.delenv("HARNESS_TEST_GROWN", raising=False)
    pytester.runpytest(*BUILD_ONLY, "--update-baselines", "--results", "old.json").assert_outcomes(passed=1)
    assert "costs" not in _Page((pytester.path / "old.html").read_text()).sections  # recorded: nothing judged
    monkeypatch.setenv("HARNESS_TEST_GROWN", "1")
    pytester.runpytest(*BUILD_ONLY, "--results", "new.json").assert_outcomes(failed=1)
    rows = {cells[1]: (marked, cells) for marked, cells in _Page((pytester.path / "new.html").read_text()).rows}
    marked, cells = rows["plan size"]
    assert marked == "marked" and cells[0] == BUILD and cells[6] == "regression" and float(cells[4]) > 1.2
    assert rows["build time"][0] == ""  # found in the engine cache or under 1 s: not a regression
