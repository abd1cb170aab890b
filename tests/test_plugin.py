"""The plugin end to end, in throw-away pytest sessions (pytester) over small case registries."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from harness.backends.cuda_rt import gpu_problem

FAST = ("--latency-budget", "0.02", "-p", "no:cacheprovider", "-p", "no:randomly")

MATRIX_MODULE = "from harness.suite import test_accuracy, test_latency\n"


def make_project(pytester: pytest.Pytester, cases_source: str) -> None:
    """A repository whose conftest registers the cases that `cases_source` puts in CASES."""
    pytester.makeconftest(
        "import dataclasses\n"
        "import numpy as np\n"
        "from cases.identity import CASE as IDENTITY\n"
        "from harness.case import Precision, Profile, Tolerance\n"
        f"{cases_source}\n"
        "def pytest_harness_cases(config):\n"
        "    return CASES\n"
    )
    pytester.makepyfile(test_matrix=MATRIX_MODULE)


def results_of(pytester: pytest.Pytester, name: str = "results.json") -> dict[str, object]:
    return json.loads((pytester.path / name).read_text())  # type: ignore[no-any-return]


def test_ids_are_stable_and_readable(pytester: pytest.Pytester) -> None:
    make_project(pytester, "CASES = [IDENTITY]")
    alone = pytester.runpytest("--co", "-q", *FAST).outlines
    assert "test_matrix.py::test_accuracy[identity-fp16-opt-ort]" in alone
    make_project(pytester, "CASES = [dataclasses.replace(IDENTITY, name='another'), IDENTITY]")
    together = pytester.runpytest("--co", "-q", *FAST).outlines
    ids = {line for line in alone if "::" in line}
    assert ids and ids < set(together), "adding a case must not rename existing tests"
    assert len([line for line in together if "::" in line]) == 2 * len(ids)


def test_session_runs_matrix_and_writes_results(pytester: pytest.Pytester) -> None:
    make_project(pytester, "CASES = [IDENTITY]")
    result = pytester.runpytest(*FAST, "--results", "results.json")
    result.assert_outcomes(passed=12, skipped=12)  # tf32 and bf16 are not ONNX Runtime (CPU) precisions
    result.stdout.fnmatch_lines(
        [
            "*trt-harness*",
            "case*precision*shape*backend*median*p99*mean rel*max rel*verdict*",
            "identity*tf32*min*ort*skip*",
            "identity*fp16*max*ort*pass*",
        ]
    )
    document = results_of(pytester)
    assert document["schema"] == "trt-harness/results" and document["schema_version"] == 1
    assert document["environment"]["packages"]["onnxruntime"]  # type: ignore[index]
    assert document["environment"]["backends"]["ort"]["name"] == "onnxruntime"  # type: ignore[index]
    tests = {test["id"]: test for test in document["tests"]}  # type: ignore[attr-defined]
    accuracy = tests["test_accuracy[identity-fp16-max-ort]"]
    assert accuracy["verdict"] == "pass" and accuracy["input_shapes"] == {"x": [6, 8, 10]}
    assert accuracy["backend_name"] == "onnxruntime" and accuracy["build"]["artifact_bytes"] > 0
    assert 0 < accuracy["accuracy"][0]["mean_rel"] < 1e-3  # fp16 rounding is real error, within tolerance
    latency = tests["test_latency[identity-fp32-opt-ort]"]["latency"]
    assert latency["count"] == len(latency["samples_us"]) >= 10
    assert latency["min_us"] <= latency["median_us"] <= latency["p99_us"]
    skipped = tests["test_accuracy[identity-tf32-min-ort]"]
    assert skipped["verdict"] == "skip" and "tf32" in skipped["message"]


def test_warm_cache_builds_nothing(pytester: pytest.Pytester) -> None:
    make_project(pytester, "CASES = [IDENTITY]")
    pytester.runpytest(*FAST, "--results", "cold.json", "--precision", "fp32").assert_outcomes(passed=6)
    pytester.runpytest(*FAST, "--results", "warm.json", "--precision", "fp32").assert_outcomes(passed=6)
    cold = [test["build"]["cached"] for test in results_of(pytester, "cold.json")["tests"]]  # type: ignore[attr-defined]
    warm = [test["build"]["cached"] for test in results_of(pytester, "warm.json")["tests"]]  # type: ignore[attr-defined]
    assert not all(cold) and all(warm)


def test_corrupted_cache_entry_is_rebuilt_with_a_warning(pytester: pytest.Pytester) -> None:
    make_project(pytester, "CASES = [IDENTITY]")
    pytester.runpytest(*FAST, "--precision", "fp32", "-k", "accuracy and opt").assert_outcomes(passed=1)
    (artifact,) = (pytester.path / ".harness" / "engines" / "onnxruntime").glob("*.bin")
    artifact.write_bytes(artifact.read_bytes()[:100])  # truncated, as by a full disk
    result = pytester.runpytest(*FAST, "--precision", "fp32", "-k", "accuracy and opt", "--results", "r.json")
    result.assert_outcomes(passed=1)
    # Counted by name: an in-process pytester session may add pytest's own assert-rewrite warnings.
    assert result.stdout.str().count("EngineCacheWarning:") == 1
    result.stdout.fnmatch_lines(["*EngineCacheWarning*identity*SHA-256 does not match*rebuilding*"])
    assert results_of(pytester, "r.json")["tests"][0]["build"]["cached"] is False  # type: ignore[index]


@pytest.mark.parametrize(
    ("option", "bad", "outcomes"),
    [
        ("--precision", "fp32,fp99", {"passed": 6, "failed": 1}),
        ("--backend", "ort,tensorrtt", {"passed": 12, "skipped": 12, "failed": 1}),
    ],
)
def test_unknown_selection_fails_its_own_item_and_the_rest_runs(
    pytester: pytest.Pytester, option: str, bad: str, outcomes: dict[str, int]
) -> None:
    make_project(pytester, "CASES = [IDENTITY]")
    result = pytester.runpytest(*FAST, option, bad)
    result.assert_outcomes(**outcomes)
    unknown = bad.split(",")[1]
    result.stdout.fnmatch_lines([f"*unknown {option[2:]} '{unknown}' in {option}*known:*Fix: use one of those names*"])


@pytest.mark.parametrize("selection", [("-k", "identity and opt"), ("-m", "gpu"), ("-k", "nothing_matches")])
def test_a_selection_error_survives_deselection(pytester: pytest.Pytester, selection: tuple[str, str]) -> None:
    """`-k identity --precision fp32,fp61` used to deselect the error item: rc 0, the typo never mentioned."""
    make_project(pytester, "CASES = [IDENTITY]")
    result = pytester.runpytest(*FAST, *selection, "--precision", "fp32,fp61")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert result.parseoutcomes()["failed"] == 1
    result.stdout.fnmatch_lines(["*unknown precision 'fp61' in --precision*Fix: use one of those names*"])


def _bad_case(name: str, change: str) -> str:
    return f"CASES = [IDENTITY, dataclasses.replace(IDENTITY, name={name!r}, {change})]"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            "profiles=(Profile(min={'x': (1, 9, 1)}, opt={'x': (3, 4, 5)}, max={'x': (6, 8, 10)}),)",
            "*case 'broken': profile 0 input 'x': dim 1 has min 9 > max 8; swap them or fix the profile*",
        ),
        (
            "profiles=(Profile(min={'x': (1, 1, 1)}, opt={'x': (3, 9, 5)}, max={'x': (6, 8, 10)}),)",
            "*case 'broken': profile 0 input 'x': dim 1 has opt 9 outside [[]min 1, max 8[]]; move opt inside*",
        ),
        (
            "tolerances={(Precision.FP32, 'z'): Tolerance(mean_rel=1e-6)}",
            "*case 'broken': a tolerance is given for output 'z' at fp32, but the case has no such output*rename or remove it*",
        ),
        (
            "tolerances={(Precision.FP32, 'y'): Tolerance(mean_rel=1e-2)}",
            "*case 'broken': the tolerance for output 'y' at fp32 raises*without a justification*",
        ),
    ],
    ids=["min-above-max", "opt-outside", "tolerance-unknown-output", "tolerance-raised-silently"],
)
def test_bad_case_definition_errors_that_case_only(pytester: pytest.Pytester, change: str, message: str) -> None:
    make_project(pytester, _bad_case("broken", change))
    result = pytester.runpytest(*FAST, "--precision", "fp32")
    result.assert_outcomes(passed=6, errors=6)
    result.stdout.fnmatch_lines([f"*CaseDefinitionError: {message}"])


CASE_FUNCTIONS = (
    "def no_model():\n"
    "    raise RuntimeError('no model today')\n"
    "def dividing_reference(inputs):\n"
    "    scale = 1 / 0\n"
    "    return {'y': inputs['x'] * scale}\n"
    "def float64_inputs(shapes, rng):\n"
    "    return {'x': rng.standard_normal(shapes['x'])}\n"
    "def failing_inputs(shapes, rng):\n"
    "    return {'x': rng.standard_normal(shapes['y'])}\n"
)


@pytest.mark.parametrize(
    ("change", "outcomes", "message"),
    [
        (
            "onnx_model=no_model",
            {"passed": 7, "failed": 1, "errors": 6},
            (
                "*case 'broken': its onnx_model function raised RuntimeError: no model today (at conftest.py:*); "
                "fix the case's onnx_model*"
            ),
        ),
        (
            "reference=dividing_reference",
            {"passed": 11, "failed": 3},
            (
                "*case 'broken': its reference function raised ZeroDivisionError: division by zero "
                "(at conftest.py:*); fix the case's reference*"
            ),
        ),
        (
            "generate_inputs=float64_inputs",
            {"passed": 8, "errors": 6},
            (
                "*case 'broken': its generate_inputs(shapes, rng) returned input 'x' as float64, but the case declares "
                "float32; generate float32 (e.g. .astype(np.float32)) or fix TensorSpec('x', ...)*"
            ),
        ),
        (
            "generate_inputs=failing_inputs",
            {"passed": 8, "errors": 6},
            (
                "*case 'broken': its generate_inputs function raised KeyError: 'y' (at conftest.py:*); "
                "fix the case's generate_inputs*"
            ),
        ),
    ],
    ids=["onnx-model-raises", "reference-raises", "float64-inputs", "inputs-raise"],
)
def test_a_failing_case_function_names_the_case_the_function_and_the_fix(
    pytester: pytest.Pytester, change: str, outcomes: dict[str, int], message: str
) -> None:
    """They used to surface as a bare RuntimeError, ZeroDivisionError or ONNX Runtime INVALID_ARGUMENT."""
    make_project(pytester, CASE_FUNCTIONS + _bad_case("broken", change))
    pytester.makepyfile(test_matrix="from harness.suite import test_build, test_accuracy, test_latency\n")
    result = pytester.runpytest(*FAST, "--precision", "fp32", "--results", "r.json")
    result.assert_outcomes(**outcomes)
    result.stdout.fnmatch_lines([f"*{message}"])
    verdicts = {test["id"]: test["verdict"] for test in results_of(pytester, "r.json")["tests"]}  # type: ignore[attr-defined]
    assert {verdicts[f"test_{kind}[identity-fp32-opt-ort]"] for kind in ("accuracy", "latency")} == {"pass"}


def test_reference_shape_disagreeing_with_model_fails_that_case(pytester: pytest.Pytester) -> None:
    make_project(pytester, _bad_case("wrong_ref", "reference=lambda inputs: {'y': np.zeros((1, 2))}"))
    result = pytester.runpytest(*FAST, "--precision", "fp32", "-k", "accuracy")
    result.assert_outcomes(passed=3, failed=3)
    result.stdout.fnmatch_lines(
        [
            (
                "*OutputMismatchError: case 'wrong_ref': output 'y': the reference has shape [[]1, 2[]] but the model"
                " produced*fix the case's reference (or its model)*"
            )
        ]
    )


def test_shape_outside_profile_is_refused_before_running(pytester: pytest.Pytester) -> None:
    inputs = "generate_inputs=lambda shapes, rng: {'x': np.zeros((7, 1, 1), np.float32)}"
    make_project(pytester, _bad_case("too_big", inputs))
    result = pytester.runpytest(*FAST, "--precision", "fp32")
    result.assert_outcomes(passed=6, failed=6)
    result.stdout.fnmatch_lines(
        [
            (
                "*ShapeOutsideProfileError: case 'too_big': input 'x' shape [[]7, 1, 1[]] is outside profile 0: "
                "dim 0 = 7 not in [[]1, 6[]]*use a shape inside the profile or add a profile that covers it*"
            )
        ]
    )


def test_build_failure_errors_that_case_with_the_backend_log(pytester: pytest.Pytester) -> None:
    model = (
        "def broken_model():\n"
        "    model = IDENTITY.onnx_model()\n"
        "    model.graph.node[-1].op_type = 'NoSuchOp'\n"
        "    return model\n"
    )
    make_project(pytester, model + _bad_case("unbuildable", "onnx_model=broken_model"))
    result = pytester.runpytest(*FAST, "--precision", "fp32", "--results", "r.json")
    result.assert_outcomes(passed=6, errors=6)
    result.stdout.fnmatch_lines(
        ["*BuildError: case 'unbuildable': ONNX Runtime could not build the fp32 model*NoSuchOp*"]
    )
    verdicts = {test["id"]: test["verdict"] for test in results_of(pytester, "r.json")["tests"]}  # type: ignore[attr-defined]
    assert verdicts["test_accuracy[unbuildable-fp32-opt-ort]"] == "error"
    assert verdicts["test_accuracy[identity-fp32-opt-ort]"] == "pass"


def test_duplicate_case_names_are_refused(pytester: pytest.Pytester) -> None:
    make_project(pytester, "CASES = [IDENTITY, IDENTITY]")
    result = pytester.runpytest(*FAST)
    result.stdout.fnmatch_lines(["*case 'identity': two registered cases share this name*"])
    assert result.ret != 0


def test_no_cases_is_a_skip_with_the_fix(pytester: pytest.Pytester) -> None:
    make_project(pytester, "CASES = []")
    result = pytester.runpytest(*FAST, "-rs")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["*no harness cases or backends selected*check pytest_harness_cases*"])


def test_gpu_tests_skip_without_gpu_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("import pytest\n@pytest.mark.gpu\ndef test_needs_gpu():\n    pass\n")
    result = pytester.runpytest(*FAST, "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*needs a GPU: run with --gpu*"])


def test_gpu_option_without_tensorrt_or_gpu_is_a_usage_error(pytester: pytest.Pytester) -> None:
    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("TensorRT is installed here: --gpu is no usage error")
    make_project(pytester, "CASES = [IDENTITY]")  # a session that selects harness tests: one that does not loads none
    result = pytester.runpytest(*FAST, "--gpu")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    expected = "backends trt, trt-net need tensorrt, which cannot be loaded here (No module named 'tensorrt'); install"
    cuda_problem = gpu_problem()  # the same message leads when cuda-python or the GPU is missing too
    prefix = f"{cuda_problem}; " if cuda_problem else ""
    line = f"*trt-harness: {prefix}{expected} it with: pip install 'trt-harness[gpu]'*".replace("[gpu]", "[[]gpu[]]")
    result.stderr.fnmatch_lines([line])


def test_rtx_backend_without_its_extra_is_a_usage_error_with_the_pip_command(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TensorRT for RTX builds without a GPU, so its tests would run here: a missing library stops the
    session at once, also without --gpu, instead of skipping every test."""
    monkeypatch.setitem(sys.modules, "tensorrt_rtx", None)  # as if the `rtx` extra were not installed
    make_project(pytester, "CASES = [IDENTITY]")
    result = pytester.runpytest(*FAST, "--backend", "rtx,ort")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*trt-harness: backend rtx needs tensorrt_rtx, which cannot be loaded here (*); install it with: pip install 'trt-harness[[]rtx[]]'*"
        ]
    )


