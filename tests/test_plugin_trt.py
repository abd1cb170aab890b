"""The plugin's matrix on the TensorRT backends, with the strict double standing in for TensorRT
(registered through the pytest_harness_backends hook, as any plugin would add a backend)."""

from __future__ import annotations

import json

import pytest

FAST = ("--latency-budget", "0.02", "-p", "no:cacheprovider", "--backend", "trt,trt-net", "--results", "r.json")


# A case 'broken' beside identity: its network-API engine has an input and no output, which the builder refuses.
BROKEN_NETWORK = (
    "def failing_network(network, trt, precision):\n"
    "    network.add_input('x', trt.DataType.FLOAT, (-1, -1, -1))  # and no output: the builder refuses\n"
    "CASES = [IDENTITY, dataclasses.replace(IDENTITY, name='broken', define_network=failing_network)]\n"
)


def make_project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, version: str, extra: str = "") -> None:
    pytester.makeconftest(
        "import dataclasses\n"
        "from cases.identity import CASE as IDENTITY\n"
        "from cases.conv_add_relu import CASE as CONV\n"
        "from tests.trt_support import DOUBLE_BACKENDS\n"
        f"{extra}\n"
        "def pytest_harness_cases(config):\n"
        "    return CASES\n"
        "def pytest_harness_backends(config):\n"
        "    return DOUBLE_BACKENDS\n"
    )
    pytester.makepyfile(test_matrix="from harness.suite import test_accuracy, test_agreement, test_latency\n")
    monkeypatch.setenv("HARNESS_TEST_TRT_DOUBLE", version)
    # The wiring under test is the plugin's; the double's host work cannot sit behind a real CUDA gate.
    monkeypatch.setenv("HARNESS_TEST_CUDA", "host")


@pytest.mark.parametrize("version", ["10.16", "11.4"])
def test_matrix_runs_on_both_workflows_and_records_the_double_as_such(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, version: str
) -> None:
    make_project(pytester, monkeypatch, version, "CASES = [IDENTITY, CONV]")
    result = pytester.runpytest(*FAST, "--precision", "fp32,tf32,fp16")
    # 2 cases × 3 precisions × 3 points: accuracy and latency on 2 backends, agreement on trt-net.
    result.assert_outcomes(passed=18 * 5)
    result.stdout.fnmatch_lines(["*conv_add_relu*tf32*max*trt-net*pass*"])
    tests = {test["id"]: test for test in json.loads((pytester.path / "r.json").read_text())["tests"]}
    agreement = tests["test_agreement[conv_add_relu-fp16-opt-trt-net]"]
    assert agreement["compared_with"] == "trt" and agreement["verdict"] == "pass"
    latency = tests["test_latency[conv_add_relu-fp32-max-trt]"]
    assert latency["backend_version"].endswith("+numpy-double")
    assert latency["host_latency"]["count"] >= 10 and latency["engine"]["device_memory_bytes"] > 0
    assert latency["build"]["artifact_bytes"] > 0


