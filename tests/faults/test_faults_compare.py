"""Issue 18's audit rows on `python -m harness compare` (2, 3, 18, 20, 21, 22, 25), kept as tests.

Every file is built here, shaped like docs/results-format.md, with seeded samples so that verdicts are
deterministic; the known-failures list is exercised in `compare` and in a throw-away pytest session.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from harness import cli

LATENCY = "test_latency[squeezenet-int8-{shape}-ort]"
ACCURACY = "test_accuracy[squeezenet-int8-{shape}-ort]"
Record = dict[str, object]


def record(
    template: str, shape: str = "opt", *, median_us: float = 100.0, count: int = 200, seed: int = 0, **fields: object
) -> Record:
    """A passing test record as the plugin writes it: latency tests carry samples, accuracy tests errors."""
    test_id = template.format(shape=shape)
    values = median_us * (1 + 0.02 * np.random.default_rng(seed).standard_normal(count))
    latency = {
        "stop_reason": "ci",
        "count": count,
        "median_us": float(np.median(values)),
        "samples_us": values.tolist(),
    }
    accuracy = [
        {"output": "probabilities", "mean_rel": 1e-4, "max_rel": 1e-3, "failure": None, "nan_count": 0,
         "inf_count": 0, "tolerance": {"mean_rel": 1e-2, "exact": False}},
    ]  # fmt: skip
    return {
        "id": test_id,
        "case": "squeezenet",
        "precision": "int8",
        "profile": 0,
        "shape_point": shape,
        "backend": "ort",
        "backend_name": "onnxruntime",
        "backend_version": "1.32.0",
        "backend_device": "Intel Xeon",
        "latency": latency if test_id.startswith("test_latency") else None,
        "accuracy": accuracy if test_id.startswith("test_accuracy") else None,
        "verdict": "pass",
        "message": None,
        **fields,
    }


def failed(template: str, shape: str = "opt", message: str = "AssertionError: probabilities beyond") -> Record:
    return record(template, shape, verdict="fail", message=message)


def write(path: Path, *records: Record) -> str:
    """A results file as the harness writes it (results_document.write's layout, which compare reads lean)."""
    from harness.results import document as results_document

    document = {
        "schema": "trt-harness/results",
        "schema_version": 1,
        "environment": {"harness": "0.1.0", "backends": {}},
        "settings": {},
        "tests": list(records),
    }
    results_document.write(path, document)
    return str(path)


def compare(tmp_path: Path, old: list[Record], new: list[Record], *options: str) -> int:
    return cli.main(["compare", write(tmp_path / "old.json", *old), write(tmp_path / "new.json", *new), *options])


def verdicts(output: str) -> dict[str, str]:
    """The verdict cell of each table row, keyed by '<test kind> <shape>'."""
    found = {}
    for line in output.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if line.startswith("squeezenet") and len(cells) >= 6:
            found[f"{cells[4]} {cells[2]}"] = cells[-1]
    return found


def test_row_02_new_failing_or_inconclusive_tests_fail_the_comparison(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`compare OLD NEW` where NEW's own tests failed (3 latency tests inconclusive): judged on NEW's numbers only."""
    old = [record(LATENCY, shape) for shape in ("min", "opt", "max")]
    gate = {
        "verdict": "inconclusive",
        "reason": "latency inconclusive: only 12 samples",
        "samples": 12,
        "min_samples": 30,
    }
    new = [
        record(LATENCY, "min", median_us=70.0, seed=1, verdict="fail", message="inconclusive", gate=gate),
        record(LATENCY, "opt", seed=2, verdict="fail", message="inconclusive", gate=gate),
        record(LATENCY, "max", seed=3, gate=gate),  # a plain run: inconclusive, yet not failed by pytest
    ]
    assert compare(tmp_path, old, new) == 1
    out = capsys.readouterr().out
    assert set(verdicts(out).values()) == {"inconclusive (12 samples < 30)"}, out
    assert "3 inconclusive" in out and "improvement" not in out


def test_row_02_new_failure_with_good_numbers_is_a_regression(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """NEW's own verdict counts: an accuracy test that failed in NEW fails the comparison whatever its numbers."""
    assert compare(tmp_path, [record(ACCURACY)], [failed(ACCURACY)]) == 1
    assert verdicts(capsys.readouterr().out) == {"accuracy opt": "REGRESSION"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda r: r["latency"].update(samples_us=[]), '"latency.samples_us" is missing or empty'),
        (lambda r: r.pop("latency"), '"latency.samples_us" is missing or empty'),
        (lambda r: r.pop("verdict"), '"verdict" is missing'),
        (lambda r: r.update(verdict="banana"), "\"verdict\" is 'banana'; it must be one of error, fail, pass, skip"),
    ],
    ids=["empty-samples", "no-latency", "no-verdict", "banana"],
)
def test_row_03_malformed_records_exit_2_naming_test_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: object, field: str
) -> None:
    """`compare` where NEW has empty `samples_us`, lacks `latency`/`verdict`, or has verdict "banana": rc 0, "— pass"."""
    broken = record(LATENCY)
    change(broken)  # type: ignore[operator]
    assert compare(tmp_path, [record(LATENCY)], [broken]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"new.json: test 'test_latency[squeezenet-int8-opt-ort]': {field}" in captured.err, captured.err


def test_row_03_a_passing_accuracy_test_without_accuracy_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`compare` where NEW lacks `accuracy`: rc 0, rows "— pass"."""
    broken = record(ACCURACY, accuracy=None)
    assert compare(tmp_path, [record(ACCURACY)], [broken]) == 2
    assert "test 'test_accuracy[squeezenet-int8-opt-ort]': \"accuracy\" is missing or empty" in capsys.readouterr().err


def test_row_20_an_unchanged_failure_is_not_a_regression(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Unchanged failures in `compare` labelled REGRESSION although OLD failed the same way."""
    assert compare(tmp_path, [failed(ACCURACY)], [failed(ACCURACY)]) == 1  # NEW failed: still fails the gate
    out = capsys.readouterr().out
    assert verdicts(out) == {"accuracy opt": "UNCHANGED FAILURE"}
    assert "REGRESSION" not in out and "list it in known-failures.toml with a reason" in out


def known_list(path: Path, *entries: str) -> Path:
    path.write_text("\n".join(entries))
    return path


def test_row_21_compare_old_old_with_failures_passes_with_the_reviewed_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`compare OLD OLD` on a run with failures: exit 1 with 6 REGRESSION; no way to record known failures."""
    run = [failed(ACCURACY, shape) for shape in ("min", "opt", "max")] + [record(LATENCY)]
    assert compare(tmp_path, run, run) == 1
    assert "3 UNCHANGED FAILURE" in capsys.readouterr().out
    listed = known_list(
        tmp_path / "known-failures.toml",
        "[[known]]",
        'test = "test_accuracy[squeezenet-int8-*-ort]"',
        'reason = "int8 calibration of the last conv, issue #812"',
        'verdict = "fail"',
    )
    assert compare(tmp_path, run, run, "--known-failures", str(listed)) == 0
    out = capsys.readouterr().out
    assert verdicts(out) == {**{f"accuracy {s}": "known failure" for s in ("min", "opt", "max")}, "latency opt": "pass"}
    assert "int8 calibration of the last conv, issue #812" in out


def test_row_21_the_list_beside_a_baseline_is_found_and_a_fixed_test_is_flagged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Known failures are recorded beside the baselines; one that passes again is flagged for review."""
    from harness.baselines import BaselineFile

    folder = tmp_path / "baselines"
    (folder / "intel-xeon").mkdir(parents=True)
    known_list(folder / "known-failures.toml", "[[known]]", f'test = "{ACCURACY.format(shape="opt")}"', 'reason = "x"')
    baseline = BaselineFile(folder / "intel-xeon" / "ort-1.32.0.json", "intel-xeon", "ort", "1.32.0")
    baseline.entries = {ACCURACY.format(shape="opt"): record(ACCURACY)}
    baseline.write()
    new = write(tmp_path / "new.json", record(ACCURACY))
    assert cli.main(["compare", str(baseline.path), new]) == 0
    out = capsys.readouterr().out
    assert verdicts(out) == {"accuracy opt": "fixed"} and "remove the entry" in out


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (
            ["[[known]]", 'test = "test_accuracy[*]"'],
            r"known-failures.toml: \[\[known\]\] entry 1 \(.*\) needs a reason",
        ),
        (["[[known]]", 'reason = "x"'], r"entry 1 needs test = "),
        (["[[known]]", 'test = "a"', 'reason = "x"', 'verdict = "flaky"'], r"verdict must be one of fail, error"),
        (["[known"], r"known-failures.toml is not valid TOML"),
    ],
)
def test_row_21_a_bad_list_is_refused_naming_file_and_entry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], lines: list[str], message: str
) -> None:
    """Bad known-failures list: exit 2, one line naming the file, the entry and the fix; nothing printed."""
    listed = known_list(tmp_path / "known-failures.toml", *lines)
    assert compare(tmp_path, [record(ACCURACY)], [record(ACCURACY)], "--known-failures", str(listed)) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and re.search(message, captured.err), captured.err