def test_repository_conftest_uses_the_installed_plugin() -> None:
    """The entry point and the root conftest name the plugin alike, so it is registered once."""
    import importlib.metadata

    names = [ep.name for ep in importlib.metadata.entry_points(group="pytest11") if ep.value == "harness.plugin"]
    assert names == ["harness.plugin"]
    assert "harness.plugin" in Path(__file__).parents[1].joinpath("conftest.py").read_text()


def test_unwritable_results_path_is_refused_at_start_up_with_the_fix(pytester: pytest.Pytester) -> None:
    make_project(pytester, "CASES = [IDENTITY]")
    pytester.makefile(".txt", blocker="a file where a directory should be")
    result = pytester.runpytest(*FAST, "--precision", "fp32", "--results", "blocker.txt/results.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "passed" not in result.stdout.str()  # refused before any test ran
    result.stderr.fnmatch_lines(
        [("*--results / harness_results: cannot write *blocker.txt/results.json: *blocker.txt, above *, is not a "
         "directory; pass --results a writable file path*")]
    )  # fmt: skip


def test_build_only_from_the_ini_file_builds_on_onnx_runtime_and_the_command_line_overrides_it(
    pytester: pytest.Pytester,
) -> None:
    make_project(pytester, "CASES = [IDENTITY]")
    pytester.makepyfile(test_matrix="from harness.suite import test_build, test_accuracy, test_latency\n")
    pytester.makeini("[pytest]\nharness_build_only = yes\n")
    result = pytester.runpytest(*FAST, "--precision", "fp32,fp16", "--results", "results.json", "-rs")
    result.assert_outcomes(passed=2, skipped=12)  # one engine per precision; every run test skipped
    result.stdout.fnmatch_lines(["*SKIPPED [[]12[]]*build-only run*"])
    tests = results_of(pytester)["tests"]  # type: ignore[index]
    build = tests[0]
    assert build["id"] == "test_build[identity-fp32-build-ort]" and build["build"]["artifact_bytes"] > 0
    # the skipped run tests are recorded too (skipped before their fixture ran): the file counts what pytest counts
    skipped = [test for test in tests if test["verdict"] == "skip"]
    assert len(skipped) == 12 and all("build-only run" in test["message"] for test in skipped)
    overridden = pytester.runpytest(*FAST, "--precision", "fp32", "--build-only=no")
    overridden.assert_outcomes(passed=7)  # build, 3 accuracy and 3 latency tests run


def test_the_session_closes_every_engine_it_loaded(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """Engine.close() runs at session end for each loaded engine (here an ONNX Runtime one that logs it)."""
    pytester.makepyfile(
        closing_backend=(
            "import os\n"
            "from harness.backends.ort import OnnxRuntimeBackend, OnnxRuntimeEngine\n"
            "class LoggingEngine(OnnxRuntimeEngine):\n"
            "    def close(self):\n"
            "        with open(os.environ['CLOSED_LOG'], 'a') as log:\n"
            "            log.write('closed\\n')\n"
            "        super().close()\n"
            "class ClosingBackend(OnnxRuntimeBackend):\n"
            "    def load(self, artifact, request):\n"
            "        return LoggingEngine(super().load(artifact, request).session)\n"
        )
    )
    make_project(pytester, "CASES = [IDENTITY]")
    pytester.makeconftest(
        pytester.path.joinpath("conftest.py").read_text() + "\nimport dataclasses as _dc\n"
        "from harness.backends import BUILTIN_BACKENDS\n"
        "def pytest_harness_backends(config):\n"
        "    return {'ort': _dc.replace(BUILTIN_BACKENDS['ort'], factory='closing_backend:ClosingBackend')}\n"
    )
    monkeypatch.syspath_prepend(str(pytester.path))
    monkeypatch.setenv("CLOSED_LOG", str(pytester.path / "closed.log"))
    pytester.runpytest(*FAST, "--precision", "fp32,fp16").assert_outcomes(passed=12)
    assert (pytester.path / "closed.log").read_text().count("closed") == 2  # one engine per precision


@pytest.mark.parametrize(
    ("registered", "expected"),
    [
        (
            "{'mine': {'factory': 'harness.backends.ort:OnnxRuntimeBackend'}}",
            "backend 'mine' is a dict, not a descriptor",
        ),
        (
            "{'mine': dataclasses.replace(BUILTIN_BACKENDS['ort'], factory='harness.backends.ort')}",
            "backend 'mine': factory 'harness.backends.ort' is not 'module:callable'",
        ),
        (
            "{'mine': dataclasses.replace(BUILTIN_BACKENDS['ort'], factory='harness.backends.ort:NoSuchClass')}",
            "backend mine needs onnxruntime, which cannot be loaded here (harness.backends.ort has no 'NoSuchClass'*",
        ),
        (
            "{'mine': dataclasses.replace(BUILTIN_BACKENDS['ort'], options_type=dict)}",
            "backend 'mine': options_type must be a dataclass subclass of harness.backends.BackendOptions*",
        ),
    ],
    ids=["not-a-descriptor", "factory-without-colon", "factory-that-does-not-exist", "options-not-backend-options"],
)
def test_a_broken_plugin_backend_is_a_usage_error_naming_it(
    pytester: pytest.Pytester, registered: str, expected: str
) -> None:
    make_project(pytester, "CASES = [IDENTITY]")
    pytester.makeconftest(
        pytester.path.joinpath("conftest.py").read_text() + "\nfrom harness.backends import BUILTIN_BACKENDS\n"
        f"def pytest_harness_backends(config):\n    return {registered}\n"
    )
    result = pytester.runpytest(*FAST, "--backend", "mine")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*trt-harness: {expected}*"])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_build_only_of_a_backend_that_builds_on_a_gpu_needs_gpu_instead_of_passing_empty(
    pytester: pytest.Pytester,
) -> None:
    make_project(pytester, "CASES = [IDENTITY]")
    result = pytester.runpytest(*FAST, "--backend", "trt", "--build-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--build-only with backend trt builds on a GPU: add --gpu*"])


