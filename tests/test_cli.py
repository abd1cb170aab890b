"""Tests of `python -m harness compare`, `ab`, `merge` and `report` (harness/cli/) on synthetic files.

Every file is built here, shaped like docs/results-format.md, with seeded samples, so verdicts are
deterministic; the `ab` tests replace the two Python environments with tiny scripts that write a
results file where pytest would.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from harness import cli
from harness.baselines import BaselineFile
from harness.results import document as results_document
from harness.results.comparison import GateOptions, compare_pair
from harness.results.document import SCHEMA_VERSION

ROOT = Path(__file__).resolve().parents[1]
LATENCY = "test_latency[mnist-fp16-opt-ort]"
ACCURACY = "test_accuracy[mnist-fp16-opt-ort]"

Record = dict[str, object]


def samples(median_us: float, seed: int, count: int = 200) -> list[float]:
    """Latencies around `median_us` with 2 % spread: enough to judge a 30 % change without doubt."""
    rng = np.random.default_rng(seed)
    return [float(value) for value in median_us * (1 + 0.02 * rng.standard_normal(count))]


def record(
    test_id: str,
    *,
    median_us: float = 100.0,
    seed: int = 0,
    mean_rel: float = 1e-4,
    backend: str = "ort",
    device: str = "AMD EPYC",
    version: str = "1.32.0",
    profile: int = 0,
    verdict: str = "pass",
) -> Record:
    """A test record as the plugin writes it: latency tests carry samples, accuracy tests errors."""
    point = test_id.split("[", 1)[1].rstrip("]")
    case, precision, shape_point, _ = point.split("-", 3)
    measured = verdict != "skip"
    values = samples(median_us, seed)
    latency = {"stop_reason": "ci", "count": len(values), "median_us": float(np.median(values)), "samples_us": values}
    accuracy = [
        {"output": "probabilities", "mean_rel": mean_rel, "max_rel": 10 * mean_rel, "failure": None,
         "tolerance": {"mean_rel": 1e-3, "exact": False, "justification": ""}},
        {"output": "label", "mean_rel": 0.0, "max_rel": 0.0, "failure": None,
         "tolerance": {"mean_rel": 0.0, "exact": True, "justification": ""}},
    ]  # fmt: skip
    return {
        "id": test_id,
        "nodeid": f"cases/test_matrix.py::{test_id}",
        "point": point,
        "case": case,
        "precision": precision,
        "profile": profile,
        "shape_point": shape_point.removeprefix(f"p{profile}."),
        "backend": backend,
        **({"backend_name": "onnxruntime", "backend_version": version, "backend_device": device} if measured else {}),
        "accuracy": accuracy if measured and test_id.startswith("test_accuracy") else None,
        "latency": latency if measured and test_id.startswith("test_latency") else None,
        "verdict": verdict,
        "message": "Skipped: no tf32 on the CPU" if verdict == "skip" else None,
    }


def results(*records: Record, schema_version: object = SCHEMA_VERSION, harness: str = "0.1.0") -> dict[str, object]:
    return {
        "schema": "trt-harness/results",
        "schema_version": schema_version,
        "created": "2026-01-01T00:00:00+00:00",
        "environment": {"harness": harness, "backends": {}},
        "settings": {},
        "tests": list(records),
    }


def write(path: Path, document: dict[str, object]) -> Path:
    path.write_text(json.dumps(document, indent=1))
    return path


def pair(tmp_path: Path, old: list[Record], new: list[Record]) -> list[str]:
    return [str(write(tmp_path / "old.json", results(*old))), str(write(tmp_path / "new.json", results(*new)))]


def rows(output: str) -> dict[str, str]:
    """The table's lines keyed by '<test kind> <shape>' (enough to tell this module's rows apart)."""
    table: dict[str, str] = {}
    for line in output.splitlines():
        cells = line.split()
        if len(cells) > 5 and cells[4] in ("accuracy", "latency", "agreement"):
            table[f"{cells[4]} {cells[2]}"] = line
    return table


def test_identical_files_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A file compared with itself: every row passes, ratio 1, exit 0; the first line names both sides."""
    files = pair(tmp_path, [record(LATENCY), record(ACCURACY)], [record(LATENCY), record(ACCURACY)])
    assert cli.main(["compare", *files]) == 0
    output = capsys.readouterr().out
    first = output.splitlines()[0]
    assert first.startswith("Comparing old ") and first.count("(onnxruntime 1.32.0 on AMD EPYC)") == 2
    table = rows(output)
    assert table["latency opt"].endswith("pass") and "1.000 [" in table["latency opt"]
    assert table["accuracy opt"].endswith("pass") and "1.0e-04 / 1.0e-04" in table["accuracy opt"]
    assert "differ" not in output