def test_row_22_compare_applies_the_sessions_sample_minimum(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`compare` judges records with 10–19 samples: same-shape points got opposite verdicts (min pass, max REGRESSION)."""
    old = [record(LATENCY, "min", count=15, seed=1), record(LATENCY, "max", count=19, seed=2)]
    new = [record(LATENCY, "min", count=15, seed=3), record(LATENCY, "max", count=12, seed=4, median_us=130.0)]
    for starved in (*old, *new):  # the budget stopped them: the session's rule gives no verdict then
        starved["latency"]["stop_reason"] = "budget"  # type: ignore[index]
    assert compare(tmp_path, old, new) == 1
    assert verdicts(capsys.readouterr().out) == {
        "latency min": "inconclusive (15 samples < 30)",
        "latency max": "inconclusive (12 samples < 30)",
    }


def test_row_25_nan_is_never_shown_as_a_number(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """NaN shows as "0.0e+00 / 0.0e+00" in `compare`: NaN/Inf must never be rendered as a number."""
    nan_output = record(ACCURACY)
    nan_output["accuracy"][0].update(mean_rel=0.0, nan_count=3, failure="3 NaN/Inf elements")  # type: ignore[index]
    spelled = record(ACCURACY)
    spelled["accuracy"][0].update(mean_rel="nan")  # type: ignore[index]
    assert compare(tmp_path, [spelled], [nan_output], "--markdown") == 1
    out = capsys.readouterr().out
    (line,) = [line for line in out.splitlines() if line.startswith("| squeezenet")]
    assert "NaN / NaN" in line and "e+00" not in line and "nan" not in line


def test_row_18_a_large_file_is_judged_like_a_small_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A results file of 100,000 tests: compare killed at 900 s (2.3 GB); here its correctness at 2,000 tests
    (speed and memory: benchmarks/fleet_scale.py)."""
    shapes = [f"s{index}" for index in range(1000)]
    old = [
        record(template, shape, seed=index) for index, shape in enumerate(shapes) for template in (LATENCY, ACCURACY)
    ]
    new = [
        record(template, shape, seed=index + 7)
        for index, shape in enumerate(shapes)
        for template in (LATENCY, ACCURACY)
    ]
    new[1000] = record(LATENCY, shapes[500], seed=9, median_us=130.0)  # one regression among 2,000
    assert compare(tmp_path, old, new) == 1
    found = verdicts(capsys.readouterr().out)
    assert len(found) == 2000
    assert [key for key, verdict in found.items() if verdict != "pass"] == ["latency s500"]


FAST = ("--latency-budget", "0.05", "-p", "no:cacheprovider", "--precision", "fp32", "--benchmark-disable")


def identity_latency(pytester: pytest.Pytester) -> None:
    """A project whose matrix is the identity case's latency tests on the synthetic ONNX Runtime (gate_support)."""
    pytester.makeconftest(
        "from cases.identity import CASE as IDENTITY\n"
        "from tests.gate_support import SYNTHETIC_ORT\n"
        "def pytest_harness_cases(config):\n"
        "    return [IDENTITY]\n"
        "def pytest_harness_backends(config):\n"
        "    return SYNTHETIC_ORT\n"
    )
    pytester.makepyfile(test_matrix="from harness.suite import test_latency\n")


def test_row_21_the_session_reports_listed_failures_as_known_and_flags_fixed_ones(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In pytest, a listed test that fails is xfail with its reason; a listed test that passes fails until unlisted."""
    identity_latency(pytester)
    monkeypatch.setenv("HARNESS_TEST_ORT_VERSION", "1.0.0")
    monkeypatch.delenv("HARNESS_TEST_SLOWDOWN", raising=False)
    pytester.runpytest(*FAST, "--update-baselines").assert_outcomes(passed=3)
    monkeypatch.setenv("HARNESS_TEST_SLOWDOWN", "1.5")  # every latency test now regresses against its baseline
    known_list(
        pytester.path / "baselines" / "known-failures.toml",
        "[[known]]",
        'test = "test_latency[identity-fp32-min-ort]"',
        'reason = "slower by design, issue #9"',
    )
    result = pytester.runpytest(*FAST, "--results", "r.json")
    result.assert_outcomes(failed=2, xfailed=1)
    records = {test["id"]: test for test in json.loads((pytester.path / "r.json").read_text())["tests"]}
    known = records["test_latency[identity-fp32-min-ort]"]
    assert known["verdict"] == "fail" and "slower by design, issue #9" in known["message"]
    monkeypatch.delenv("HARNESS_TEST_SLOWDOWN")
    fixed = pytester.runpytest(*FAST, "--results", "r.json")
    fixed.assert_outcomes(passed=2, failed=1)
    records = {test["id"]: test for test in json.loads((pytester.path / "r.json").read_text())["tests"]}
    message = records["test_latency[identity-fp32-min-ort]"]["message"]
    assert "passes, yet listed as a known failure" in message and "remove its entry" in message


def test_row_21_a_bad_list_fails_its_own_item_and_the_session_runs_on(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A known-failures file without a reason: its own failing item names file and fix; the tests still run."""
    identity_latency(pytester)
    (pytester.path / "baselines").mkdir()
    known_list(pytester.path / "baselines" / "known-failures.toml", "[[known]]", 'test = "x"')
    result = pytester.runpytest(*FAST)
    result.assert_outcomes(passed=3, failed=1)
    assert "baselines/known-failures.toml: [[known]] entry 1 (x) needs a reason" in result.stdout.str()


def test_row_18_the_lean_reading_equals_a_whole_parse(tmp_path: Path) -> None:
    """Read lean (harness layout) or whole (any other layout), a file gives the same records and samples."""
    from harness.results import lean

    records = [record(LATENCY, f"s{index}", seed=index) for index in range(50)] + [failed(ACCURACY)]
    records[3]["derivation"] = {"scales": {"conv1.weight": [0.5] * 100}}  # cut unread
    records[4]["message"] = 'a message with "samples_us": [1, 2] and\n  } inside'
    harness_layout = lean.load(Path(write(tmp_path / "lean.json", *records)))
    (tmp_path / "compact.json").write_text(json.dumps(json.loads((tmp_path / "lean.json").read_text())))
    whole = lean.load(tmp_path / "compact.json")
    assert harness_layout.records == whole.records and harness_layout.header == whole.header
    assert sorted(harness_layout.samples) == sorted(whole.samples) == list(range(50))
    assert all(np.array_equal(harness_layout.samples[i], records[i]["latency"]["samples_us"]) for i in range(50))  # type: ignore[index]
    assert (
        "derivation" not in harness_layout.records[3] and harness_layout.records[4]["message"] == records[4]["message"]
    )


def test_row_18_a_truncated_large_file_exits_2_saying_where(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A results file cut short (a killed merge) is refused with the place and the fix, as before."""
    path = Path(write(tmp_path / "new.json", *[record(LATENCY, f"s{index}") for index in range(20)]))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert cli.main(["compare", write(tmp_path / "old.json", record(LATENCY)), str(path)]) == 2
    assert "new.json is not valid JSON" in capsys.readouterr().err


def test_row_24_an_older_file_s_fixed_corners_are_recognised_when_read_lean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Row 24 through the files: the lean reader keeps what tells a fixed profile's corners (point, input_shapes)."""

    def corner(shape: str) -> Record:
        point = f"squeezenet-int8-{shape}-ort"
        return {**record(ACCURACY, shape, point=point, input_shapes={"x": [1, 3, 224, 224]}), "shape": shape}

    assert compare(tmp_path, [corner("min"), corner("opt"), corner("max")], [corner("opt")]) == 0
    assert capsys.readouterr().out.rstrip().endswith("1 pass, 2 skip")


def test_row_26_compare_caps_a_long_failure_message_on_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Row 26 in compare: a failure's message (a Hypothesis report, every weight listed) is one capped line."""
    long = "Falsifying example:\n" + "\n".join(f"  weight_{index} = 0.5," for index in range(400))
    assert compare(tmp_path, [record(ACCURACY)], [failed(ACCURACY, message=long)]) == 1
    (reason,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("REGRESSION")]
    assert "more characters: full text in the results file, test test_accuracy[squeezenet-int8-opt-ort]" in reason
    assert len(reason) < 800 and "weight_399" not in reason