def test_builder_failure_errors_that_case_and_the_rest_continue(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_project(pytester, monkeypatch, "11.4", BROKEN_NETWORK)
    result = pytester.runpytest(*FAST, "--precision", "fp32")
    # 'broken' builds through the ONNX parser (6 pass); its network-API engine fails (6 + 3 agreement).
    result.assert_outcomes(passed=21, errors=9)
    result.stdout.fnmatch_lines(
        ["*BuildError: case 'broken': tensorrt *+numpy-double failed to build the fp32 engine (network-api):*"]
    )


def test_unparsable_model_errors_with_the_parser_messages(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    extra = (
        "def broken():\n"
        "    model = IDENTITY.onnx_model()\n"
        "    model.graph.node[-1].op_type = 'NoSuchOp'\n"
        "    return model\n"
        "CASES = [IDENTITY, dataclasses.replace(IDENTITY, name='unparsable', onnx_model=broken)]\n"
    )
    make_project(pytester, monkeypatch, "10.16", extra)
    result = pytester.runpytest(*FAST, "--precision", "fp32", "--backend", "trt")
    result.assert_outcomes(passed=6, errors=6, skipped=1)  # no agreement test without trt-net
    result.stdout.fnmatch_lines(
        ["*BuildError: case 'unparsable': tensorrt *+numpy-double's ONNX parser rejected the fp32 model*NoSuchOp*"]
    )


@pytest.mark.parametrize("version", ["10.16", "11.4"])
def test_fuzz_runs_unchanged_on_the_tensorrt_backends(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, version: str
) -> None:
    make_project(pytester, monkeypatch, version, "CASES = [IDENTITY, CONV]")
    pytester.makepyfile(test_matrix="from harness.suite import test_fuzz_inside_profile, test_fuzz_outside_profile\n")
    result = pytester.runpytest(
        *FAST, "--precision", "fp32,fp16", "--hypothesis-profile", "harness-ci", "--fuzz-examples", "5"
    )
    result.assert_outcomes(passed=2 * 2 * 2 * 2)  # cases x precisions x backends x (inside, outside)


BUILD_MODULE = (
    "from harness.suite import test_build, test_accuracy, test_agreement, test_latency, test_fuzz_inside_profile\n"
)


def test_build_only_builds_every_engine_records_it_and_skips_every_run_test(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_project(pytester, monkeypatch, "11.4", "CASES = [IDENTITY, CONV]")
    pytester.makepyfile(test_matrix=BUILD_MODULE)
    result = pytester.runpytest(*FAST, "--precision", "fp32,fp16", "--build-only", "-rs")
    # 2 cases × 2 precisions × 1 profile × 2 backends engines; every run test skips.
    result.assert_outcomes(passed=8, skipped=2 * 2 * 3 * 2 * 2 + 2 * 2 * 3 + 2 * 2 * 2)
    result.stdout.fnmatch_lines(["*build-only run*"])
    tests = {test["id"]: test for test in json.loads((pytester.path / "r.json").read_text())["tests"]}
    build = tests["test_build[conv_add_relu-fp16-build-trt-net]"]
    assert build["verdict"] == "pass" and build["build"]["artifact_bytes"] > 0 and build["build"]["build_s"] > 0
    assert build["build"]["load_s"] is None and isinstance(build["build"]["warnings"], list)
    assert build["backend_library"] == "tensorrt" and build["backend_version"].endswith("+numpy-double")
    ran = [test for test in tests.values() if test["verdict"] != "skip"]
    assert all(test["id"].startswith("test_build[") for test in ran)  # nothing else ran
    skipped = [test for test in tests.values() if test["verdict"] == "skip"]  # recorded, as pytest counts them
    assert len(skipped) == 68 and all("build-only run" in test["message"] for test in skipped)
    result.stdout.fnmatch_lines(["*SKIPPED [[]68[]]*build-only run*"])
    again = pytester.runpytest(*FAST, "--precision", "fp32,fp16", "--build-only", "--results", "warm.json")
    again.assert_outcomes(passed=8, skipped=2 * 2 * 3 * 2 * 2 + 2 * 2 * 3 + 2 * 2 * 2)
    warm = json.loads((pytester.path / "warm.json").read_text())["tests"]
    assert all(t["build"]["cached"] for t in warm if t["id"].startswith("test_build"))


def test_build_only_fails_the_point_that_does_not_build_with_the_builders_log(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_project(pytester, monkeypatch, "10.16", BROKEN_NETWORK)
    pytester.makepyfile(test_matrix="from harness.suite import test_build\n")
    result = pytester.runpytest(*FAST, "--precision", "fp32", "--build-only")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*_ test_build[[]broken-fp32-build-trt-net[]] _*",
            "case 'broken': tensorrt *+numpy-double failed to build the fp32 engine (network-api): *at least one output*",
        ]
    )
    assert "During handling" not in result.stdout.str()


def test_a_runtime_that_refuses_the_gpu_skips_run_tests_with_its_reason_decided_once(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TensorRT for RTX on an H200, played by the double: builds work, engines cannot load."""
    extra = (
        "from tests.trt_support import REFUSED_GPU\n"
        "DOUBLE_BACKENDS = {**DOUBLE_BACKENDS, 'trt': dataclasses.replace(DOUBLE_BACKENDS['trt'],"
        " factory='tests.trt_support:refusing_runtime_on_double')}\n"
        "CASES = [IDENTITY, CONV]\n"
    )
    make_project(pytester, monkeypatch, "11.4", extra)
    monkeypatch.setenv("HARNESS_TEST_PROBES", str(pytester.path / "probes.log"))
    pytester.makepyfile(test_matrix=BUILD_MODULE)
    result = pytester.runpytest(*FAST, "--precision", "fp32", "--backend", "trt", "-rs")
    # builds pass; accuracy, latency and fuzz skip; agreement has no trt-net twin selected
    result.assert_outcomes(passed=2, skipped=2 * 3 * 2 + 2 + 1)
    result.stdout.fnmatch_lines(["*backend 'trt' cannot run engines here: *compute capability 9.0*"])
    assert result.stdout.str().count("cannot deserialize") == 0  # no per-test deserialization error
    assert (pytester.path / "probes.log").read_text().count("probe") == 1


@pytest.mark.parametrize("version", ["10.16", "11.4"])
def test_every_precision_builds_proves_and_agrees_on_both_workflows(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, version: str
) -> None:
    """bf16 and int8 (parsed Q/DQ model and network-API Q/DQ layers) on the double: each accuracy test
    records the engine inspector's per-layer proof, and trt-net agrees with trt."""
    make_project(pytester, monkeypatch, version, "CASES = [CONV]")
    result = pytester.runpytest(*FAST, "--precision", "bf16,int8", "-k", "accuracy or agreement")
    result.assert_outcomes(passed=2 * 3 * 3)  # 2 precisions × 3 points × (2 accuracy + 1 agreement)
    tests = {test["id"]: test for test in json.loads((pytester.path / "r.json").read_text())["tests"]}
    for backend in ("trt", "trt-net"):
        layers = tests[f"test_accuracy[conv_add_relu-int8-opt-{backend}]"]["layers"]
        assert layers["source"] == "engine inspector" and "conv Int8" in layers["summary"]
        bf16 = tests[f"test_accuracy[conv_add_relu-bf16-opt-{backend}]"]["layers"]
        assert "conv BFloat16" in bf16["summary"] and bf16["problems"] == []


# conv_add_relu with an fp16 tolerance it cannot meet: its fp16 accuracy tests fail, and are localized.
TIGHT = (
    "from harness.case import Precision, Tolerance\n"
    "CASES = [dataclasses.replace(CONV, name='tight', tolerances={(Precision.FP16, 'y'): Tolerance(mean_rel=1e-6)})]"
)


def test_a_failing_point_is_localized_on_the_tensorrt_backend_itself(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parser workflow localizes on a debug engine with every tensor marked as an output; the network-API
    workflow, which has no ONNX model to expose, on ONNX Runtime. Each record says where it ran."""
    make_project(pytester, monkeypatch, "11.4", TIGHT)
    result = pytester.runpytest(*FAST, "--precision", "fp16", "-k", "accuracy and opt")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        ["*Localized on tensorrt *+numpy-double, every tensor marked as an output: *first layer beyond 1e-06: conv*"]
    )
    tests = {test["id"]: test for test in json.loads((pytester.path / "r.json").read_text())["tests"]}
    assert tests["test_accuracy[tight-fp16-opt-trt-net]"]["localization"]["ran_on"] == "onnxruntime, unoptimized"
    assert tests["test_accuracy[tight-fp16-opt-trt]"]["localization"]["first_failing"]["node"] == "conv"


def test_keep_fp32_skips_the_network_workflow_which_builds_from_code(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--keep-fp32 changes the derived model; define_network never sees it, so trt-net says so instead of
    recording a keep it did not make. The parser workflow keeps the layer and proves the rest Half."""
    make_project(pytester, monkeypatch, "11.4", "CASES = [CONV]")
    result = pytester.runpytest(*FAST, "--precision", "fp16", "--keep-fp32", "relu", "-k", "accuracy and opt", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*builds conv_add_relu from its define_network, which cannot keep relu in float32*"])
    tests = {test["id"]: test for test in json.loads((pytester.path / "r.json").read_text())["tests"]}
    summary = tests["test_accuracy[conv_add_relu-fp16-opt-trt]"]["layers"]["summary"]
    assert "relu Float (kept)" in summary and "conv Half" in summary


def test_under_weak_typing_the_parser_workflow_localizes_on_onnx_runtime(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Weak typing sets the precision with builder flags, not with the model's types: a debug engine built from
    the exposed model would not compute what the point's engine computes, so the point localizes on ONNX Runtime."""
    make_project(pytester, monkeypatch, "10.16", TIGHT)
    result = pytester.runpytest(
        *FAST, "--backend", "trt", "--precision", "fp16", "--trt-weak-typing", "-k", "accuracy and opt"
    )
    result.assert_outcomes(failed=1)
    tests = {test["id"]: test for test in json.loads((pytester.path / "r.json").read_text())["tests"]}
    assert tests["test_accuracy[tight-fp16-opt-trt]"]["localization"]["ran_on"] == "onnxruntime, unoptimized"
