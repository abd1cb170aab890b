"""The cost gate (issue 20): build time, plan size, device memory and output size judged against the old side's
(harness/gate.py's judge_build_time, judge_plan_size, judge_engine_costs), in `python -m harness compare`, and
end to end on real ONNX Runtime sessions (build-only ones whose model grew; latency ones whose outputs grew)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import cli
from harness.baselines import BaselineFile
from harness.gate import (
    BUILD_TIME,
    OUTPUT_SIZE,
    CostPolicy,
    judge_build_time,
    judge_device_memory,
    judge_engine_costs,
    judge_plan_size,
)
from tests.test_cli import LATENCY, Record, pair, record, results, write

POLICY = CostPolicy()
BUILD = "test_build[mnist-fp16-build-ort]"


def built(build_s: float, artifact_bytes: int, *, cached: bool = False) -> Record:
    return {**record(BUILD), "build": {"cached": cached, "build_s": build_s, "artifact_bytes": artifact_bytes}}


def with_memory(device_memory_bytes: int) -> Record:
    return {**record(LATENCY), "engine": {"device_memory_bytes": device_memory_bytes}}


def with_outputs(output_bytes: int) -> Record:
    return {**record(LATENCY), "engine": {"output_bytes": output_bytes}}


def test_a_latency_tests_engine_costs_are_the_ones_either_side_recorded() -> None:
    """ONNX Runtime reports no device memory: only the output size is judged; TensorRT's engine has both."""
    (outputs,) = judge_engine_costs({"output_bytes": 400}, {"output_bytes": 800}, POLICY)
    assert (outputs.cost, outputs.verdict, outputs.threshold) == (OUTPUT_SIZE, "regression", 0.2)
    assert outputs.reason == "output size grew 0.4 kB → 0.8 kB (2.00×), beyond the 20% threshold"
    both = judge_engine_costs(
        {"device_memory_bytes": 1000, "output_bytes": 400}, {"device_memory_bytes": 1100, "output_bytes": 400}, POLICY
    )
    assert [(cost.cost, cost.verdict) for cost in both] == [("device memory", "pass"), (OUTPUT_SIZE, "pass")]


@pytest.mark.parametrize(
    ("old_s", "new_s", "verdict"),
    [(10.0, 15.1, "regression"), (10.0, 14.9, "pass"), (10.0, 4.9, "improvement"), (0.5, 5.0, "regression")],
)
def test_build_time_is_judged_against_its_fifty_percent_threshold(old_s: float, new_s: float, verdict: str) -> None:
    """+50 % by default; a build that went from under the floor to far above it is judged: that jump is real."""
    judged = judge_build_time(old_s, new_s, old_cached=False, new_cached=False, policy=POLICY)
    assert judged.verdict == verdict and judged.cost == BUILD_TIME
    assert judged.threshold == 0.5 and judged.ratio == pytest.approx(new_s / old_s)


def test_a_regression_names_the_cost_both_numbers_and_the_threshold() -> None:
    judged = judge_plan_size(1_000_000, 1_300_000, POLICY)
    assert judged.verdict == "regression"
    assert judged.reason == "plan size grew 1.0 MB → 1.3 MB (1.30×), beyond the 20% threshold"


@pytest.mark.parametrize(("old_cached", "new_cached", "side"), [(False, True, "new"), (True, False, "old")])
def test_a_cached_build_is_not_judged_on_time(old_cached: bool, new_cached: bool, side: str) -> None:
    """No build ran on a side that found its engine cached (build_s 0.0): inconclusive, saying which side and the fix."""
    judged = judge_build_time(
        0.0 if old_cached else 30.0, 0.0 if new_cached else 30.0, old_cached=old_cached, new_cached=new_cached,
        policy=POLICY,
    )  # fmt: skip
    assert judged.verdict == "inconclusive"
    assert f"the {side} run found the engine in the engine cache" in judged.reason and "--engine-cache" in judged.reason