def test_build_only_with_gpu_of_a_backend_that_builds_without_one_needs_no_gpu(pytester: pytest.Pytester) -> None:
    pytest.importorskip("tensorrt_rtx", reason="TensorRT for RTX is not installed: pip install 'trt-harness[rtx]'")
    make_project(pytester, "CASES = [IDENTITY]")
    pytester.makepyfile(test_matrix="from harness.suite import test_build, test_accuracy\n")
    result = pytester.runpytest(*FAST, "--gpu", "--backend", "rtx", "--build-only", "--precision", "fp32")
    result.assert_outcomes(passed=1, skipped=3)  # built on this GPU-less machine; accuracy skipped


def test_build_only_update_writes_the_build_costs_alone(pytester: pytest.Pytester) -> None:
    """A build-only run updates the build test's costs (the cost gate's baseline), nothing of the tests it skipped."""
    make_project(pytester, "CASES = [IDENTITY]")
    pytester.makepyfile(test_matrix="from harness.suite import test_build, test_latency\n")
    result = pytester.runpytest(*FAST, "--precision", "fp32", "--build-only", "--update-baselines")
    result.assert_outcomes(passed=1, skipped=3)
    (path,) = (pytester.path / "baselines").glob("*/*.json")
    assert list(json.loads(path.read_text())["entries"]) == ["test_build[identity-fp32-build-ort]"]


