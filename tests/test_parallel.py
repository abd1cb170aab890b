"""pytest-xdist and concurrent sessions: one results file and one summary per session, every record
kept, latency tests alone on their device, a GPU per worker, results paths never clobbered."""

from __future__ import annotations

import json
import os
from pathlib import Path

import filelock
import pytest

REPO = Path(__file__).resolve().parents[1]
FAST = ("--latency-budget", "0.05", "-p", "no:cacheprovider", "--precision", "fp32,fp16")

# Logs each harness test's call phase (start, end, worker, device) so that overlaps can be checked.
INTERVALS = """
import json, os, time
import pytest

@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    start = time.monotonic()
    try:
        return (yield)
    finally:
        with open(os.environ["INTERVALS_LOG"], "a") as log:
            log.write(json.dumps({"id": item.name, "start": start, "end": time.monotonic(),
                                  "worker": os.environ.get("PYTEST_XDIST_WORKER"),
                                  "gpu": os.environ.get("CUDA_VISIBLE_DEVICES")}) + "\\n")
"""


def make_project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, backends: str = "") -> None:
    pytester.makeconftest(
        "from cases.identity import CASE as IDENTITY\n"
        "from cases.conv_add_relu import CASE as CONV\n"
        "from tests.trt_support import DOUBLE_BACKENDS\n"
        f"{INTERVALS}\n"
        "def pytest_harness_cases(config):\n"
        "    return [IDENTITY, CONV]\n"
        + ("def pytest_harness_backends(config):\n    return DOUBLE_BACKENDS\n" if backends else "")
    )
    pytester.makepyfile(test_matrix="from harness.suite import test_accuracy, test_latency, test_fuzz_inside_profile\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("INTERVALS_LOG", str(pytester.path / "intervals.jsonl"))
    monkeypatch.setenv("HARNESS_TEST_CUDA", "host")


def intervals(pytester: pytest.Pytester) -> list[dict[str, object]]:
    lines = (pytester.path / "intervals.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_two_workers_write_one_results_file_with_every_record_and_one_summary(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_project(pytester, monkeypatch)
    serial = pytester.runpytest_subprocess(*FAST, "--results", "serial.json", "--hypothesis-profile", "harness-ci")
    parallel = pytester.runpytest_subprocess(
        *FAST, "-n", "2", "--results", "parallel.json", "--hypothesis-profile", "harness-ci"
    )
    assert serial.ret == parallel.ret == 0
    assert parallel.stdout.str().count("== trt-harness ==") == 1
    serial_tests = json.loads((pytester.path / "serial.json").read_text())["tests"]
    parallel_tests = json.loads((pytester.path / "parallel.json").read_text())["tests"]
    assert len(serial_tests) == 2 * 2 * 7  # 2 cases × 2 precisions × (3 accuracy + 3 latency + 1 fuzz)
    assert {t["id"]: t["verdict"] for t in parallel_tests} == {t["id"]: t["verdict"] for t in serial_tests}
    assert {t["worker"] for t in parallel_tests} == {"gw0", "gw1"}  # both workers ran tests


def test_latency_tests_never_overlap_other_work_on_their_device(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_project(pytester, monkeypatch)
    result = pytester.runpytest_subprocess(
        *FAST, "-n", "2", "--results", "r.json", "--hypothesis-profile", "harness-ci"
    )
    assert result.ret == 0
    spans = intervals(pytester)
    timing = [span for span in spans if str(span["id"]).startswith("test_latency")]
    assert timing and len({span["worker"] for span in spans}) == 2
    overlapping = [
        (a["id"], b["id"])
        for a in timing
        for b in spans
        if a is not b and a["start"] < b["end"] and b["start"] < a["end"]  # type: ignore[operator]
    ]
    assert overlapping == []


def test_each_worker_owns_one_gpu_of_cuda_visible_devices(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The TensorRT backends (on the double: no GPU needed) are GPU backends: worker N gets GPU N."""
    make_project(pytester, monkeypatch, backends="double")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    result = pytester.runpytest_subprocess(
        *FAST, "-n", "2", "--backend", "trt", "--results", "r.json", "--hypothesis-profile", "harness-ci"
    )
    assert result.ret == 0
    tests = json.loads((pytester.path / "r.json").read_text())["tests"]
    assert {(t["worker"], t["cuda_visible_devices"]) for t in tests} == {("gw0", "3"), ("gw1", "5")}


def test_a_results_path_another_live_session_writes_is_refused(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_project(pytester, monkeypatch)  # a session of harness tests: one without them takes no results path
    held = filelock.FileLock(pytester.path / ".busy.json.lock", timeout=0)
    with held:  # what a live session holds while it runs
        result = pytester.runpytest("-p", "no:cacheprovider", "--results", "busy.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*busy.json is being written by another live session*pass --results another path*"])


def test_default_results_names_differ_for_sessions_started_together() -> None:
    from harness.settings import _default_results_name

    assert _default_results_name() != _default_results_name()
    assert f"-{os.getpid()}.json" in _default_results_name().name


def test_a_worker_that_dies_fails_the_session_naming_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its records die with it: the session must not pass with a results file silently short of them."""
    make_project(pytester, monkeypatch)
    pytester.makepyfile(test_crash="import os\n\ndef test_kills_its_worker():\n    os._exit(1)\n")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--precision", "fp32", "-k", "accuracy or kills", "-n", "2", "--results", "r.json"
    )
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*trt-harness: worker gw* ended without handing over its records*rerun them*"])
