"""Spec files end to end, in throw-away pytest sessions (pytester): no conftest, no test module, only a model
and a spec, as a new user has them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.spec_support import linear_model, onnx_test_layout

REPO = Path(__file__).resolve().parents[1]
FAST = ("--latency-budget", "0.02", "-p", "no:cacheprovider", "-p", "no:randomly", "--results", "results.json")


def documented_example() -> str:
    """The first TOML block of the spec files' page (docs/spec.md): the test runs exactly what the docs show."""
    section = (REPO / "docs" / "spec.md").read_text().split("## Your own model: a spec file", 1)[1]
    match = re.search(r"```toml\n(.*?)```", section, re.DOTALL)
    assert match, "docs/spec.md's spec section has no TOML example"
    return match.group(1)


def recorded(pytester: pytest.Pytester) -> dict[str, dict[str, object]]:
    document = json.loads((pytester.path / "results.json").read_text())
    return {test["id"]: test for test in document["tests"]}


def test_documented_example_runs_from_an_empty_folder(pytester: pytest.Pytester) -> None:
    linear_model(pytester.path / "classifier.onnx")
    (pytester.path / "models.toml").write_text(documented_example())
    result = pytester.runpytest("--harness-spec", "models.toml", "--hypothesis-profile", "harness-ci", "-v", *FAST)
    # fp32/fp16/int8 x build, 3 corners x accuracy and latency, fuzz inside and outside; fp32 accuracy and its
    # inside fuzz skip as tautological; test_agreement skips (ort has no twin backend)
    result.assert_outcomes(passed=3 + 6 + 9 + 2 + 3, skipped=5)
    result.stdout.fnmatch_lines(["*models.toml::test_accuracy?classifier-fp32-opt-ort? SKIPPED (tautolo*"])
    tests = recorded(pytester)
    accuracy = tests["test_accuracy[classifier-int8-max-ort]"]
    assert accuracy["verdict"] == "pass" and accuracy["compared_with"] == "onnxruntime fp32 reference"
    assert accuracy["input_shapes"] == {"pixels": [16, 16]}
    skipped = tests["test_accuracy[classifier-fp32-opt-ort]"]
    assert skipped["verdict"] == "skip" and "tautological" in str(skipped["message"])
    assert tests["test_latency[classifier-fp32-opt-ort]"]["verdict"] == "pass"


def test_pyproject_table_is_read_without_an_option(pytester: pytest.Pytester) -> None:
    linear_model(pytester.path / "classifier.onnx")
    pytester.makepyprojecttoml(
        '[[tool.trt-harness.case]]\nmodel = "classifier.onnx"\nprecisions = ["fp16"]\n'
        "[[tool.trt-harness.case.profile]]\nbatch = [1, 2, 4]\n[tool.trt-harness.case.inputs.pixels]\nuniform = [0.0, 1.0]\n"
    )
    result = pytester.runpytest("-k", "accuracy", "-v", *FAST)
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*pyproject.toml::test_accuracy*classifier-fp16-max-ort*PASSED*"])


def test_bad_spec_entries_fail_their_own_items_and_the_others_run(pytester: pytest.Pytester) -> None:
    linear_model(pytester.path / "classifier.onnx")
    (pytester.path / "good.toml").write_text(
        'case = [{ model = "classifier.onnx", precisions = ["fp16"], profile = [{ batch = [1, 2, 4] }], '
        "inputs = { pixels = { uniform = [0.0, 1.0] } } }]"
    )
    (pytester.path / "bad.toml").write_text(
        '[[case]]\nname = "typo"\nmodel = "classifier.onnx"\nlatency_treshold = 0.1\n'
        '[[case]]\nname = "no_profile"\nmodel = "classifier.onnx"\n'
    )
    result = pytester.runpytest("--harness-spec", "good.toml,bad.toml", "-k", "accuracy or spec", "-v", *FAST)
    result.assert_outcomes(passed=3, failed=2)
    output = result.stdout.str()
    assert "good.toml::test_accuracy[classifier-fp16-opt-ort] PASSED" in output  # the first spec given holds them
    assert (
        "bad.toml: case[0].latency_treshold: unknown key 'latency_treshold'; did you mean 'latency_threshold'?"
        in output
    )
    assert "bad.toml: case[1] ('no_profile').profile: dynamic dimension 'batch' (input 'pixels') has no" in output
    # Said where results are read too: the results file, the harness's summary and the HTML report.
    document = json.loads((pytester.path / "results.json").read_text())
    errors = {error["id"]: error["message"] for error in document["input_errors"]}
    assert list(errors) == ["harness-spec-error-0", "harness-spec-error-1"]
    assert "did you mean 'latency_threshold'?" in errors["harness-spec-error-0"]
    section = output.split("= trt-harness =", 1)[1]
    assert "ERROR harness-spec-error-0: " in section and "ERROR harness-spec-error-1: " in section
    report = (pytester.path / "results.html").read_text()
    verdicts = report.split('id="verdicts"', 1)[1]
    assert verdicts.index("harness-spec-error-0") < verdicts.index("test_accuracy[classifier-fp16-")