@pytest.mark.parametrize(
    ("ini", "runs_tests"), [("true", False), ("True", False), ("1", False), ("off", True), ("no", True)]
)
def test_switches_take_the_usual_spellings_of_yes_and_no(pytester: pytest.Pytester, ini: str, runs_tests: bool) -> None:
    make_project(pytester, "CASES = [IDENTITY]")
    pytester.makepyfile(test_matrix="from harness.suite import test_build, test_accuracy\n")
    pytester.makeini(f"[pytest]\nharness_build_only = {ini}\n")
    result = pytester.runpytest(*FAST, "--precision", "fp32", "--results", "results.json")
    result.assert_outcomes(passed=4 if runs_tests else 1, skipped=0 if runs_tests else 3)
    assert results_of(pytester)["settings"]["build_only"] is not runs_tests  # type: ignore[index]


def test_a_switch_that_swallowed_a_path_says_so(pytester: pytest.Pytester) -> None:
    make_project(pytester, "CASES = [IDENTITY]")
    result = pytester.runpytest(*FAST, "--build-only", "test_matrix.py")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            (
                "*--build-only / harness_build_only takes yes or no*, got 'test_matrix.py'; *write `--build-only yes "
                "test_matrix.py`*"
            )
        ]
    )


@pytest.mark.parametrize(
    ("option", "where", "message"),
    [
        ("--engine-cache", "/dev/null", ("*--engine-cache / harness_engine_cache must be a directory, but /dev/null is "
         "not a directory; pass a directory or off*")),
        ("--engine-cache", "blocker.txt/engines", ("*--engine-cache / harness_engine_cache must be a directory, but "
         "*blocker.txt, above *blocker.txt/engines, is not a directory*")),
        ("--baselines", "blocker.txt", ("*--baselines / harness_baselines must be a directory, but *blocker.txt is not "
         "a directory; pass a directory (the folder holding*")),
    ],
)  # fmt: skip
def test_a_file_where_a_folder_belongs_is_a_usage_error(
    pytester: pytest.Pytester, option: str, where: str, message: str
) -> None:
    """--engine-cache /dev/null used to error every test with NotADirectoryError; --baselines FILE gated nothing."""
    make_project(pytester, "CASES = [IDENTITY]")
    pytester.makefile(".txt", blocker="a file where a directory should be")
    result = pytester.runpytest(*FAST, "--precision", "fp32", option, where)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


