"""pytest-benchmark integration (harness/bench.py): its JSON holds exactly our backend-clock samples,
and its machine info names the backends. Pinned range: pytest-benchmark >= 5.1, < 6 (pyproject.toml)."""

from __future__ import annotations

import json

import pytest


@pytest.mark.usefixtures("benchmark_measures")
def test_benchmark_json_carries_our_samples_and_machine_info(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("from cases.identity import CASE\ndef pytest_harness_cases(config):\n    return [CASE]\n")
    pytester.makepyfile(test_matrix="from harness.suite import test_latency\n")
    result = pytester.runpytest(
        "-p",
        "no:cacheprovider",
        "--latency-budget",
        "0.05",
        "--precision",
        "fp32",
        "-k",
        "opt",
        "--results",
        "r.json",
        "--benchmark-json",
        "bench.json",
    )
    result.assert_outcomes(passed=1)
    ours = json.loads((pytester.path / "r.json").read_text())["tests"][0]["latency"]
    theirs = json.loads((pytester.path / "bench.json").read_text())
    (bench,) = theirs["benchmarks"]
    assert bench["name"] == "test_latency[identity-fp32-opt-ort]"
    assert bench["stats"]["rounds"] == ours["count"]
    assert bench["stats"]["min"] == pytest.approx(ours["min_us"] / 1e6)
    assert bench["stats"]["median"] == pytest.approx(ours["median_us"] / 1e6)
    assert bench["stats"]["max"] == pytest.approx(ours["max_us"] / 1e6)
    assert bench["extra_info"]["point"] == "identity-fp32-opt-ort"
    assert theirs["machine_info"]["trt_harness_backends"]["ort"]["name"] == "onnxruntime"