def test_builds_below_the_floor_are_too_noisy_to_judge() -> None:
    """0.2 s → 0.9 s is 4.5× but both are under a second: the process's own overhead, not the builder."""
    judged = judge_build_time(0.2, 0.9, old_cached=False, new_cached=False, policy=POLICY)
    assert judged.verdict == "inconclusive"
    assert judged.reason == "0.20 s → 0.90 s: both builds under 1 s, too short for their time to be judged"


def test_a_cost_missing_on_one_side_is_new_or_inconclusive() -> None:
    """Nothing old to judge against: new (as a test without a baseline); nothing new: inconclusive."""
    assert judge_device_memory(None, 4096, POLICY).verdict == "new"
    lost = judge_device_memory(4096, None, POLICY)
    assert lost.verdict == "inconclusive" and lost.reason == "the new run recorded no device memory"


@pytest.mark.parametrize(
    ("new_bytes", "verdict"), [(1_210_000, "regression"), (1_190_000, "pass"), (790_000, "improvement")]
)
def test_device_memory_and_plan_size_regress_at_twenty_percent(new_bytes: int, verdict: str) -> None:
    assert judge_device_memory(1_000_000, new_bytes, POLICY).verdict == verdict
    assert judge_plan_size(1_000_000, new_bytes, POLICY).verdict == verdict


def test_growth_from_zero_is_a_regression_and_zero_stays_a_pass() -> None:
    """An engine that needed no device memory and now needs some grew without bound; 0 and 0 is unchanged."""
    grew = judge_device_memory(0, 4096, POLICY)
    assert grew.verdict == "regression" and grew.ratio == float("inf")
    assert judge_device_memory(0, 0, POLICY).verdict == "pass"


def costs_table(output: str) -> dict[str, str]:
    """The costs table's rows keyed by their cost, from compare's text output."""
    section = output.split("\nCosts\n", 1)[1].split("\n\n", 1)[0].splitlines()
    table = [line for line in section if line.startswith(("mnist ", "conv_add_relu "))]  # not the notes under it
    return {
        cost: line
        for line in table
        for cost in ("build time", "plan size", "device memory", "output size")
        if cost in line
    }


