"""harness/drift.py and its use: A/A pairs, the resolution they give, the verdict below it (session and compare)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from harness import cli
from harness.baselines import BaselineError, BaselineFile
from harness.drift import AAPair, Drift, measured_pair, resolution
from harness.gate import GatePolicy, Resolution, judge_latency
from tests.test_cli import LATENCY, record, results, rows, write

POLICY = GatePolicy(latency_threshold=0.05)


def latencies(median_us: float, seed: int, count: int = 300) -> list[float]:
    rng = np.random.default_rng(seed)
    return [float(v) for v in median_us * (1 + 0.01 * rng.standard_normal(count))]


def test_the_resolution_keeps_at_most_two_percent_of_the_pairs_above_it() -> None:
    """Both orders of a pair are judged, so 1 % one-sided false alarms is 2 % of the pairs: of 100 levels 0.00-0.99,
    0.98 and 0.99 may lie above, 0.97 is the smallest such threshold."""
    levels = [i / 100 for i in range(100)]
    assert resolution(levels) == pytest.approx(0.97)
    assert sum(level > resolution(levels) for level in levels) == 2


def test_with_fewer_than_fifty_pairs_the_resolution_is_the_worst_pair() -> None:
    assert resolution([0.0, 0.02, 0.07, 0.01]) == pytest.approx(0.07)


def test_a_pair_of_equal_workloads_has_a_small_level_and_a_shifted_one_its_shift() -> None:
    steady = measured_pair(latencies(100, 1), latencies(100, 2), POLICY)
    assert abs(steady.log_ratio) < 0.005 and steady.flag_level < 0.01
    shifted = measured_pair(latencies(100, 1), latencies(112, 2), POLICY)
    assert shifted.log_ratio == pytest.approx(math.log(1.12), abs=0.005)
    assert 0.12 < shifted.flag_level < 0.14  # the CIs' upper ends: a little above the shift
    # Which measurement came first is chance: the other order moves the same way, the level is the same.
    backwards = measured_pair(latencies(112, 2), latencies(100, 1), POLICY)
    assert backwards.log_ratio == pytest.approx(-shifted.log_ratio)
    assert backwards.flag_level == pytest.approx(shifted.flag_level)


def test_drift_summarizes_the_records_that_carry_a_pair() -> None:
    records = [{"aa_drift": AAPair(math.log(1 + m), m).to_json()} for m in (0.01, 0.03, -0.02)] + [{"id": "x"}]
    drift = Drift.of_records(records)
    assert drift is not None and drift.pairs == 3
    assert drift.abs_log_ratio["max"] == pytest.approx(math.log(1.03))
    assert drift.abs_log_ratio["p50"] == pytest.approx(abs(math.log(0.98)))
    assert drift.resolution == pytest.approx(0.03)
    assert Drift.of_records([{"id": "x"}, {"aa_drift": None}]) is None


def entry(level: float) -> dict[str, object]:
    return {**record(LATENCY), "aa_drift": AAPair(0.0, level).to_json()}


def test_a_baseline_file_writes_its_entries_drift_and_an_old_file_loads_without(tmp_path: Path) -> None:
    path = tmp_path / "ort-1.32.0.json"
    BaselineFile(path, "amd-epyc", "ort", "1.32.0", {LATENCY: entry(0.04)}).write()
    written = json.loads(path.read_text())["drift"]
    assert written["pairs"] == 1 and written["resolution"] == pytest.approx(0.04)
    BaselineFile(path, "amd-epyc", "ort", "1.32.0", {LATENCY: record(LATENCY)}).write()  # as before drift
    assert "drift" not in json.loads(path.read_text())
    assert BaselineFile.load(path).drift is None


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ("fast", '"aa_drift" must be an object {log_ratio, flag_level} or null, got str'),
        ({"log_ratio": 0.0}, '"aa_drift.flag_level" must be a finite number, got None'),
        ({"log_ratio": "nan", "flag_level": 0.1}, "\"aa_drift.log_ratio\" must be a finite number, got 'nan'"),
        ({"log_ratio": 0.0, "flag_level": -0.1}, '"aa_drift.flag_level" must be >= 0, got -0.1'),
    ],
)
def test_a_bad_pair_in_a_baseline_names_the_file_test_and_field(tmp_path: Path, pair: object, message: str) -> None:
    path = tmp_path / "b.json"
    data = BaselineFile(path, "dev", "ort", "1.0", {LATENCY: record(LATENCY)}).to_json()
    data["entries"] = {LATENCY: {**record(LATENCY), "aa_drift": pair}}  # as damaged by hand
    path.write_text(json.dumps(data))
    with pytest.raises(BaselineError) as error:
        BaselineFile.load(path)
    assert str(path) in str(error.value) and LATENCY in str(error.value) and message in str(error.value)
    assert "--update-baselines" in str(error.value)


MACHINE = Resolution(0.09, "A/A drift of 12 tests recorded in baselines/dev/ort-1.0.json")


def test_a_threshold_below_the_resolution_is_unresolved_saying_why() -> None:
    verdict = judge_latency(latencies(100, 1), latencies(106, 2), POLICY, resolution=MACHINE)
    assert verdict.verdict == "unresolved"
    assert verdict.reason.startswith(
        "latency unresolved: threshold 5.0% is below this machine's resolution 9.0% (A/A drift of 12 tests "
        "recorded in baselines/dev/ort-1.0.json): raise --latency-threshold to 0.09 (9.0%) or use "
        "`python -m harness ab`"
    )
    assert verdict.latency is not None and verdict.latency.ratio == pytest.approx(1.06, abs=0.005)
    # Unchanged work is no better judged: no pass on noise either.
    assert judge_latency(latencies(100, 1), latencies(100, 2), POLICY, resolution=MACHINE).verdict == "unresolved"


def test_a_threshold_at_or_above_the_resolution_judges_as_before() -> None:
    wide = GatePolicy(latency_threshold=0.10)
    slower = judge_latency(latencies(100, 1), latencies(106, 2), wide, resolution=MACHINE)
    assert slower == judge_latency(latencies(100, 1), latencies(106, 2), wide)
    assert slower.verdict == "pass"
    assert judge_latency(latencies(100, 1), latencies(130, 2), wide, resolution=MACHINE).verdict == "regression"


def test_a_slowdown_beyond_the_resolution_is_still_a_regression() -> None:
    verdict = judge_latency(latencies(100, 1), latencies(130, 2), POLICY, resolution=MACHINE)
    assert verdict.verdict == "regression"
    assert "beyond the 9% threshold" in verdict.reason and "this machine's resolution" in verdict.reason


def drifting(level: float, **kwargs: object) -> dict[str, object]:
    return {**record(LATENCY, **kwargs), "aa_drift": AAPair(0.0, level).to_json()}  # type: ignore[arg-type]


def test_compare_leaves_a_move_below_the_resolution_both_files_carry_unresolved(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Unresolved neither fails nor passes: exit 0, the row and its count say so with the fix. The coarser machine's
    resolution counts; a file without drift (an ordinary run) leaves the gate as it was."""
    old = write(tmp_path / "old.json", results(drifting(0.04)))
    new = write(tmp_path / "new.json", results(drifting(0.15, seed=1)))
    assert cli.main(["compare", str(old), str(new)]) == 0
    output = capsys.readouterr().out
    assert rows(output)["latency opt"].endswith("unresolved")
    assert "1 unresolved" in output
    assert "threshold 10.0% is below this machine's resolution 15.0% (A/A drift recorded: 4.0% in" in output
    plain = write(tmp_path / "plain.json", results(record(LATENCY, seed=1)))
    assert cli.main(["compare", str(old), str(plain)]) == 0
    assert rows(capsys.readouterr().out)["latency opt"].endswith("pass")


def test_compare_within_the_resolution_judges_as_before(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = write(tmp_path / "old.json", results(drifting(0.04)))
    new = write(tmp_path / "new.json", results(drifting(0.06, seed=1)))
    assert cli.main(["compare", str(old), str(new)]) == 0
    assert rows(capsys.readouterr().out)["latency opt"].endswith("pass")