def test_test_layout_folder_compares_with_its_stored_outputs(pytester: pytest.Pytester) -> None:
    onnx_test_layout(pytester.path / "tiny")
    onnx_test_layout(pytester.path / "broken", corrupt_output=True)
    result = pytester.runpytest("--harness-spec", "tiny,broken", "--precision", "fp32", "-k", "accuracy", *FAST)
    result.assert_outcomes(passed=1, failed=1)  # not tautological: stored outputs are not ONNX Runtime's run
    result.stdout.fnmatch_lines(["*broken-fp32-opt-ort against the stored outputs: output 'y'*"])
    assert recorded(pytester)["test_accuracy[tiny-fp32-opt-ort]"]["compared_with"] == "stored outputs"


def test_spec_cases_join_the_hook_cases_once(pytester: pytest.Pytester) -> None:
    """A repository that imports the matrix tests and registers its own cases runs its spec cases there, once."""
    pytester.makeconftest("from cases.identity import CASE\ndef pytest_harness_cases(config):\n    return [CASE]\n")
    pytester.makepyfile(test_matrix="from harness.suite import test_accuracy\n")
    linear_model(pytester.path / "classifier.onnx")
    (pytester.path / "models.toml").write_text(
        'case = [{ model = "classifier.onnx", precisions = ["fp16"], profile = [{ batch = [1, 2, 4] }], '
        "inputs = { pixels = { uniform = [0.0, 1.0] } } }]"
    )
    result = pytester.runpytest("--harness-spec", "models.toml", "--precision", "fp16", *FAST)
    result.assert_outcomes(passed=6)
    tests = recorded(pytester)
    assert tests["test_accuracy[identity-fp16-opt-ort]"]["compared_with"] == "numpy reference"
    assert tests["test_accuracy[classifier-fp16-opt-ort]"]["compared_with"] == "onnxruntime fp32 reference"
    same_name = 'case = [{ name = "identity", model = "classifier.onnx", profile = [{ batch = [1, 2, 4] }] }]'
    (pytester.path / "models.toml").write_text(same_name)
    again = pytester.runpytest("--harness-spec", "models.toml", "--precision", "fp16", *FAST)
    again.assert_outcomes(passed=3, failed=1)
    assert "'identity' is already the name of a case of the pytest_harness_cases hook; give every case a unique" in (
        again.stdout.str()
    )


def test_ini_key_takes_several_specs_relative_to_the_ini_file(pytester: pytest.Pytester) -> None:
    specs = pytester.mkdir("specs")
    linear_model(specs / "classifier.onnx")
    for name in ("a", "b"):
        (specs / f"{name}.toml").write_text(
            f'case = [{{ name = "{name}", model = "classifier.onnx", precisions = ["fp16"], '
            "profile = [{ batch = [1, 2, 4] }], inputs = { pixels = { uniform = [0.0, 1.0] } } }]"
        )
    pytester.makeini("[pytest]\nharness_spec = specs/a.toml, specs/b.toml\n")
    result = pytester.runpytest("-k", "accuracy", "-v", *FAST)
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(["specs/a.toml::test_accuracy?b-fp16-opt-ort? PASSED*"])
    assert recorded(pytester)["test_accuracy[a-fp16-opt-ort]"]["verdict"] == "pass"


def test_a_spec_outside_what_pytest_collects_fails_with_the_fix_instead_of_running_nothing(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = pytester.mkdir("models")
    linear_model(models / "classifier.onnx")
    (models / "models.toml").write_text(documented_example())
    pytester.mkdir("elsewhere")
    monkeypatch.chdir(pytester.path / "elsewhere")
    result = pytester.runpytest("--harness-spec", "../models/models.toml", "--precision", "fp32", *FAST)
    result.assert_outcomes(failed=1)
    why = "*../models/models.toml: no test of its cases was collected*run pytest in ../models, or name the spec*"
    fix = "pytest ../models/models.toml --harness-spec ../models/models.toml*"
    result.stdout.fnmatch_lines([why + fix])
    spec = "../models/models.toml"
    named = pytester.runpytest(spec, "--harness-spec", spec, "-k", "accuracy", "--precision", "fp16", *FAST)
    named.assert_outcomes(passed=3)


def test_a_failing_test_shows_its_point_not_a_dump_of_its_context(pytester: pytest.Pytester) -> None:
    linear_model(pytester.path / "classifier.onnx")
    spec = (
        documented_example()
        .replace("mean_rel = 0.12", "mean_rel = 1e-9")
        .replace("[case.tolerance.int8]", "[case.tolerance.fp16]")
    )
    (pytester.path / "models.toml").write_text(spec)
    result = pytester.runpytest("--harness-spec", "models.toml", "--precision", "fp16", "-k", "fuzz_inside",
                                "--hypothesis-profile", "harness-ci", *FAST)  # fmt: skip
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    assert "harness_fuzz = PointContext(classifier-fp16-fuzz-ort)" in output
    assert "PointContext(point=" not in output and "array(" not in output