def test_compare_fails_on_a_plan_that_grew_and_says_why(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Plan +30 %: exit 1, the build's row a REGRESSION, its costs in their own table, the reason with the numbers,
    and what the layer lists say (here: none recorded, said plainly)."""
    assert cli.main(["compare", *pair(tmp_path, [built(20.0, 1_000_000)], [built(21.0, 1_300_000)])]) == 1
    output = capsys.readouterr().out
    table = costs_table(output)
    assert table["plan size"].split()[-4:] == ["1.3", "MB", "1.30", "REGRESSION"]
    assert table["build time"].endswith("pass")
    assert f"REGRESSION {BUILD}: plan size grew 1.0 MB → 1.3 MB (1.30×), beyond the 20% threshold" in output
    assert f"REGRESSION {BUILD}: plan growth by layer: not known, no per-layer profile of this engine" in output
    assert (
        cli.main(
            [
                "compare",
                *pair(tmp_path, [built(20.0, 1_000_000)], [built(21.0, 1_300_000)]),
                "--plan-size-threshold",
                "0.5",
            ]
        )
        == 0
    )
    capsys.readouterr()


def test_compare_fails_on_a_slower_build_and_on_more_device_memory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    slower = pair(tmp_path, [built(20.0, 1000)], [built(40.0, 1000)])
    assert cli.main(["compare", *slower]) == 1
    assert "build time grew 20.00 s → 40.00 s (2.00×), beyond the 50% threshold" in capsys.readouterr().out
    assert cli.main(["compare", *slower, "--build-time-threshold", "1.5"]) == 0
    capsys.readouterr()
    bigger = pair(tmp_path, [with_memory(1 << 20)], [with_memory(3 << 19)])
    assert cli.main(["compare", *bigger]) == 1
    assert costs_table(capsys.readouterr().out)["device memory"].endswith("REGRESSION")
    assert cli.main(["compare", *bigger, "--memory-threshold", "0.6"]) == 0
    capsys.readouterr()
    wider = pair(tmp_path, [with_outputs(4000)], [with_outputs(8000)])
    assert cli.main(["compare", *wider]) == 1
    assert costs_table(capsys.readouterr().out)["output size"].endswith("REGRESSION")
    assert cli.main(["compare", *wider, "--output-size-threshold", "1.5"]) == 0
    capsys.readouterr()


def test_a_cost_improvement_is_reported_and_fails_only_on_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = pair(tmp_path, [built(20.0, 1_000_000)], [built(20.0, 500_000)])
    assert cli.main(["compare", *files]) == 0
    assert f"improvement {BUILD}: plan size fell 1.0 MB → 500.0 kB (0.50×)" in capsys.readouterr().out
    assert cli.main(["compare", *files, "--fail-on-improvement"]) == 1
    capsys.readouterr()


def test_costs_that_cannot_be_judged_are_said_and_do_not_fail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A cached new build and a latency test whose backend reports no device memory any more: the costs table says
    inconclusive with why; the gate passes (the measurement is coarse, nothing got worse)."""
    files = pair(tmp_path, [built(20.0, 1000), with_memory(4096)], [built(0.0, 1000, cached=True), record(LATENCY)])
    assert cli.main(["compare", *files]) == 0
    output = capsys.readouterr().out
    assert costs_table(output)["build time"].endswith("inconclusive")
    assert f"inconclusive build time of {BUILD}: the new run found the engine in the engine cache" in output
    assert f"inconclusive device memory of {LATENCY}: the new run recorded no device memory" in output


def test_no_costs_table_where_no_test_recorded_a_cost(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["compare", *pair(tmp_path, [record(LATENCY)], [record(LATENCY)])]) == 0
    assert "Costs" not in capsys.readouterr().out


def test_the_markdown_has_the_costs_under_their_own_heading(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["compare", *pair(tmp_path, [built(20.0, 1000)], [built(20.0, 1300)]), "--markdown"]) == 1
    output = capsys.readouterr().out
    assert "**Costs**" in output and "| plan size | 1.0 kB | 1.3 kB | 1.30 | **REGRESSION** |" in output


def layer_profile(*names: str) -> dict[str, object]:
    layers = [{"name": name, "kind": "Conv", "median_us": 10.0} for name in names]
    return {"source": "onnxruntime profiler", "runs": 5, "layers": layers}


def test_plan_growth_is_explained_by_the_layers_that_appeared(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The engine's latency tests recorded per-layer profiles: the layer the new engine has and the old lacks is
    named as where the plan grew."""
    old_latency = {**record(LATENCY), "layer_profile": layer_profile("conv1", "fc1")}
    new_latency = {**record(LATENCY), "layer_profile": layer_profile("conv1", "fc1", "reformat_fc1")}
    build = "test_build[mnist-fp16-build-ort]"
    assert build == BUILD  # the engine of LATENCY: same case, precision, profile and backend
    files = pair(tmp_path, [built(20.0, 1000), old_latency], [built(20.0, 1500), new_latency])
    assert cli.main(["compare", *files]) == 1
    assert f"REGRESSION {BUILD}: plan growth by layer (2 → 3 layers): reformat_fc1: appeared" in capsys.readouterr().out


def test_plan_growth_inside_unchanged_layers_is_said(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Same layers on both sides: no layer to blame, and the note says the growth is inside them."""
    latency = {**record(LATENCY), "layer_profile": layer_profile("conv1", "fc1")}
    assert cli.main(["compare", *pair(tmp_path, [built(20.0, 1000), latency], [built(20.0, 1500), latency])]) == 1
    assert "plan growth by layer: the same 2 layers on both sides" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("build", "problem"),
    [
        ({"cached": False, "build_s": "fast", "artifact_bytes": 7}, '"build.build_s" must be a number >= 0 or null'),
        ({"cached": False, "build_s": 1.0, "artifact_bytes": -7}, '"build.artifact_bytes" must be a number >= 0'),
        ({"cached": "no", "build_s": 1.0, "artifact_bytes": 7}, '"build.cached" must be true or false, got "no"'),
    ],
)
def test_a_baseline_whose_build_costs_cannot_be_read_exits_2_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], build: dict[str, object], problem: str
) -> None:
    baseline = BaselineFile(tmp_path / "ort-1.32.0.json", "amd-epyc", "ort", "1.32.0")
    baseline.entries = {BUILD: {**built(20.0, 1000), "build": build}}
    baseline.write()
    new = write(tmp_path / "new.json", results(built(20.0, 1000)))
    assert cli.main(["compare", str(baseline.path), str(new)]) == 2
    error = capsys.readouterr().err
    assert str(baseline.path) in error and BUILD in error and problem in error


