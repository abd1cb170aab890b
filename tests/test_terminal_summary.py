"""The trt-harness section of pytest's terminal output (harness/results/terminal.py), in throw-away sessions:
latency and accuracy verdicts in their own columns, one line per failure, last in the output; and
pytest-benchmark's own table off unless asked for, its JSON and histogram still there."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

from harness.results import document as results_document
from harness.results import html
from harness.results.document import TestResult
from harness.results.terminal import opset_lines, summary_lines

FAST = ("--latency-budget", "0.02", "-p", "no:cacheprovider", "-p", "no:randomly", "--precision", "fp32")


def make_project(pytester: pytest.Pytester) -> None:
    """identity passes; 'shifted' is identity judged against a reference off by one: its accuracy fails."""
    pytester.makeconftest(
        "import dataclasses\n"
        "from cases.identity import CASE as IDENTITY, reference\n"
        "def shifted(inputs):\n"
        "    return {name: value + 1.0 for name, value in reference(inputs).items()}\n"
        "CASES = [IDENTITY, dataclasses.replace(IDENTITY, name='shifted', reference=shifted)]\n"
        "def pytest_harness_cases(config):\n"
        "    return CASES\n"
    )
    pytester.makepyfile(test_matrix="from harness.suite import test_accuracy, test_latency\n")


def row(lines: list[str], point: str) -> list[str]:
    """The summary row of a point ("shifted fp32 opt ort"), split into its cells."""
    (found,) = [line.split() for line in lines if line.split()[:4] == point.split()]
    return found


def test_failing_accuracy_shows_both_verdicts_and_a_failure_line_last(pytester: pytest.Pytester) -> None:
    make_project(pytester)
    result = pytester.runpytest(*FAST, "--results", "r.json", "-k", "opt")
    result.assert_outcomes(passed=3, failed=1)  # shifted's latency still passes: only its accuracy failed
    lines = result.outlines
    start = max(index for index, line in enumerate(lines) if "trt-harness" in line and line.startswith("="))
    short_summary = max(index for index, line in enumerate(lines) if "short test summary info" in line)
    assert short_summary < start, "the harness section comes after pytest's short test summary"
    section = lines[start:]
    assert (
        "latency" in section[1]
        and "accuracy" in section[1]
        and section[1].index("latency") < section[1].index("accuracy")
    )
    shifted, identity = row(section, "shifted fp32 opt ort"), row(section, "identity fp32 opt ort")
    assert shifted[-1] == "fail" and "pass" in shifted[:-1]  # accuracy failed, latency passed: each said
    assert identity[-1] == "pass" and identity.count("pass") == 2
    failure = next(index for index, line in enumerate(section) if line.startswith("FAIL "))
    assert section.index(next(line for line in section if line.startswith("shifted"))) < failure
    assert section[failure].startswith("FAIL test_accuracy[shifted-fp32-opt-ort]: ")
    because = section[failure].removeprefix("FAIL test_accuracy[shifted-fp32-opt-ort]: ")
    assert "against the numpy reference: output 'y': mean relative error " in because and "> tolerance" in because
    assert sum(line.startswith(("FAIL ", "ERROR ")) for line in section) == 1
    assert any(line.startswith("results: ") and line.endswith("r.json") for line in section)
    assert all(len(line) <= 120 for line in section[:failure]), max(section[:failure], key=len)  # the tables
    assert lines[-1].startswith("=") and "1 failed" in lines[-1]  # only pytest's count line after it


@pytest.mark.usefixtures("benchmark_measures")
def test_benchmark_table_is_off_by_default_and_json_still_written(pytester: pytest.Pytester) -> None:
    make_project(pytester)
    quiet = pytester.runpytest(*FAST, "-k", "identity and opt and latency", "--benchmark-json", "bench.json")
    quiet.assert_outcomes(passed=1)
    assert "benchmark: 1 tests" not in quiet.stdout.str()
    assert [b["name"] for b in json.loads((pytester.path / "bench.json").read_text())["benchmarks"]] == [
        "test_latency[identity-fp32-opt-ort]"
    ]
    shown = pytester.runpytest(*FAST, "-k", "identity and opt and latency", "--harness-benchmark-table")
    shown.assert_outcomes(passed=1)
    shown.stdout.fnmatch_lines(["*benchmark: 1 tests*", "*test_latency[[]identity-fp32-opt-ort[]]*"])


@pytest.mark.skipif(
    importlib.util.find_spec("pygal") is None, reason="needs the histogram extra: pip install -e '.[histogram]'"
)
@pytest.mark.usefixtures("benchmark_measures")
def test_benchmark_histogram_works_as_documented(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    make_project(pytester)
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")])
    )
    # In a process of its own: pygal's import of pkg_resources changes what later in-process sessions see of
    # the installed plugins' entry points (the harness's options went missing in the next session).
    result = pytester.runpytest_subprocess(*FAST, "-k", "identity and opt and latency", "--benchmark-histogram", "hist")
    result.assert_outcomes(passed=1)
    svg = (pytester.path / "hist.svg").read_text()
    assert svg.startswith("<?xml") and "<svg" in svg and "identity-fp32-opt-ort" in svg


def record(test_id: str, verdict: str, **fields: object) -> TestResult:
    point = test_id.split("[", 1)[1].rstrip("]")
    case, precision, shape, backend = point.split("-", 3)
    return TestResult.from_json(
        {"id": test_id, "point": point, "case": case, "precision": precision, "shape": shape, "backend": backend}
        | {"verdict": verdict, **fields}
    )


def test_builds_get_their_own_table_and_an_error_names_its_exception_class() -> None:
    built = {"cached": False, "build_s": 1.25, "artifact_bytes": 2_500_000, "warnings": ["w1", "w2"]}
    message = "harness.errors.BuildError: case 'broken': tensorrt failed to build\nthe builder's log: ..."
    lines = summary_lines(
        [
            record("test_build[identity-fp16-build-trt]", "pass", build=built),
            record("test_build[broken-fp16-build-trt]", "error", build=None, message=message),
        ]
    )
    header, identity, broken = lines[0].split(), lines[1].split(), lines[2].split()
    assert header == ["case", "precision", "shape", "backend", "build", "artifact", "verdict"]
    assert identity == ["identity", "fp16", "build", "trt", "1.25", "s", "2.5", "MB,", "2", "warnings", "pass"]
    assert broken[-1] == "error"
    assert lines[-1] == "ERROR test_build[broken-fp16-build-trt]: BuildError: case 'broken': tensorrt failed to build"


def test_opset_lines_say_for_which_precisions_and_the_html_report_shows_them() -> None:
    """int8's own upgrade (to opset 13, for per-channel Q/DQ) is told apart from the one fp32 and fp16 ran."""
    to7, to13 = {"opset": "converted from opset 6 to 7"}, {"opset": "converted from opset 6 to 13"}
    tests = [
        record("test_build[test_Linear-fp32-build-ort]", "pass", derivation=to7),
        record("test_accuracy[test_Linear-fp32-opt-ort]", "pass", derivation=to7),
        record("test_accuracy[test_Linear-fp16-opt-ort]", "pass", derivation=to7),
        record("test_accuracy[test_Linear-int8-opt-ort]", "pass", derivation=to13),
        record(
            "test_accuracy[other-fp32-opt-ort]", "pass", derivation={"reference_opset": "converted from opset 6 to 7"}
        ),
    ]
    expected = [
        (
            "opset: test_Linear converted from opset 6 to 7 (fp32, fp16 on ort), from 6 to 13 (int8 on ort: "
            "per-channel Q/DQ)"
        ),
        "opset: other converted from opset 6 to 7 for its ONNX Runtime reference (on ort)",
    ]
    assert opset_lines(tests) == expected
    assert summary_lines(tests)[-2:] == expected
    raw = [dict(test.raw) for test in tests]
    page = html.render(
        results_document.from_json(
            {"schema": results_document.SCHEMA, "schema_version": results_document.SCHEMA_VERSION, "tests": raw}
        )
    )
    builds = page[page.index('<section id="builds">') :]
    assert "(fp32, fp16 on ort), from 6 to 13 (int8 on ort: per-channel Q/DQ)" in builds[: builds.index("</section>")]