@pytest.mark.parametrize("name", ["../../escaped", "sub/escaped"])
def test_an_unsafe_case_name_errors_that_case_and_writes_nothing_outside_the_cache(
    pytester: pytest.Pytester, name: str
) -> None:
    """`Case(name="../../escaped")` used to write its engine outside --engine-cache."""
    make_project(pytester, _bad_case(name, "description='escaping'"))
    result = pytester.runpytest(*FAST, "--precision", "fp32")
    result.assert_outcomes(passed=6, errors=6)
    result.stdout.fnmatch_lines(
        [f"*CaseDefinitionError: case '{name}': its name '{name}' is not allowed: a case name may hold only letters*"]
    )
    assert not list(pytester.path.rglob("*escaped*"))  # its engine was never built, in the cache or out of it


def test_a_plugin_backend_declares_it_builds_from_code_in_its_descriptor(pytester: pytest.Pytester) -> None:
    """Capabilities are descriptor fields: a plugin backend that builds from code says so there (no attribute
    probing on the backend object), and --keep-fp32, which changes only the derived model, skips its points."""
    make_project(pytester, "CASES = [IDENTITY]")
    pytester.makeconftest(
        pytester.path.joinpath("conftest.py").read_text() + "\nfrom harness.backends import BUILTIN_BACKENDS\n"
        "def pytest_harness_backends(config):\n"
        "    return {'mine': dataclasses.replace(BUILTIN_BACKENDS['ort'], builds_from_code=True, default_on=None)}\n"
    )
    result = pytester.runpytest(
        *FAST,
        "--backend",
        "mine,ort",
        "--precision",
        "fp16",
        "--keep-fp32",
        "identity",
        "-k",
        "accuracy and opt",
        "-rs",
    )
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*(mine) builds identity from its define_network, which cannot keep identity*"])