def test_thirty_percent_slower_is_a_regression(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = pair(tmp_path, [record(LATENCY)], [record(LATENCY, median_us=130.0, seed=1)])
    assert cli.main(["compare", *files]) == 1
    output = capsys.readouterr().out
    line = rows(output)["latency opt"]
    assert line.endswith("REGRESSION") and "1.3" in line
    assert f"REGRESSION {LATENCY}: slower" in output


def test_accuracy_regression(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Mean relative error ten times the old one (beyond the 2x factor) regresses; the column shows both."""
    files = pair(tmp_path, [record(ACCURACY, mean_rel=1e-5)], [record(ACCURACY, mean_rel=1e-4)])
    assert cli.main(["compare", *files]) == 1
    output = capsys.readouterr().out
    line = rows(output)["accuracy opt"]
    assert line.endswith("REGRESSION") and "1.0e-05 / 1.0e-04" in line
    assert "output probabilities: mean relative error" in output


def test_improvement_fails_only_on_request(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = pair(tmp_path, [record(LATENCY)], [record(LATENCY, median_us=70.0, seed=1)])
    assert cli.main(["compare", *files]) == 0
    assert rows(capsys.readouterr().out)["latency opt"].endswith("improvement")
    assert cli.main(["compare", *files, "--fail-on-improvement"]) == 1


def test_new_and_removed_ids(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A test NEW lacks is dropped coverage: it used to pass the upgrade gate (exit 0); now it fails it,
    listed as removed with the fix, unless --allow-removed says the drop is intended."""
    gone, added = "test_latency[mnist-fp16-min-ort]", "test_latency[mnist-fp16-max-ort]"
    files = pair(tmp_path, [record(LATENCY), record(gone)], [record(LATENCY), record(added)])
    assert cli.main(["compare", *files]) == 1
    output = capsys.readouterr().out
    table = rows(output)
    assert table["latency min"].endswith("removed") and table["latency max"].endswith("new")
    assert f"removed {gone}: only in the old file: the new run dropped this test, which fails the gate" in output
    assert "pass --allow-removed if dropping it is intended" in output and "1 removed" in output
    assert cli.main(["compare", *files, "--allow-removed"]) == 0
    assert f"removed {gone}: only in the old file (allowed by --allow-removed)" in capsys.readouterr().out
    assert cli.main(["compare", *files, "--markdown"]) == 1
    assert f"- removed `{gone}`: only in the old file" in capsys.readouterr().out


def test_only_new_tests_pass(tmp_path: Path) -> None:
    added = "test_latency[mnist-fp16-max-ort]"
    assert cli.main(["compare", *pair(tmp_path, [record(LATENCY)], [record(LATENCY), record(added)])]) == 0


def test_skipped_tests_are_listed_as_skip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tf32 = "test_latency[mnist-tf32-opt-ort]"
    files = pair(tmp_path, [record(tf32, verdict="skip")], [record(tf32, verdict="skip")])
    assert cli.main(["compare", *files]) == 0
    assert rows(capsys.readouterr().out)["latency opt"].endswith("skip")


def test_a_test_that_now_errors_is_a_regression(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A new backend version that cannot build the engine leaves no numbers: that must not pass the gate."""
    broken = {**record(LATENCY), "latency": None, "verdict": "error", "message": "BuildError: parser failed"}
    files = pair(tmp_path, [record(LATENCY)], [broken])
    assert cli.main(["compare", *files]) == 1
    assert "error in the new one: BuildError: parser failed" in capsys.readouterr().out


def test_thresholds_by_backend_kind_and_record(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """7 % slower: beyond the 5 % of a GPU backend, within the 10 % of a CPU one; a record's own threshold wins."""
    gpu = "test_latency[mnist-fp16-opt-trt]"
    cpu_files = pair(tmp_path, [record(LATENCY)], [record(LATENCY, median_us=107.0, seed=1)])
    assert cli.main(["compare", *cpu_files]) == 0
    gpu_files = pair(tmp_path, [record(gpu, backend="trt")], [record(gpu, backend="trt", median_us=107.0, seed=1)])
    assert cli.main(["compare", *gpu_files]) == 1
    assert cli.main(["compare", *gpu_files, "--gpu-threshold", "0.2"]) == 0
    loose = {**record(gpu, backend="trt", median_us=130.0, seed=1), "latency_threshold": 0.5}
    assert cli.main(["compare", *pair(tmp_path, [record(gpu, backend="trt")], [loose])]) == 0
    capsys.readouterr()


def test_recorded_descriptor_decides_the_threshold_of_an_unknown_backend(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A plugin's backend that `compare` has never heard of is judged by its descriptor as recorded."""
    test_id = "test_latency[mnist-fp16-opt-mine]"
    described = {"backend_device_kind": "gpu", "backend_default_latency_threshold": 0.05}
    old = {**record(test_id, backend="mine"), **described}
    new = {**record(test_id, backend="mine", median_us=107.0, seed=1), **described}
    assert cli.main(["compare", *pair(tmp_path, [old], [new])]) == 1  # 7 % > its recorded 5 %
    lenient = {**new, "backend_default_latency_threshold": 0.2}
    assert cli.main(["compare", *pair(tmp_path, [old], [lenient])]) == 0
    assert cli.main(["compare", *pair(tmp_path, [old], [lenient]), "--gpu-threshold", "0.05"]) == 1
    capsys.readouterr()


def test_build_tests_pass_when_built_on_both_sides_and_regress_when_the_new_one_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build = "test_build[mnist-fp16-build-rtx]"
    built = {**record(build, backend="rtx"), "build": {"cached": False, "build_s": 0.1, "artifact_bytes": 7}}
    assert cli.main(["compare", *pair(tmp_path, [built], [built])]) == 0
    line, *costs = [line for line in capsys.readouterr().out.splitlines() if line.startswith("mnist")]
    assert len(costs) == 2  # the costs table's build time and plan size follow the comparison's row
    assert line.split()[4] == "build" and line.endswith("pass")  # not "skip": building is what it measures
    failed = {**built, "build": None, "verdict": "fail", "message": "case 'mnist': tensorrt_rtx … failed to build"}
    assert cli.main(["compare", *pair(tmp_path, [built], [failed])]) == 1
    assert "fail in the new one: case 'mnist'" in capsys.readouterr().out


def test_a_build_the_new_version_refuses_is_a_regression_not_a_skip(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A refusal (an operator the new parser lacks) skips the test in its own run; against a run that built the
    point, the upgrade gate calls it what it is."""
    build = "test_build[mnist-fp32-build-rtx]"
    built = {**record(build, backend="rtx"), "build": {"cached": False, "build_s": 0.1, "artifact_bytes": 7}}
    refused = {
        **built,
        "build": None,
        "verdict": "skip",
        "message": "Skipped: tensorrt_rtx cannot run mnist at fp32: case 'mnist': tensorrt_rtx 1.8's ONNX parser has "
        "no importer for operator Conv; …",
    }
    assert cli.main(["compare", *pair(tmp_path, [built], [refused])]) == 1
    assert "passed in the old run, refused in the new one: Skipped: tensorrt_rtx cannot run mnist" in (
        capsys.readouterr().out
    )
    assert cli.main(["compare", *pair(tmp_path, [refused], [refused])]) == 0  # refused on both sides: a skip


def test_fuzz_tests_that_pass_on_both_sides_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A fuzz test keeps no figures: passing on both sides is its verdict, not a skip."""
    fuzz = record("test_fuzz_inside_profile[mnist-fp16-fuzz-ort]")
    assert cli.main(["compare", *pair(tmp_path, [fuzz], [fuzz])]) == 0
    (line,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("mnist")]
    assert line.endswith("pass")
    failed = {**fuzz, "verdict": "fail", "message": "AssertionError: mnist-fp16-fuzz-ort at shapes …"}
    assert cli.main(["compare", *pair(tmp_path, [fuzz], [failed])]) == 1


def test_a_build_only_new_run_is_judged_on_its_builds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The upgrade's first step compares a full OLD run with a build-only NEW one: the tests NEW did not run skip
    (not 'removed'), its builds are judged, and a build that fails now is still a regression."""
    build = "test_build[mnist-fp16-build-ort]"
    built = {**record(build), "build": {"cached": False, "build_s": 0.1, "artifact_bytes": 7}}
    old = write(tmp_path / "old.json", results(record(LATENCY), record(ACCURACY), built))
    new_document = {**results(built), "settings": {"build_only": True}}
    new = write(tmp_path / "new.json", new_document)
    assert cli.main(["compare", str(old), str(new)]) == 0
    output = capsys.readouterr().out
    assert "Note: the new file is a build-only run" in output
    assert rows(output)["latency opt"].endswith("skip") and rows(output)["accuracy opt"].endswith("skip")
    failed = {**built, "build": None, "verdict": "fail", "message": "case 'mnist': failed to build"}
    write(tmp_path / "new.json", {**results(failed), "settings": {"build_only": True}})
    assert cli.main(["compare", str(old), str(new)]) == 1
    capsys.readouterr()


def test_timing_under_other_settings_is_said(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Recorded with 2 threads, run with 1: the ratio's row says the settings differ, whatever its verdict."""
    old = {**record(LATENCY), "engine": {"timing": {"intra_op_threads": 2}}}
    new = {**record(LATENCY, median_us=190.0, seed=1), "engine": {"timing": {"intra_op_threads": 1}}}
    assert cli.main(["compare", *pair(tmp_path, [old], [new])]) == 1
    assert "timed under other settings than the baseline (intra_op_threads 2 → 1)" in capsys.readouterr().out


def test_later_profiles_are_prefixed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    test_id = "test_latency[mnist-fp16-p1.opt-ort]"
    files = pair(tmp_path, [record(test_id, profile=1)], [record(test_id, profile=1)])
    assert cli.main(["compare", *files]) == 0
    assert "latency p1.opt" in rows(capsys.readouterr().out)


def test_baseline_file_as_old(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    baseline = BaselineFile(tmp_path / "ort-1.32.0.json", "amd-epyc", "ort", "1.32.0")
    baseline.entries = {LATENCY: record(LATENCY), ACCURACY: record(ACCURACY)}
    baseline.write()
    new = write(tmp_path / "new.json", results(record(LATENCY, seed=1), record(ACCURACY)))
    assert cli.main(["compare", str(baseline.path), str(new)]) == 0
    table = rows(capsys.readouterr().out)
    assert table["latency opt"].endswith("pass") and table["accuracy opt"].endswith("pass")


def test_markdown_and_job_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--markdown prints a GitHub table; GITHUB_STEP_SUMMARY gets it appended in either output format."""
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    files = pair(tmp_path, [record(LATENCY)], [record(LATENCY, median_us=130.0, seed=1)])
    assert cli.main(["compare", *files, "--markdown"]) == 1
    printed = capsys.readouterr().out
    lines = printed.splitlines()
    assert lines[0].startswith("Comparing old ")
    header = (
        "| case | precision | shape | backend | test | old µs | new µs | ratio [95 % CI] | errors old / new | verdict |"
    )
    assert header in lines and lines[lines.index(header) + 1].startswith("| --- | --- |")
    assert any(line.startswith("| mnist | fp16 | opt | ort | latency |") and "**REGRESSION**" in line for line in lines)
    assert summary.read_text() == "earlier step\n" + printed
    assert cli.main(["compare", *files]) == 1  # plain text printed, Markdown still appended
    assert "| case |" not in capsys.readouterr().out
    assert summary.read_text() == "earlier step\n" + printed * 2


def test_devices_and_versions_that_differ_are_said_plainly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = record(LATENCY, device="AMD EPYC 9654", version="1.33.0")
    assert cli.main(["compare", *pair(tmp_path, [record(LATENCY)], [new])]) == 0
    output = capsys.readouterr().out
    assert "(onnxruntime 1.33.0 on AMD EPYC 9654)" in output.splitlines()[0]
    assert "devices differ: AMD EPYC vs AMD EPYC 9654" in output
    assert "backend versions differ: onnxruntime 1.32.0 vs 1.33.0" in output


def _unusable(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"{kind}.json"
    good = json.dumps(results(record(LATENCY)), indent=1)
    if kind == "corrupted":
        path.write_text(good.replace('"tests"', "tests", 1))
    elif kind == "truncated":
        path.write_text(good[: len(good) // 2])
    elif kind == "schema-version":
        write(path, results(record(LATENCY), schema_version=99, harness="0.9.0"))
    elif kind == "other-harness":
        write(path, results(record(LATENCY), schema_version=0, harness="0.0.1"))
    elif kind == "duplicate":
        write(path, results(record(LATENCY), record(LATENCY)))
    elif kind == "samples":
        path.write_text(good.replace('"samples_us": [', '"samples_us": [NaN, ', 1))
    elif kind == "null-sample":
        path.write_text(good.replace('"samples_us": [', '"samples_us": [null, ', 1))
    elif kind == "zero-samples":
        zeros = record(LATENCY)
        zeros["latency"] = {**zeros["latency"], "samples_us": [0.0] * 50}  # type: ignore[dict-item]
        write(path, results(zeros))
    elif kind in ("no-output", "mean-rel-text"):
        broken = record(ACCURACY)
        entry = broken["accuracy"][1]  # type: ignore[index]
        if kind == "no-output":
            del entry["output"]
        else:
            entry["mean_rel"] = "n/a"
        write(path, results(record(LATENCY), broken))
    else:
        write(path, {**results(record(LATENCY)), "schema": "something/else"})
    return path


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("corrupted", r"corrupted.json is not valid JSON \(Expecting property name .*: line \d+ column \d+"),
        ("truncated", (r"truncated.json is not valid JSON \(.*: line \d+ column \d+, character \d+ of \d+\): the "
         "file is truncated or corrupted; re-run the tests to write it again")),
        ("schema-version", (r"schema-version.json was written by trt-harness 0.9.0 with results schema_version 99; "
         rf"this harness reads {SCHEMA_VERSION}: compare files of one harness version, or re-run")),
        ("other-harness", (r"other-harness.json was written by trt-harness 0.0.1 with results schema_version 0; "
         rf"this harness reads {SCHEMA_VERSION}")),
        ("duplicate", r"duplicate.json holds test id 'test_latency\[mnist-fp16-opt-ort\]' twice"),
        ("samples", (r"samples.json: test 'test_latency\[mnist-fp16-opt-ort\]': \"latency.samples_us\[0\]\" is NaN; "
         r"latency samples must be finite numbers > 0; .*re-run the tests to write it again")),
        ("null-sample", r"null-sample.json: test 'test_latency\[mnist-fp16-opt-ort\]': \"latency.samples_us\[0\]\" is null"),
        ("zero-samples", r"zero-samples.json: test 'test_latency\[mnist-fp16-opt-ort\]': \"latency.samples_us\[0\]\" is 0.0"),
        ("no-output", (r"no-output.json: test 'test_accuracy\[mnist-fp16-opt-ort\]': \"accuracy\[1\].output\" must be "
         r"the output's name, got null; .*restore it from version control")),
        ("mean-rel-text", (r"mean-rel-text.json: test 'test_accuracy\[mnist-fp16-opt-ort\]': \"accuracy\[1\].mean_rel\" "
         r"\(output 'label'\) must be a number, got \"n/a\"")),
        ("schema", r"schema.json is not a trt-harness results or baseline file"),
    ],
)  # fmt: skip
def test_unusable_files_exit_2_with_the_fix_and_write_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, kind: str, message: str
) -> None:
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    good = write(tmp_path / "good.json", results(record(LATENCY)))
    assert cli.main(["compare", str(good), str(_unusable(tmp_path, kind))]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and not summary.exists()
    assert captured.err.startswith("harness compare: error: ")
    assert captured.err.count("\n") == 1  # one clear line, no traceback
    assert re.search(message, captured.err), captured.err


def test_corrupted_baseline_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A baseline is checked by BaselineFile.load, whose message tells how to restore it."""
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps({"schema": "trt-harness/baseline", "schema_version": 7, "entries": {}}))
    good = write(tmp_path / "good.json", results(record(LATENCY)))
    assert cli.main(["compare", str(path), str(good)]) == 2
    assert "has schema_version 7, this harness reads 1" in capsys.readouterr().err


def test_module_entry_point(tmp_path: Path) -> None:
    """`python -m harness compare` in a fresh interpreter: the exit status carries the verdict."""
    files = pair(tmp_path, [record(LATENCY)], [record(LATENCY, median_us=130.0, seed=1)])
    environment = {key: value for key, value in os.environ.items() if key != "GITHUB_STEP_SUMMARY"}
    completed = subprocess.run(
        [sys.executable, "-m", "harness", "compare", *files],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 1, completed.stderr
    assert "REGRESSION" in completed.stdout and completed.stderr == ""


# ---------------------------------------------------------------------------------------------------
# report


def test_report_writes_the_html_of_a_results_file_beside_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results_file = write(tmp_path / "run.json", results(record(LATENCY), record(ACCURACY, verdict="fail")))
    assert cli.main(["report", str(results_file)]) == 0
    page = (tmp_path / "run.html").read_text()
    assert page.index(ACCURACY) < page.index(LATENCY)  # the failing test first
    assert capsys.readouterr().out == f"html report: {tmp_path / 'run.html'}\n"


def test_report_writes_where_asked(tmp_path: Path) -> None:
    results_file = write(tmp_path / "run.json", results(record(LATENCY)))
    assert cli.main(["report", str(results_file), "-o", str(tmp_path / "out" / "page.html")]) == 0
    assert LATENCY in (tmp_path / "out" / "page.html").read_text() and not (tmp_path / "run.html").exists()


@pytest.mark.parametrize(
    ("contents", "said", "fix"),
    [
        (None, "cannot read", "check the path, or re-run the tests"),
        ("{not json", "is not valid JSON", "re-run the tests to write it again"),
        ("[1, 2]", "is not a trt-harness results file", "pass a file written by pytest --results"),
        (json.dumps(results(record(LATENCY), schema_version=99)), "schema_version 99", "or re-run"),
    ],
    ids=["missing", "not-json", "not-an-object", "other-version"],
)
def test_report_of_a_file_that_is_not_a_results_file_exits_2_with_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], contents: str | None, said: str, fix: str
) -> None:
    results_file = tmp_path / "run.json"
    if contents is not None:
        results_file.write_text(contents)
    assert cli.main(["report", str(results_file)]) == 2
    assert not (tmp_path / "run.html").exists()
    error = capsys.readouterr().err
    assert error.startswith(f"harness report: error: {results_file}") or f"cannot read {results_file}" in error
    assert said in error and fix in error


def test_report_to_an_unwritable_path_exits_2_with_the_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results_file = write(tmp_path / "run.json", results(record(LATENCY)))
    (tmp_path / "blocker").write_text("a file where a directory should be")
    report = tmp_path / "blocker" / "report.html"
    assert cli.main(["report", str(results_file), "-o", str(report)]) == 2
    error = capsys.readouterr().err
    assert f"cannot write {report}: " in error and "pass -o a writable file path" in error  # refused before the work


SPEC_ERROR = {"id": "harness-spec-error-0", "message": "models/resnet.toml: case 'resnet': no such file model.onnx"}


def test_an_input_error_of_the_new_run_fails_the_gate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """What NEW's session refused (a spec entry, an unknown selection) did not run: the gate cannot vouch for it, so
    it fails with the session's own message. An input error only OLD had is history, not a failure of NEW."""
    old, new = results(record(LATENCY)), {**results(record(LATENCY)), "input_errors": [SPEC_ERROR]}
    files = [str(write(tmp_path / "old.json", old)), str(write(tmp_path / "new.json", new))]
    assert cli.main(["compare", *files]) == 1
    output = capsys.readouterr().out
    assert "1 INPUT ERROR, 1 pass" in output
    assert f"INPUT ERROR harness-spec-error-0: {files[1]}: its session refused this input" in output
    assert "case 'resnet': no such file model.onnx" in output
    assert cli.main(["compare", *files, "--markdown"]) == 1
    assert "`harness-spec-error-0`" in capsys.readouterr().out
    assert cli.main(["compare", files[1], files[0]]) == 0  # NEW (the old file here) ran everything it was given


def test_two_files_without_tests_fail_the_gate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A comparison that judged nothing must not read as a pass (pytest's own exit 5 says the same)."""
    files = pair(tmp_path, [], [])
    assert cli.main(["compare", *files]) == 1
    assert "no tests: neither file holds a test, so nothing was gated (exit 1)" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------------
# ab

FAKE_PYTHON = """#!{python}
# Stands in for `python -m pytest ... --results PATH`: logs its call, writes a results file.
import json, random, sys
side, factor, code = {side!r}, {factor!r}, {code!r}
arguments = sys.argv[1:]
with open({log!r}, "a") as log:
    log.write(json.dumps([side, arguments]) + "\\n")
if code not in (0, 1):
    print("ERROR: usage: pytest [options] [file_or_dir]")
    print("pytest: error: unrecognized arguments: --bogus")
    sys.exit(code)
with open({log!r}) as log:
    round_number = sum(json.loads(line)[0] == side for line in log)
document = json.load(open({template!r}))
rng = random.Random(f"{{side}}-{{round_number}}")
for test in document["tests"]:
    if test["latency"]:
        test["latency"]["samples_us"] = [100.0 * factor * (1 + 0.02 * rng.gauss(0, 1)) for _ in range(60)]
with open(arguments[arguments.index("--results") + 1], "w") as out:
    json.dump(document, out)
print("1 passed")
sys.exit(code)
"""


def fake_python(tmp_path: Path, side: str, factor: float, code: int = 0, input_errors: Sequence[Record] = ()) -> str:
    document = {**results(record(LATENCY), record(ACCURACY)), "input_errors": list(input_errors)}
    template = write(tmp_path / "template.json", document)
    script = tmp_path / f"python-{side}"
    log, python = str(tmp_path / "calls.log"), sys.executable
    script.write_text(
        FAKE_PYTHON.format(python=python, side=side, factor=factor, code=code, log=log, template=str(template))
    )
    script.chmod(0o755)
    return str(script)


def calls(tmp_path: Path) -> list[tuple[str, list[str]]]:
    entries = [json.loads(line) for line in (tmp_path / "calls.log").read_text().splitlines()]
    return [(str(side), list(arguments)) for side, arguments in entries]


def test_ab_interleaves_rounds_pools_and_gates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ab"
    python_a, python_b = fake_python(tmp_path, "a", 1.0), fake_python(tmp_path, "b", 1.3, code=1)
    argv = ["ab", "--a", python_a, "--b", python_b, "--rounds", "3", "--out", str(out), "--", "cases", "-k", "mnist"]
    assert cli.main(argv) == 1
    output = capsys.readouterr()
    log = calls(tmp_path)
    assert [side for side, _ in log] == ["a", "b", "a", "b", "a", "b"]
    assert log[0][1] == [
        "-m",
        "pytest",
        "cases",
        "-k",
        "mnist",
        "--results",
        str(out / "a-1.json"),
        "-p",
        "no:cacheprovider",
    ]
    assert log[3][1][6] == str(out / "b-2.json")
    assert rows(output.out)["latency opt"].endswith("REGRESSION")
    assert "round 3/3 B: exit 1" in output.err
    pooled = json.loads((out / "a.json").read_text())
    latency = next(test["latency"] for test in pooled["tests"] if test["id"] == LATENCY)
    rounds = [json.loads((out / f"a-{n}.json").read_text())["tests"][0]["latency"]["samples_us"] for n in (1, 2, 3)]
    assert latency["samples_us"] == rounds[0] + rounds[1] + rounds[2] and latency["count"] == 180
    assert latency["median_us"] == pytest.approx(float(np.median(latency["samples_us"])))
    assert latency["round_sizes"] == [60, 60, 60]  # B's round i is judged against A's round i
    assert "over 3 paired rounds" in output.out
    assert cli.main(["compare", str(out / "a.json"), str(out / "b.json")]) == 1  # valid results files
    assert "over 3 paired rounds" in capsys.readouterr().out  # compare of ab's files pairs their rounds too
    fewer = json.loads((out / "b.json").read_text())
    next(test["latency"] for test in fewer["tests"] if test["id"] == LATENCY)["round_sizes"] = [90, 90]
    write(out / "b2.json", fewer)
    assert cli.main(["compare", str(out / "a.json"), str(out / "b2.json")]) == 1
    assert "paired rounds" not in capsys.readouterr().out  # 3 rounds against 2 cannot pair: the pools are compared
    failed = json.loads((out / "b.json").read_text())
    record_b = next(test for test in failed["tests"] if test["id"] == LATENCY)
    record_b.update(verdict="fail", message="Failed: regression against baseline b.json")
    write(out / "b3.json", failed)
    a, b = (results_document.load(out / name) for name in ("a.json", "b3.json"))
    (old_test,), (new_test,) = ([test for test in document.tests if test.id == LATENCY] for document in (a, b))
    options = GateOptions(
        alpha=0.002, cpu_threshold=None, gpu_threshold=None, accuracy_factor=2.0, fail_on_improvement=False
    )
    row = compare_pair(old_test, new_test, options)
    # a verdict NEW's own failure decided still shows the numbers, judged as the other rows are: in pairs
    assert row.verdict == "regression" and row.latency is not None and "over 3 paired rounds" in row.latency.reason


def test_ab_fails_where_its_runs_refused_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Unchanged work on both sides, but every run refused a spec entry (pytest exits 1, as for a failed test): the
    pooled files keep the input error and the gate fails on it instead of passing what did not run."""
    out = tmp_path / "ab"
    python_a = fake_python(tmp_path, "a", 1.0, code=1, input_errors=[SPEC_ERROR])
    python_b = fake_python(tmp_path, "b", 1.0, code=1, input_errors=[SPEC_ERROR])
    assert cli.main(["ab", "--a", python_a, "--b", python_b, "--rounds", "2", "--out", str(out), "--", "cases"]) == 1
    output = capsys.readouterr().out
    assert "INPUT ERROR harness-spec-error-0" in output and rows(output)["latency opt"].endswith("pass")


def test_ab_stops_on_a_pytest_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ab"
    python_a, python_b = fake_python(tmp_path, "a", 1.0), fake_python(tmp_path, "b", 1.0, code=4)
    assert cli.main(["ab", "--a", python_a, "--b", python_b, "--out", str(out), "--", "--bogus"]) == 2
    error = capsys.readouterr().err
    assert f"error: {python_b} -m pytest --bogus --results {out / 'b-1.json'} -p no:cacheprovider exited 4" in error
    assert "pytest: error: unrecognized arguments: --bogus" in error
    assert [side for side, _ in calls(tmp_path)] == ["a", "b"]
    assert not (out / "a.json").exists() and not (out / "b.json").exists()


def test_ab_refuses_a_missing_python_and_its_own_results_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / "no-such-python")
    assert cli.main(["ab", "--a", missing, "--b", sys.executable, "--out", str(tmp_path)]) == 2
    assert f"--a {missing}: no such executable" in capsys.readouterr().err
    argv = ["ab", "--a", sys.executable, "--b", sys.executable, "--", "--results", "x.json"]
    assert cli.main(argv) == 2
    assert "drop --results from the pytest arguments" in capsys.readouterr().err


def shard(tmp_path: Path, name: str, *records: Record, version: str = "1.32.0") -> str:
    document = results(*records)
    document["environment"] = {"harness": "0.1.0", "backends": {"ort": {"name": "onnxruntime", "version": version,
                                                                        "device": "AMD EPYC"}}}  # fmt: skip
    return str(write(tmp_path / name, document))


def test_merge_to_an_unwritable_path_exits_2_with_the_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = shard(tmp_path, "a.json", record(LATENCY))
    (tmp_path / "blocker").write_text("a file where a directory should be")
    merged = tmp_path / "blocker" / "all.json"
    assert cli.main(["merge", first, "-o", str(merged)]) == 2
    assert f"cannot write {merged}: " in capsys.readouterr().err  # refused before reading the shards


def test_merge_joins_shards_and_compare_gates_the_merged_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = shard(tmp_path, "a.json", record(LATENCY))
    second = shard(tmp_path, "b.json", record("test_accuracy[mnist-fp16-opt-ort]"))
    merged = tmp_path / "all.json"
    assert cli.main(["merge", first, second, "-o", str(merged)]) == 0
    document = json.loads(merged.read_text())
    assert [t["id"] for t in document["tests"]] == [LATENCY, "test_accuracy[mnist-fp16-opt-ort]"]
    assert document["merged_from"] == [first, second]
    capsys.readouterr()
    slower = shard(
        tmp_path, "slower.json", record(LATENCY, median_us=130.0, seed=1), record("test_accuracy[mnist-fp16-opt-ort]")
    )
    assert cli.main(["compare", str(merged), slower]) == 1  # the gate runs on the merged file
    assert rows(capsys.readouterr().out)["latency opt"].endswith("REGRESSION")


@pytest.mark.parametrize(
    ("second_version", "second_id", "message"),
    [
        ("1.32.0", LATENCY, "is in both"),
        ("1.33.0", "test_accuracy[mnist-fp16-opt-ort]", "backend 'ort' differs between"),
    ],
    ids=["overlapping-shards", "mixed-backend-versions"],
)
def test_merge_refuses_overlapping_or_mixed_shards_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], second_version: str, second_id: str, message: str
) -> None:
    first = shard(tmp_path, "a.json", record(LATENCY))
    second = shard(tmp_path, "b.json", record(second_id), version=second_version)
    merged = tmp_path / "all.json"
    assert cli.main(["merge", first, second, "-o", str(merged)]) == 2
    assert message in capsys.readouterr().err and not merged.exists()
    if second_version != "1.32.0":
        assert cli.main(["merge", first, second, "-o", str(merged), "--allow-mixed"]) == 0


def test_version_names_the_package() -> None:
    done = subprocess.run([sys.executable, "-m", "harness", "--version"], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and done.stdout.startswith("trt-harness ")


def test_a_reader_that_leaves_early_gets_no_traceback(tmp_path: Path) -> None:
    """`python -m harness compare A B | head`: the pipe is closed before the output is written; the command
    ends with 141 (128 + SIGPIPE, never 1, "regression") and no traceback."""
    path = write(tmp_path / "r.json", results(*(record(f"test_latency[c{index}-fp32-opt-ort]") for index in range(50))))
    process = subprocess.Popen(
        [sys.executable, "-m", "harness", "compare", str(path), str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # the reader is gone before the first byte
    errors = process.stderr.read().decode()
    assert process.wait() == 141, errors
    assert "Traceback" not in errors and "BrokenPipeError" not in errors
