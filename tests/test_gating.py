"""Baselines and per-test regression verdicts, end to end in throw-away sessions with a synthetic clock
(tests/gate_support.py): the test that regressed is the one that fails, visible in JUnit XML."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

FAST = ("--latency-budget", "0.05", "-p", "no:cacheprovider", "--precision", "fp32", "--benchmark-disable")


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    pytester.makeconftest(
        "import dataclasses\n"
        "from cases.identity import CASE as IDENTITY\n"
        "from tests.gate_support import SYNTHETIC_ORT\n"
        "CASES = [IDENTITY]\n"
        "def pytest_harness_cases(config):\n"
        "    return CASES\n"
        "def pytest_harness_backends(config):\n"
        "    return SYNTHETIC_ORT\n"
    )
    pytester.makepyfile(test_matrix="from harness.suite import test_accuracy, test_latency\n")
    monkeypatch.setenv("HARNESS_TEST_ORT_VERSION", "1.0.0")
    monkeypatch.delenv("HARNESS_TEST_SLOWDOWN", raising=False)
    return pytester


def baseline_files(project: pytest.Pytester) -> list[Path]:
    return sorted((project.path / "baselines").glob("*/*.json"))


def record_baselines(project: pytest.Pytester) -> Path:
    project.runpytest(*FAST, "--update-baselines").assert_outcomes(passed=6)
    (path,) = baseline_files(project)
    return path


def test_unchanged_run_passes_against_its_baseline(project: pytest.Pytester) -> None:
    path = record_baselines(project)
    assert path.name == "ort-1.0.0.json"
    entries = json.loads(path.read_text())["entries"]
    assert set(entries) == {
        f"test_{kind}[identity-fp32-{p}-ort]" for kind in ("accuracy", "latency") for p in ("min", "opt", "max")
    }
    result = project.runpytest(*FAST, "--results", "r.json")
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(["*vs baseline*", "identity*fp32*min*ort*×*pass*", f"baselines: ort: baseline {path}"])


def test_the_test_that_regressed_fails_alone_in_junit(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    record_baselines(project)
    monkeypatch.setenv("HARNESS_TEST_SLOWDOWN", "1.3")
    result = project.runpytest(*FAST, "--junitxml", "junit.xml", "--results", "r.json")
    result.assert_outcomes(passed=3, failed=3)  # accuracy passes; every latency test regressed
    result.stdout.fnmatch_lines(
        [
            "*test_latency[[]identity-fp32-opt-ort[]]: regression against baseline*slower: median 1.*× the baseline*(still after re-measuring once)*"
        ]
    )
    failed = {
        case.get("name")
        for case in ET.parse(project.path / "junit.xml").iter("testcase")
        if case.find("failure") is not None
    }
    assert failed == {f"test_latency[identity-fp32-{p}-ort]" for p in ("min", "opt", "max")}
    gate = {t["id"]: t["gate"] for t in json.loads((project.path / "r.json").read_text())["tests"]}
    assert gate["test_latency[identity-fp32-max-ort]"]["remeasured"] is True


# Stalled runs: the budget is spent with ~10 samples; --latency-ci this tight never stops on the CI, and a cap
# equal to the budget keeps the budget from extending to the 30 samples the gate needs.
STARVED = ("--latency-budget", "0.2", "--latency-budget-max", "0.2", "--latency-ci", "1e-6", "-k", "latency and opt")


def latency_record(project: pytest.Pytester, results: str = "r.json") -> dict[str, object]:
    tests = json.loads((project.path / results).read_text())["tests"]
    (record,) = [t for t in tests if t["id"] == "test_latency[identity-fp32-opt-ort]"]
    return record  # type: ignore[no-any-return]


@pytest.mark.parametrize(("slowdown", "verdict"), [("1.0", "pass"), ("2.05", "regression")])
def test_a_latency_test_starved_at_the_start_is_re_measured_and_gated(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, slowdown: str, verdict: str
) -> None:
    """The reported starvation: the first latency test of a loaded session got 11 samples before its budget ran
    out, and a 2.05x slowdown passed the gate. Stalled for its first measurement only, the test is re-measured
    and gated on the second measurement's full sample."""
    record_baselines(project)
    monkeypatch.setenv("HARNESS_TEST_STALL_S", "0.35")
    monkeypatch.setenv("HARNESS_TEST_SLOWDOWN", slowdown)
    result = project.runpytest(*FAST, *STARVED, "--results", "r.json")
    if verdict == "pass":
        result.assert_outcomes(passed=1)
    else:
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(["*test_latency[[]identity-fp32-opt-ort[]]: regression against baseline*slower*"])
    record = latency_record(project)
    assert record["gate"]["verdict"] == verdict  # type: ignore[index]
    assert record["gate"]["remeasured"] is True  # type: ignore[index]
    assert record["latency"]["count"] >= 30  # type: ignore[index]