@pytest.mark.parametrize("value", ["0", "-0.2", "nan", "inf", "twenty"])
@pytest.mark.parametrize(
    "option", ["--build-time-threshold", "--plan-size-threshold", "--memory-threshold", "--output-size-threshold"]
)
def test_bad_threshold_values_are_refused_with_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str
) -> None:
    with pytest.raises(SystemExit) as stopped:
        cli.main(["compare", *pair(tmp_path, [record(LATENCY)], [record(LATENCY)]), f"{option}={value}"])
    assert stopped.value.code == 2
    assert f"argument {option}: must be a fraction greater than 0 (0.2 means 20 % more), got '{value}'" in (
        capsys.readouterr().err
    )


# ---------------------------------------------------------------------------------------------------
# End to end: two real ONNX Runtime build-only sessions, the second of a model whose convolution is 5×5, not 3×3

GROWN_CONFTEST = """
import dataclasses, os
import numpy as np
from onnx import helper, numpy_helper
from cases.conv_add_relu import CASE, onnx_model

def wider_kernel():
    # conv_add_relu with a 5x5 kernel (pads 2) for its 3x3 one: the same shapes, 25/9 of the weights
    model = onnx_model()
    (conv,) = [node for node in model.graph.node if node.op_type == "Conv"]
    del conv.attribute[:]
    conv.attribute.extend([helper.make_attribute("kernel_shape", [5, 5]), helper.make_attribute("pads", [2] * 4)])
    weight = np.random.default_rng(0).standard_normal((16, 8, 5, 5)).astype(np.float32) * 0.1
    (index,) = [i for i, tensor in enumerate(model.graph.initializer) if tensor.name == "conv.weight"]
    model.graph.initializer[index].CopyFrom(numpy_helper.from_array(weight, "conv.weight"))
    return model

def pytest_harness_cases(config):
    grown = os.environ.get("HARNESS_TEST_GROWN") == "1"
    return [dataclasses.replace(CASE, onnx_model=wider_kernel) if grown else CASE]
"""