# A plugin backend with options of its own: a BackendOptions subclass its descriptor names; it records what it got.
OWN_OPTIONS_BACKEND = """
import dataclasses
import json
from pathlib import Path

from harness.backends import BackendOptions
from harness.backends.ort import OnnxRuntimeBackend


@dataclasses.dataclass(frozen=True)
class TunedOptions(BackendOptions):
    flavour: str = "plain"
    repeats: int = 1
    verbose: bool = False


class TunedBackend(OnnxRuntimeBackend):
    def __init__(self, options: TunedOptions) -> None:
        super().__init__(options)
        got = {"type": type(options).__name__, **dataclasses.asdict(options)}
        Path("options.json").write_text(json.dumps(got, default=str))
"""


def tuned_project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(tuned_backend=OWN_OPTIONS_BACKEND)
    make_project(pytester, "CASES = [IDENTITY]")
    pytester.makeconftest(
        pytester.path.joinpath("conftest.py").read_text() + "\nfrom harness.backends import BUILTIN_BACKENDS\n"
        "from tuned_backend import TunedOptions\n"
        "def pytest_harness_backends(config):\n"
        "    tuned = dataclasses.replace(BUILTIN_BACKENDS['ort'], factory='tuned_backend:TunedBackend',\n"
        "                                options_type=TunedOptions, default_on=None)\n"
        "    return {'tuned': tuned}\n"
    )
    monkeypatch.syspath_prepend(str(pytester.path))