def test_a_latency_test_starved_twice_is_inconclusive_and_fails(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    record_baselines(project)
    monkeypatch.setenv("HARNESS_TEST_STALL_S", "1000")
    result = project.runpytest(*FAST, *STARVED, "--results", "r.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            (
                "*test_latency[[]identity-fp32-opt-ort[]]: latency inconclusive: 1? samples in 0.2 s (measured twice); "
                "30 samples need ~0.6 s, more than --latency-budget-max (0.2 s) lets the budget extend to: raise "
                "--latency-budget to 1 (ini harness_latency_budget)"
            )
        ]
    )
    gate = latency_record(project)["gate"]
    assert gate["verdict"] == "inconclusive" and gate["remeasured"] is True  # type: ignore[index]
    assert 10 <= gate["samples"] < 30  # type: ignore[index]
    # nor does a starved measurement become a baseline
    (path,) = baseline_files(project)
    before = json.loads(path.read_text())["entries"]
    project.runpytest(*FAST, *STARVED, "--update-baselines").assert_outcomes(failed=1)
    assert json.loads(path.read_text())["entries"] == before


def test_improvement_is_reported_and_fails_only_on_request(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    record_baselines(project)
    monkeypatch.setenv("HARNESS_TEST_SLOWDOWN", "0.7")
    project.runpytest(*FAST).assert_outcomes(passed=6)
    result = project.runpytest(*FAST, "--fail-on-improvement")
    result.assert_outcomes(passed=3, failed=3)
    result.stdout.fnmatch_lines(
        ["*faster: median 0.*× the baseline*the baseline is stale: refresh it with --update-baselines*"]
    )


def test_a_case_may_widen_its_threshold(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    record_baselines(project)
    monkeypatch.setenv("HARNESS_TEST_SLOWDOWN", "1.3")
    project.runpytest(*FAST, "--latency-threshold", "0.5").assert_outcomes(passed=6)


def test_missing_baseline_is_new_and_fails_only_when_required(project: pytest.Pytester) -> None:
    result = project.runpytest(*FAST, "--results", "r.json")
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(["baselines: ort: no baseline for ort on *"])
    verdicts = {t["gate"]["verdict"] for t in json.loads((project.path / "r.json").read_text())["tests"]}
    assert verdicts == {"new"}
    required = project.runpytest(*FAST, "--require-baselines")
    required.assert_outcomes(failed=6)
    required.stdout.fnmatch_lines(["*no baseline (no baseline for ort on *); record one with --update-baselines*"])


def test_another_backend_version_is_said_plainly_and_compared_only_on_request(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    record_baselines(project)
    monkeypatch.setenv("HARNESS_TEST_ORT_VERSION", "2.0.0")
    monkeypatch.setenv("HARNESS_TEST_SLOWDOWN", "1.3")
    plain = project.runpytest(*FAST)
    plain.assert_outcomes(passed=6)  # nothing to compare with: reported, not failed
    plain.stdout.fnmatch_lines(
        [
            "*no baseline for ort 2.0.0 on *; there are ort-1.0.0.json: to gate this upgrade*--baseline-from ort-<version>*"
        ]
    )
    gated = project.runpytest(*FAST, "--baseline-from", "ort-1.0")
    gated.assert_outcomes(passed=3, failed=3)
    gated.stdout.fnmatch_lines(["*comparing ort 2.0.0 with the baseline *ort-1.0.0.json (--baseline-from)*"])


def test_update_writes_only_what_ran_and_keeps_the_rest(project: pytest.Pytester) -> None:
    path = record_baselines(project)
    document = json.loads(path.read_text())
    document["entries"]["test_latency[removed_case-fp32-opt-ort]"] = {"case": "removed_case", "latency": None}
    path.write_text(json.dumps(document))
    result = project.runpytest(*FAST, "-k", "opt", "--update-baselines")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["*1 entries for cases not registered in this session, kept: test_latency[[]removed_case-fp32-opt-ort[]]*"]
    )
    entries = json.loads(path.read_text())["entries"]
    assert len(entries) == 7 and "test_latency[removed_case-fp32-opt-ort]" in entries


def test_accuracy_worse_than_the_baseline_by_the_factor_fails(project: pytest.Pytester) -> None:
    """Identity has error only at fp16 (the rounding of its input); a baseline that claims ten times
    less makes the same run an accuracy regression."""
    fp16 = (*FAST[:4], "--precision", "fp16", "--benchmark-disable")
    project.runpytest(*fp16, "--update-baselines").assert_outcomes(passed=6)
    (path,) = baseline_files(project)
    document = json.loads(path.read_text())
    entry = document["entries"]["test_accuracy[identity-fp16-max-ort]"]
    entry["accuracy"][0]["mean_rel"] = entry["accuracy"][0]["mean_rel"] / 10
    path.write_text(json.dumps(document))
    result = project.runpytest(*fp16)
    result.assert_outcomes(passed=5, failed=1)
    result.stdout.fnmatch_lines(
        ["*test_accuracy[[]identity-fp16-max-ort[]]: regression*output 'y': mean relative error*> 2× the baseline's*"]
    )


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda text: text[: len(text) // 2],
            "*is not valid JSON*truncated or corrupted?*restore it from version control*",
        ),
        (
            lambda text: text.replace('"schema_version": 1', '"schema_version": 99'),
            "*has schema_version 99, this harness reads 1*",
        ),
        (
            lambda text: text.replace('"entries": {', '"entries": {"test_latency[identity-fp32-opt-ort]": {}, ', 1),
            "*holds test id 'test_latency[[]identity-fp32-opt-ort[]]' twice*",
        ),
        (
            lambda text: text.replace('"samples_us": [', '"samples_us": [NaN, ', 1),
            "*: test 'test_latency[[]identity-fp32-*-ort[]]': *samples_us[[]0[]]* is NaN; *--update-baselines",
        ),
    ],
    ids=["truncated", "unknown-schema", "duplicated-id", "nan-sample"],
)
def test_bad_baseline_file_errors_clearly_and_is_never_overwritten(
    project: pytest.Pytester, damage: object, message: str
) -> None:
    path = record_baselines(project)
    broken = damage(path.read_text())  # type: ignore[operator]
    path.write_text(broken)
    result = project.runpytest(*FAST, "--update-baselines", "--results", "results.json")
    result.assert_outcomes(errors=6)
    result.stdout.fnmatch_lines([f"*BaselineError: baseline*{message}", "results: *results.json", "*NOT updated*"])
    assert path.read_text() == broken  # nothing lost
    assert len(json.loads((project.path / "results.json").read_text())["tests"]) == 6  # the session's results too