def test_compare_of_two_real_sessions_fails_on_the_plan_that_grew(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The artifact ONNX Runtime wrote for the 5×5 model is larger by more than 20 %: compare fails on it, and its
    sub-second builds are inconclusive on time, not judged on noise."""
    pytester.makeconftest(GROWN_CONFTEST)
    pytester.makepyfile(test_matrix="from harness.suite import test_build\n")
    run = ("--build-only", "--backend", "ort", "--precision", "fp32", "-p", "no:cacheprovider")
    monkeypatch.delenv("HARNESS_TEST_GROWN", raising=False)
    pytester.runpytest(*run, "--results", "old.json").assert_outcomes(passed=1)
    monkeypatch.setenv("HARNESS_TEST_GROWN", "1")
    pytester.runpytest(*run, "--results", "new.json").assert_outcomes(passed=1)
    sizes = [json.loads((pytester.path / name).read_text())["tests"][0]["build"] for name in ("old.json", "new.json")]
    assert not sizes[0]["cached"] and not sizes[1]["cached"]
    assert sizes[1]["artifact_bytes"] > 1.2 * sizes[0]["artifact_bytes"]
    old, new = str(pytester.path / "old.json"), str(pytester.path / "new.json")
    capsys.readouterr()
    assert cli.main(["compare", old, new]) == 1
    table = costs_table(capsys.readouterr().out)
    assert table["plan size"].endswith("REGRESSION")
    assert table["build time"].endswith("inconclusive") or max(s["build_s"] for s in sizes) >= 1.0
    ratio = sizes[1]["artifact_bytes"] / sizes[0]["artifact_bytes"]
    assert cli.main(["compare", old, new, "--plan-size-threshold", f"{ratio + 0.01:.2f}"]) == 0
    capsys.readouterr()


# ---------------------------------------------------------------------------------------------------
# In the session: the build test's costs go to the baselines, and it fails on a cost regression against them

BUILD_ONLY = ("--build-only", "--backend", "ort", "--precision", "fp32", "-p", "no:cacheprovider")


@pytest.fixture
def growing(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A project whose conv_add_relu grows a 5×5 kernel when HARNESS_TEST_GROWN=1."""
    pytester.makeconftest(GROWN_CONFTEST)
    pytester.makepyfile(test_matrix="from harness.suite import test_build\n")
    monkeypatch.delenv("HARNESS_TEST_GROWN", raising=False)
    return pytester


def test_update_baselines_keeps_the_build_costs_and_a_grown_plan_fails_its_build_test(
    growing: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    growing.runpytest(*BUILD_ONLY, "--update-baselines").assert_outcomes(passed=1)
    (path,) = (growing.path / "baselines").glob("*/*.json")
    build_id = "test_build[conv_add_relu-fp32-build-ort]"
    entry = json.loads(path.read_text())["entries"][build_id]
    assert sorted(entry["build"]) == ["artifact_bytes", "build_s", "cached"]  # not its local path or its warnings
    recorded = entry["build"]["artifact_bytes"]
    unchanged = growing.runpytest(*BUILD_ONLY, "--results", "same.json")
    unchanged.assert_outcomes(passed=1)  # found in the engine cache: its time is not judged, its size is the same
    gate = json.loads((growing.path / "same.json").read_text())["tests"][0]["gate"]
    assert gate["verdict"] == "pass" and [cost["verdict"] for cost in gate["costs"]] == ["inconclusive", "pass"]
    monkeypatch.setenv("HARNESS_TEST_GROWN", "1")
    grown = growing.runpytest(*BUILD_ONLY, "--results", "grown.json")
    grown.assert_outcomes(failed=1)
    record = json.loads((growing.path / "grown.json").read_text())["tests"][0]
    size = record["build"]["artifact_bytes"]
    shown = f"{recorded / 1e3:,.1f} kB → {size / 1e3:,.1f} kB ({size / recorded:.2f}×)"
    failure = next(line for line in grown.stdout.lines if line.startswith(f"{build_id}: regression against "))
    assert failure.endswith(f".json: plan size grew {shown}, beyond the 20% threshold")
    assert record["gate"]["verdict"] == "regression"
    allowed = growing.runpytest(*BUILD_ONLY, "--plan-size-threshold", f"{size / recorded + 0.01:.2f}")
    allowed.assert_outcomes(passed=1)


def test_a_build_test_without_a_baseline_is_new(growing: pytest.Pytester) -> None:
    growing.runpytest(*BUILD_ONLY, "--results", "r.json").assert_outcomes(passed=1)
    gate = json.loads((growing.path / "r.json").read_text())["tests"][0]["gate"]
    assert gate["verdict"] == "new" and gate["reason"] == "no baseline build costs for this test"


@pytest.mark.parametrize("value", ["0", "-1", "nan", "lots"])
@pytest.mark.parametrize(
    "option", ["--build-time-threshold", "--plan-size-threshold", "--memory-threshold", "--output-size-threshold"]
)
def test_bad_threshold_options_stop_the_session_naming_option_and_ini_key(
    growing: pytest.Pytester, option: str, value: str
) -> None:
    result = growing.runpytest(*BUILD_ONLY, f"{option}={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    ini = "harness_" + option.removeprefix("--").replace("-", "_")
    expected = "a fraction greater than 0 (0.2 means 20 % more)" if value != "lots" else "a valid number"
    result.stderr.fnmatch_lines([f"*trt-harness: {option} / {ini} must be {expected}, got '{value}'*"])


def test_the_ini_key_sets_a_cost_threshold(growing: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    growing.runpytest(*BUILD_ONLY, "--update-baselines").assert_outcomes(passed=1)
    monkeypatch.setenv("HARNESS_TEST_GROWN", "1")
    growing.makeini("[pytest]\nharness_plan_size_threshold = 5.0\n")
    growing.runpytest(*BUILD_ONLY).assert_outcomes(passed=1)


SYNTHETIC = ("--latency-budget", "0.05", "-p", "no:cacheprovider", "--precision", "fp32", "--benchmark-disable")


def test_a_latency_test_fails_when_its_engine_needs_more_device_memory(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The synthetic-clock backend reports device memory as TensorRT does: 1.3× the baseline's fails each latency test
    with the cost, old, new and threshold, whatever its latency; a wider --memory-threshold lets it pass; compare of the
    two results files fails on NEW's own failures."""
    pytester.makeconftest(
        "from cases.identity import CASE\n"
        "from tests.gate_support import SYNTHETIC_ORT\n"
        "def pytest_harness_cases(config):\n"
        "    return [CASE]\n"
        "def pytest_harness_backends(config):\n"
        "    return SYNTHETIC_ORT\n"
    )
    pytester.makepyfile(test_matrix="from harness.suite import test_latency\n")
    monkeypatch.delenv("HARNESS_TEST_SLOWDOWN", raising=False)
    monkeypatch.setenv("HARNESS_TEST_DEVICE_MEMORY", "1000000")
    pytester.runpytest(*SYNTHETIC, "--update-baselines", "--results", "old.json").assert_outcomes(passed=3)
    monkeypatch.setenv("HARNESS_TEST_DEVICE_MEMORY", "1300000")
    grown = pytester.runpytest(*SYNTHETIC, "--results", "new.json")
    grown.assert_outcomes(failed=3)
    failures = [line for line in grown.stdout.lines if line.startswith("test_latency[identity-fp32-opt-ort]: ")]
    assert failures and "device memory grew 1.0 MB → 1.3 MB (1.30×), beyond the 20% threshold; latency: " in failures[0]
    assert "slower" not in grown.stdout.str()  # the summary's latency column: the latency did not regress
    pytester.runpytest(*SYNTHETIC, "--memory-threshold", "0.5").assert_outcomes(passed=3)
    old, new = str(pytester.path / "old.json"), str(pytester.path / "new.json")
    capsys.readouterr()
    assert cli.main(["compare", old, new]) == 1  # NEW's own failures, with the session's reason
    assert "fail in the new one: Failed: test_latency[identity-fp32-opt-ort]: regression against baseline" in (
        capsys.readouterr().out
    )


def test_a_latency_test_fails_when_the_bytes_its_inference_hands_back_grew(pytester: pytest.Pytester) -> None:
    """The output stage on real ONNX Runtime: each latency test records the bytes one inference hands back; against a
    baseline whose engine handed back half as many (as if the old version returned fp16 where this one returns
    fp32), the test fails naming the output size, whatever its latency; --output-size-threshold 1.5 lets it pass."""
    pytester.makeconftest("from cases.identity import CASE\ndef pytest_harness_cases(config):\n    return [CASE]\n")
    pytester.makepyfile(test_matrix="from harness.suite import test_latency\n")
    options = ("--latency-budget", "0.05", "-p", "no:cacheprovider", "--precision", "fp32", "--benchmark-disable")
    pytester.runpytest(*options, "--update-baselines", "--results", "old.json").assert_outcomes(passed=3)
    recorded = json.loads((pytester.path / "old.json").read_text())["tests"]
    output_bytes = {test["id"]: test["engine"]["output_bytes"] for test in recorded}
    (path,) = (pytester.path / "baselines").rglob("ort-*.json")
    data = json.loads(path.read_text())
    for test_id, entry in data["entries"].items():
        assert entry["engine"]["output_bytes"] == output_bytes[test_id] > 0  # kept in the baseline
        entry["engine"]["output_bytes"] //= 2
    path.write_text(json.dumps(data))
    grown = pytester.runpytest(*options, "--latency-threshold", "0.9")
    grown.assert_outcomes(failed=3)
    assert "output size grew " in grown.stdout.str() and "(2.00×), beyond the 20% threshold; latency: " in (
        grown.stdout.str()
    )
    pytester.runpytest(*options, "--latency-threshold", "0.9", "--output-size-threshold", "1.5").assert_outcomes(
        passed=3
    )
