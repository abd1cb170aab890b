"""Progress of long builds: the lines a watcher sees, TensorRT's IProgressMonitor relayed (on the double and on
TensorRT for RTX's real builder), and the plugin printing them past pytest's capture."""

from __future__ import annotations

import textwrap

import pytest

from harness.progress import BuildProgressLines


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_short_build_prints_nothing() -> None:
    lines: list[str] = []
    clock = Clock()
    progress = BuildProgressLines("mnist-fp16-p0 on tensorrt", lines.append, clock)
    progress.phase_started("Building engine", None, 10)
    clock.now = 0.5
    progress.step_done("Building engine", 4)
    progress.finished(0.6, built=True)
    assert lines == []


def test_a_long_build_names_its_phase_chain_at_most_once_a_second_and_its_time() -> None:
    lines: list[str] = []
    clock = Clock()
    progress = BuildProgressLines("mnist-fp16-p0 on tensorrt", lines.append, clock)
    progress.phase_started("Building engine", None, 3)
    progress.phase_started("Tactic timing", "Building engine", 200)
    clock.now = 1.2
    progress.step_done("Tactic timing", 49)
    clock.now = 1.7
    progress.step_done("Tactic timing", 99)  # within a second of the last line: silent
    clock.now = 2.3
    progress.step_done("Tactic timing", 149)
    progress.phase_finished("Tactic timing")
    progress.finished(2.5, built=True)
    assert lines == [
        "building mnist-fp16-p0 on tensorrt (1 s): Building engine 0/3 › Tactic timing 50/200",
        "building mnist-fp16-p0 on tensorrt (2 s): Building engine 0/3 › Tactic timing 150/200",
        "built mnist-fp16-p0 on tensorrt in 2.5 s",
    ]


def test_a_long_build_without_phases_gets_one_closing_line_and_a_failure_says_so() -> None:
    lines: list[str] = []
    BuildProgressLines("big-fp32-p0 on onnxruntime", lines.append, Clock()).finished(1.4, built=True)
    BuildProgressLines("big-fp16-p0 on onnxruntime", lines.append, Clock()).finished(3.0, built=False)
    assert lines == ["built big-fp32-p0 on onnxruntime in 1.4 s", "failed to build big-fp16-p0 on onnxruntime in 3.0 s"]


def test_the_plugin_prints_long_builds_past_the_output_capture(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every build counts as long here (the threshold set to 0): each prints its closing line, though
    pytest captures the output of the tests that trigger the builds."""
    monkeypatch.setattr("harness.progress.LONG_BUILD_S", 0.0)
    pytester.makeconftest(
        textwrap.dedent(
            """
            from cases import identity

            def pytest_harness_cases(config):
                return [identity.CASE]
            """
        )
    )
    pytester.makepyfile(test_matrix="from harness.suite import test_build")
    result = pytester.runpytest_inprocess("--precision=fp32", "--engine-cache=off", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.re_match_lines([r"trt-harness: built identity-fp32-p0 on onnxruntime in \d+\.\d s"])
