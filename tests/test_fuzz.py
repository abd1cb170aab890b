"""Shape fuzzing (harness/fuzz.py and the suite's fuzz tests): strategies honour profiles and tied
dimensions, failures shrink to a minimal shape, shapes outside profiles are refused clearly."""

from __future__ import annotations

import inspect
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cases import ALL_CASES, conv_add_relu, identity
from harness import fuzz, suite
from harness.case import Case, check_shapes_in_profile
from harness.errors import ShapeOutsideProfileError

each_case = pytest.mark.parametrize("case", ALL_CASES, ids=lambda case: case.name)


@each_case
@settings(max_examples=30, derandomize=True, deadline=None)
@given(data=st.data())
def test_drawn_shapes_lie_inside_the_profile_with_tied_dims_equal(case: Case, data: st.DataObject) -> None:
    shapes = data.draw(fuzz.shapes_inside(case, 0))
    check_shapes_in_profile(case, 0, shapes)  # raises when outside or tied dims disagree


@each_case
@settings(max_examples=50, derandomize=True, deadline=None)
@given(data=st.data())
def test_drawn_outside_shapes_are_refused_naming_the_input(case: Case, data: st.DataObject) -> None:
    shapes, culprit = data.draw(fuzz.shapes_outside(case, 0))
    with pytest.raises(ShapeOutsideProfileError, match=f"'{culprit}'"):
        check_shapes_in_profile(case, 0, shapes)


def test_tied_dims_are_drawn_once() -> None:
    """conv_add_relu's x and residual share N, H and W: one draw each."""
    assert fuzz.dim_ranges(conv_add_relu.CASE, 0) == {"N": (1, 8), "H": (8, 64), "W": (8, 64)}
    assert fuzz.corners(identity.CASE, 0) == [{"x": (1, 1, 1)}, {"x": (3, 4, 5)}, {"x": (6, 8, 10)}]


def test_profiles_are_registered_as_the_issue_asks() -> None:
    assert fuzz.fuzz_settings("harness-ci", 7).max_examples == 7  # registers them, as a fuzz test does
    ci = settings.get_profile("harness-ci")
    assert ci.derandomize and ci.database is None and ci.deadline is None and ci.max_examples <= 50
    assert settings.get_profile("harness-nightly").max_examples >= 1000
    assert settings.get_profile("harness-dev").deadline is None


def test_fuzz_tests_never_use_the_benchmark_fixture() -> None:
    for test in (suite.test_fuzz_inside_profile, suite.test_fuzz_outside_profile):
        assert "benchmark" not in inspect.signature(test).parameters


MATRIX = "from harness.suite import test_fuzz_inside_profile, test_fuzz_outside_profile\n"


def test_fuzz_runs_every_case_on_one_engine_per_profile(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("from cases import ALL_CASES\ndef pytest_harness_cases(config):\n    return ALL_CASES\n")
    pytester.makepyfile(test_matrix=MATRIX)
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--hypothesis-profile", "harness-ci", "--fuzz-examples", "5", "--results", "r.json"
    )
    # inside/outside x (identity: fp32, fp16; conv_add_relu and mnist: fp32, fp16, int8); tf32, bf16 skip on ort
    result.assert_outcomes(passed=16, skipped=12)
    builds = {t["build"]["key"] for t in json.loads((pytester.path / "r.json").read_text())["tests"] if t["build"]}
    assert len(builds) == 8  # one engine per (case, precision, profile), shared by inside and outside


def test_a_failure_shrinks_to_a_minimal_shape_and_says_how_to_reproduce(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        "import dataclasses\n"
        "import numpy as np\n"
        "from cases.identity import CASE, reference\n"
        "def wrong_for_big_first_dims(inputs):\n"
        "    out = reference(inputs)\n"
        "    if inputs['x'].shape[0] >= 4:\n"
        "        out['y'] = out['y'] + 1.0\n"
        "    return out\n"
        "def pytest_harness_cases(config):\n"
        "    return [dataclasses.replace(CASE, name='flaky', reference=wrong_for_big_first_dims)]\n"
    )
    pytester.makepyfile(test_matrix=MATRIX)
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--hypothesis-profile", "harness-dev", "--precision", "fp32", "-k", "inside"
    )
    result.assert_outcomes(failed=1)
    # Hypothesis shrinks every dimension to its minimum and d0 to the first bad value, and says how to
    # reproduce the failure.
    # (the header above the example differs between Hypothesis versions: "Falsifying example",
    # "Failing test case")
    result.stdout.fnmatch_lines(["*matches_reference(*", "*shapes={'x': (4, 1, 1)}*"])
    result.stdout.fnmatch_lines(["*flaky-fp32-fuzz-ort at shapes {'x': (4, 1, 1)}*"])
    result.stdout.fnmatch_lines(["*@reproduce_failure*"])


def test_a_failing_corner_is_reported_as_the_explicit_example(pytester: pytest.Pytester) -> None:
    """When drawn shapes pass but a profile corner fails, the corner is named."""
    pytester.makeconftest(
        "import dataclasses\n"
        "from cases.identity import CASE, reference\n"
        "def wrong_at_opt(inputs):\n"
        "    out = reference(inputs)\n"
        "    if inputs['x'].shape == (3, 4, 5):\n"
        "        out['y'] = out['y'] + 1.0\n"
        "    return out\n"
        "def pytest_harness_cases(config):\n"
        "    return [dataclasses.replace(CASE, name='edge', reference=wrong_at_opt)]\n"
    )
    pytester.makepyfile(test_matrix=MATRIX)
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--hypothesis-profile", "harness-ci", "--precision", "fp32", "-k", "inside"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*explicit example {'x': (3, 4, 5)} failed*edge-fp32-fuzz-ort*"])