def test_a_binary_baseline_file_errors_clearly_and_the_session_ends_normally(project: pytest.Pytester) -> None:
    """It used to error every test with a UnicodeDecodeError naming nothing, and --update-baselines lost the
    summary to a traceback in sessionfinish."""
    path = record_baselines(project)
    garbage = bytes(range(256)) * 8
    path.write_bytes(garbage)
    for extra in ((), ("--update-baselines",)):
        result = project.runpytest(*FAST, *extra, "--results", "results.json")
        result.assert_outcomes(errors=6)
        result.stdout.fnmatch_lines([f"*BaselineError: baseline {path} is not UTF-8 text*", "results: *results.json"])
        assert "Traceback" not in result.stderr.str() and "INTERNALERROR" not in result.stdout.str()
        assert path.read_bytes() == garbage


def test_a_plugin_backends_descriptor_sets_the_gate_baselines_and_compare(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backend added through pytest_harness_backends behaves like a built-in one everywhere: its
    descriptor's threshold gates (a 1.3× slowdown passes its 50 %), --baseline-from takes its library's
    name, the results record the descriptor, and `compare` judges with the recorded threshold."""
    from harness.cli import main as cli_main

    pytester.makeconftest(
        "import dataclasses\n"
        "from cases.identity import CASE as IDENTITY\n"
        "from tests.gate_support import SYNTHETIC_ORT\n"
        "from harness.backends import DeviceKind\n"
        "MINE = dataclasses.replace(SYNTHETIC_ORT['ort'], library='mylib', device_kind=DeviceKind.GPU,\n"
        "                           latency_threshold=0.5, default_on=None)\n"
        "def pytest_harness_cases(config):\n"
        "    return [IDENTITY]\n"
        "def pytest_harness_backends(config):\n"
        "    return {'mine': MINE}\n"
    )
    pytester.makepyfile(test_matrix="from harness.suite import test_accuracy, test_latency\n")
    monkeypatch.setenv("HARNESS_TEST_ORT_VERSION", "1.0.0")
    monkeypatch.delenv("HARNESS_TEST_SLOWDOWN", raising=False)
    mine = (*FAST, "--backend", "mine")
    pytester.runpytest(*mine, "--update-baselines", "--results", "old.json").assert_outcomes(passed=6)
    monkeypatch.setenv("HARNESS_TEST_SLOWDOWN", "1.3")
    monkeypatch.setenv("HARNESS_TEST_ORT_VERSION", "2.0.0")
    result = pytester.runpytest(*mine, "--baseline-from", "mylib-1.0", "--results", "new.json")
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(["*comparing mine 2.0.0 with the baseline*mine-1.0.0.json (--baseline-from)*"])
    record = json.loads((pytester.path / "new.json").read_text())["tests"][0]
    assert record["backend_library"] == "mylib" and record["backend_default_latency_threshold"] == 0.5
    assert record["backend_device_kind"] == "gpu"
    old, new = str(pytester.path / "old.json"), str(pytester.path / "new.json")
    assert cli_main(["compare", old, new]) == 0  # within the descriptor's 50 %
    assert cli_main(["compare", old, new, "--gpu-threshold", "0.05"]) == 1  # the command line overrides it


def test_a_verdict_says_when_the_timing_settings_differ_from_the_baseline_s(project: pytest.Pytester) -> None:
    """Baselines recorded with two ONNX Runtime threads, the run with one: each latency verdict says so (the
    synthetic clock keeps the verdicts themselves unchanged)."""
    project.runpytest(*FAST, "--update-baselines", "--cpu-threads", "2").assert_outcomes(passed=6)
    project.runpytest(*FAST, "--results", "r.json").assert_outcomes(passed=6)
    tests = json.loads((project.path / "r.json").read_text())["tests"]
    reasons = [test["gate"]["reason"] for test in tests if test["id"].startswith("test_latency")]
    assert len(reasons) == 3
    assert all("timed under other settings than the baseline (intra_op_threads 2 → 1)" in r for r in reasons)
    settings = json.loads((project.path / "r.json").read_text())["settings"]
    assert settings["backend_options"]["cpu_threads"] == 1


def test_an_update_records_the_machines_drift_and_a_threshold_below_it_is_unresolved(
    project: pytest.Pytester,
) -> None:
    """--update-baselines measures each latency test twice (harness/drift.py); the file's resolution then decides
    whether a threshold can be judged on this machine: below it the latency is unresolved (the test passes, the
    summary says so and names the fix)."""
    path = record_baselines(project)
    data = json.loads(path.read_text())
    latency = {test_id: e for test_id, e in data["entries"].items() if test_id.startswith("test_latency")}
    assert all(set(e["aa_drift"]) == {"log_ratio", "flag_level"} for e in latency.values())
    assert data["drift"]["pairs"] == 3 and 0 <= data["drift"]["resolution"] < 0.05  # the synthetic clock is steady
    for e in latency.values():  # a noisier machine recorded them: its pairs would be flagged up to 20 %
        e["aa_drift"]["flag_level"] = 0.2
    path.write_text(json.dumps(data))
    result = project.runpytest(*FAST, "-k", "latency")
    result.assert_outcomes(passed=3)
    said = (
        "*latency unresolved: 3 tests not judged, e.g. test_latency*: threshold 10.0% is below this machine's "
        "resolution 20.0% (A/A drift of 3 tests recorded in *ort-1.0.0.json): raise --latency-threshold to 0.2 "
        "(20.0%) or use `python -m harness ab`*"
    )
    result.stdout.fnmatch_lines([said])
    result.stdout.fnmatch_lines(["identity*fp32*opt*ort*×*unresolved*"])  # the table's vs-baseline column
    judged = project.runpytest(*FAST, "-k", "latency", "--latency-threshold", "0.2", "--results", "r.json")
    judged.assert_outcomes(passed=3)
    assert "latency unresolved" not in judged.stdout.str()
    tests = json.loads((project.path / "r.json").read_text())["tests"]
    assert [t["gate"]["verdict"] for t in tests if t["id"].startswith("test_latency")] == ["pass"] * 3
