"""The session's one results document and the pytest_harness_report hook: a plugin makes a report format of its
own from the document that the results file, the HTML report and the summary are made from, without touching the
harness; a plugin that fails costs nothing written before it. Throw-away sessions on the synthetic clock
(tests/gate_support.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).parents[1]

FAST = ("--latency-budget", "0.05", "-p", "no:cacheprovider", "--precision", "fp32", "--benchmark-disable")

CONFTEST = """
import json
from cases.identity import CASE as IDENTITY
from tests.gate_support import SYNTHETIC_ORT

def pytest_harness_cases(config):
    return [IDENTITY]

def pytest_harness_backends(config):
    return SYNTHETIC_ORT
"""

# A report format of a plugin's own: one line per call, the document's tests as it typed them.
WRITES_A_REPORT = """
def pytest_harness_report(config, document):
    line = {
        "source": document.source,
        "problem": document.problem,
        "tests": {test.id: [test.verdict, test.latency.median_us if test.latency else None] for test in document.tests},
    }
    with open("mine.jsonl", "a") as handle:
        handle.write(json.dumps(line) + "\\n")
"""


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    pytester.makepyfile(test_matrix="from harness.suite import test_accuracy, test_latency\n")
    monkeypatch.setenv("HARNESS_TEST_ORT_VERSION", "1.0.0")
    monkeypatch.delenv("HARNESS_TEST_SLOWDOWN", raising=False)
    # the xdist case runs in a subprocess, which finds the repository's cases and tests packages by this path
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    return pytester


def reports(project: pytest.Pytester) -> list[dict[str, object]]:
    return [json.loads(line) for line in (project.path / "mine.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("workers", [(), ("-n", "2")], ids=["serial", "xdist"])
def test_a_plugins_report_reads_the_document_the_results_file_was_written_from(
    project: pytest.Pytester, workers: tuple[str, ...]
) -> None:
    project.makeconftest(CONFTEST + WRITES_A_REPORT)
    result = project.runpytest_subprocess(*FAST, *workers, "--results", "r.json")
    result.assert_outcomes(passed=6)
    (report,) = reports(project)  # once a session, on the xdist controller only
    written = json.loads((project.path / "r.json").read_text())
    expected = {
        test["id"]: [test["verdict"], test["latency"]["median_us"] if test["latency"] else None]
        for test in written["tests"]
    }
    assert report == {"source": str(project.path / "r.json"), "problem": None, "tests": expected}
    assert len(expected) == 6 and any(latency for _, latency in expected.values())


def test_a_failing_report_plugin_fails_the_session_and_loses_nothing(project: pytest.Pytester) -> None:
    project.makeconftest(CONFTEST + "\ndef pytest_harness_report(config, document):\n    raise RuntimeError('boom')\n")
    result = project.runpytest(*FAST, "--results", "r.json", "--harness-html", "r.html")
    result.assert_outcomes(passed=6)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "results: *r.json",
            "html report: *r.html",
            (
                "trt-harness: a pytest_harness_report implementation failed (*conftest.py:*): RuntimeError: boom; "
                "the results file and the other reports are written; fix that plugin"
            ),
        ]
    )
    assert len(json.loads((project.path / "r.json").read_text())["tests"]) == 6
    assert (project.path / "r.html").stat().st_size > 0


def test_records_a_reader_would_refuse_are_written_and_said(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backend whose clock gives 0 µs: the session keeps what it measured (the results file, the plugin's report)
    and fails saying which test recorded what `compare` would refuse; the HTML report, which would read it, is not
    made."""
    project.makeconftest(CONFTEST + WRITES_A_REPORT)
    monkeypatch.setenv("HARNESS_TEST_SLOWDOWN", "0")
    result = project.runpytest(*FAST, "--results", "r.json", "--harness-html", "r.html")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            (
                "trt-harness: test 'test_latency[[]identity-fp32-*-ort[]]' recorded what a reader of the results file "
                'refuses ("latency.samples_us[[]0[]]" is 0.0; latency samples must be finite numbers > 0); `compare` and '
                "`report` will refuse the file*"
            ),
            "trt-harness: could not write the HTML report *r.html: test 'test_latency*",
        ]
    )
    assert len(json.loads((project.path / "r.json").read_text())["tests"]) == 6
    assert not (project.path / "r.html").exists()
    (report,) = reports(project)
    assert str(report["problem"]).startswith("test 'test_latency[identity-fp32-")