def test_a_plugin_backend_extends_backend_options_with_its_own_resolved_like_the_rest(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its own fields come from --backend-option over the ini's harness_backend_options, name by name, converted
    to the field's type; the common options travel with them."""
    tuned_project(pytester, monkeypatch)
    pytester.makeini("[pytest]\nharness_backend_options =\n    flavour=ini\n    repeats=3\n")
    result = pytester.runpytest(
        *FAST, "--backend", "tuned", "--precision", "fp32", "--cpu-threads", "2",
        "--backend-option", "flavour=cli", "--backend-option", "verbose=yes", "-k", "accuracy",
    )  # fmt: skip
    result.assert_outcomes(passed=3)
    got = json.loads((pytester.path / "options.json").read_text())
    assert got["type"] == "TunedOptions"
    assert (got["flavour"], got["repeats"], got["verbose"], got["cpu_threads"]) == ("cli", 3, True, 2)


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ("colour=red", "*--backend-option colour: no selected backend has an option 'colour' (theirs: flavour, *"),
        ("repeats=many", "*backend 'tuned': --backend-option repeats takes a whole number, got 'many'*"),
        ("repeats", "*takes NAME=VALUE, got 'repeats'*"),
    ],
    ids=["unknown-name", "wrong-type", "no-value"],
)
def test_a_backend_option_no_selected_backend_takes_is_a_usage_error(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, option: str, expected: str
) -> None:
    tuned_project(pytester, monkeypatch)
    result = pytester.runpytest(*FAST, "--backend", "tuned", "--backend-option", option)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([expected])
    assert not (pytester.path / "options.json").exists()
