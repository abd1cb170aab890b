"""harness/baselines.py: file format, refusal of bad files, merging updates, selection."""

from __future__ import annotations

import base64
import json
import os
import zlib
from pathlib import Path

import pytest

from harness import baselines
from harness.baselines import BaselineError, BaselineFile
from harness.profile import LayerProfile, LayerTime

LATENCY = "test_latency[mnist-fp32-opt-ort]"


def write_baseline(path: Path, entries: dict[str, object], version: str = "1.0") -> Path:
    BaselineFile(path, "dev", "ort", version, dict(entries)).write()  # type: ignore[arg-type]
    return path


def test_device_class_is_a_stable_file_name() -> None:
    assert baselines.device_class("NVIDIA H200 (compute capability 9.0)") == "nvidia-h200-cc9.0"
    assert baselines.device_class("AMD EPYC 7B13") == "amd-epyc-7b13"
    assert baselines.device_class("???") == "unknown-device"


def test_round_trip_and_sorted_reviewable_entries(tmp_path: Path) -> None:
    path = write_baseline(tmp_path / "b.json", {"z": {"case": "c"}, "a": {"case": "c"}})
    assert list(json.loads(path.read_text())["entries"]) == ["a", "z"]
    assert BaselineFile.load(path).entries == {"a": {"case": "c"}, "z": {"case": "c"}}


def test_a_layer_profile_is_packed_in_the_file_and_read_back_as_recorded(tmp_path: Path) -> None:
    profile = LayerProfile(
        tuple(LayerTime(f"conv{i}", "Conv", 10.0 + i, fused=(f"conv{i}", f"relu{i}")) for i in range(300)),
        5,
        "onnxruntime profiler",
    ).to_json()
    path = write_baseline(tmp_path / "b.json", {LATENCY: {"case": "c", "layer_profile": profile}})
    stored = json.loads(path.read_text())["entries"][LATENCY]["layer_profile"]
    assert set(stored) == {"source", "runs", "columns", baselines.PACKED_LAYERS}  # what a reviewer reads stays text
    assert path.stat().st_size < len(json.dumps(profile)) / 3
    assert BaselineFile.load(path).entries[LATENCY]["layer_profile"] == profile


def test_a_profile_written_before_packing_still_loads(tmp_path: Path) -> None:
    rows = {
        "source": "onnxruntime profiler",
        "runs": 5,
        "layers": [{"name": "conv1", "kind": "Conv", "median_us": 9.0}],
    }
    text = json.dumps({"schema": baselines.SCHEMA, "schema_version": 1, "entries": {LATENCY: {"layer_profile": rows}}})
    (tmp_path / "b.json").write_text(text)
    assert BaselineFile.load(tmp_path / "b.json").entries[LATENCY]["layer_profile"] == rows


@pytest.mark.parametrize("packed", ["not base64!", "aGVsbG8=", base64.b64encode(zlib.compress(b"[{")).decode()])
def test_a_damaged_packed_profile_is_refused_naming_the_file_test_field_and_fix(tmp_path: Path, packed: str) -> None:
    profile = {"source": "onnxruntime profiler", "runs": 5, "columns": ["name"], baselines.PACKED_LAYERS: packed}
    text = json.dumps(
        {"schema": baselines.SCHEMA, "schema_version": 1, "entries": {LATENCY: {"layer_profile": profile}}}
    )
    (tmp_path / "b.json").write_text(text)
    with pytest.raises(BaselineError) as refused:
        BaselineFile.load(tmp_path / "b.json")
    said = str(refused.value)
    assert f"baseline {tmp_path / 'b.json'}: test '{LATENCY}': \"layer_profile.layers_zlib\" cannot be unpacked" in said
    assert "record it again with --update-baselines" in said


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"schema": "trt-harness/baseline", "schema_ver', "not valid JSON"),
        ("[]", "not a trt-harness baseline file"),
        (
            '{"schema": "trt-harness/baseline", "schema_version": 2, "entries": {}}',
            "schema_version 2, this harness reads 1",
        ),
        (
            '{"schema": "trt-harness/baseline", "schema_version": 1, "entries": {"a": {}, "a": {}}}',
            "holds test id 'a' twice",
        ),
        (
            '{"schema": "trt-harness/baseline", "schema_version": 1, "entries": {"a": 3}}',
            "must map test ids to objects",
        ),
    ],
    ids=["truncated", "foreign", "schema-version", "duplicate", "entry-type"],
)
def test_bad_files_are_refused_naming_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "b.json"
    path.write_text(text)
    with pytest.raises(BaselineError, match=message) as info:
        BaselineFile.load(path)
    assert str(path) in str(info.value)


TEST_ID = "test_latency[identity-fp32-opt-ort]"
GOOD_ACCURACY = {"output": "y", "mean_rel": 1e-7, "worst_value": "nan", "tolerance": {"mean_rel": 1e-6}}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"latency": {"samples_us": [3.0, float("nan")]}}, r'"latency.samples_us\[1\]" is NaN'),
        ({"latency": {"samples_us": [None, 3.0]}}, r'"latency.samples_us\[0\]" is null'),
        ({"host_latency": {"samples_us": [0.0, 0.0]}}, r'"host_latency.samples_us\[0\]" is 0.0'),
        ({"latency": {"samples_us": [float("inf")]}}, r'"latency.samples_us\[0\]" is Infinity'),
        ({"latency": {"samples_us": ["12"]}}, r'"latency.samples_us\[0\]" is "12"'),
        ({"latency": {"samples_us": "12"}}, r'"latency.samples_us" must be a list of numbers'),
        ({"accuracy": [{"mean_rel": 0.1}]}, r'"accuracy\[0\].output" must be the output\'s name, got null'),
        ({"accuracy": [{"output": "y"}]}, r'"accuracy\[0\].mean_rel" is missing'),
        ({"accuracy": [{"output": "y", "mean_rel": "n/a"}]}, r'"accuracy\[0\].mean_rel" \(output \'y\'\) must be a number'),
        ({"accuracy": [{**GOOD_ACCURACY, "tolerance": {"mean_rel": "tight"}}]}, r'"accuracy\[0\].tolerance.mean_rel"'),
    ],
)  # fmt: skip
def test_entries_the_gate_cannot_read_are_refused_naming_file_test_field_and_fix(
    tmp_path: Path, entry: dict[str, object], message: str
) -> None:
    """A NaN (or null, or zero) among the samples used to pass every test and then lose the results file at
    session end; now the file is refused when it is loaded, with the fix."""
    path = tmp_path / "ort-1.0.json"
    path.write_text(json.dumps({"schema": "trt-harness/baseline", "schema_version": 1, "entries": {TEST_ID: entry}}))
    with pytest.raises(BaselineError, match=message) as info:
        BaselineFile.load(path)
    assert str(path) in str(info.value) and repr(TEST_ID) in str(info.value)
    assert "--update-baselines" in str(info.value)


def test_usable_entries_load() -> None:
    good = {"latency": {"samples_us": [1, 2.5]}, "host_latency": None, "accuracy": [GOOD_ACCURACY], "build": None}
    assert baselines.record_problem(good) is None


def test_a_binary_file_is_refused_naming_the_file_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "ort-1.0.json"
    garbage = bytes(range(256)) * 4
    path.write_bytes(garbage)
    with pytest.raises(BaselineError, match=r"is not UTF-8 text .*restore it from version control") as info:
        BaselineFile.load(path)
    assert str(path) in str(info.value)
    with pytest.raises(BaselineError):
        baselines.update(path, "dev", "ort", "1.0", {"new": {"case": "c"}})
    assert path.read_bytes() == garbage


def test_update_merges_keeps_others_and_thins_samples(tmp_path: Path) -> None:
    path = write_baseline(tmp_path / "dev" / "ort-1.0.json", {"old": {"case": "gone"}})
    record = {"case": "c", "latency": {"samples_us": list(range(1, 10_001)), "median_us": 1.0}, "host_latency": None}
    assert baselines.update(path, "dev", "ort", "1.0", {"new": record}) == 1
    entries = BaselineFile.load(path).entries
    assert set(entries) == {"old", "new"}
    samples = entries["new"]["latency"]["samples_us"]  # type: ignore[index]
    assert len(samples) == baselines.MAX_SAMPLES and samples == sorted(samples)  # evenly spaced order statistics
    assert samples[0] < 200 and 4900 < samples[len(samples) // 2] < 5100 and samples[-1] > 9800


def test_update_never_overwrites_an_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "ort-1.0.json"
    path.write_text("{broken")
    with pytest.raises(BaselineError):
        baselines.update(path, "dev", "ort", "1.0", {"new": {"case": "c"}})
    assert path.read_text() == "{broken"


def test_an_interrupted_update_leaves_the_previous_file_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_baseline(tmp_path / "ort-1.0.json", {"kept": {"case": "c"}})
    before = path.read_text()

    def power_cut(fd: int) -> None:
        raise OSError("No space left on device")

    monkeypatch.setattr(os, "fsync", power_cut)
    with pytest.raises(OSError, match="No space left"):
        baselines.update(path, "dev", "ort", "1.0", {"new": {"case": "c"}})
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ort-1.0.json"]  # no temporary file left behind


def test_selection_exact_other_versions_and_baseline_from(tmp_path: Path) -> None:
    folder = tmp_path / baselines.device_class("Dev X")
    write_baseline(folder / "trt-10.16.1.11.json", {"t": {"case": "c"}}, "10.16.1.11")
    exact = baselines.select(tmp_path, "Dev X", "trt", "10.16.1.11", None, "tensorrt")
    assert exact.baseline is not None and exact.baseline.backend_version == "10.16.1.11"
    upgrade = baselines.select(tmp_path, "Dev X", "trt", "11.4.0.106", None, "tensorrt")
    assert (
        upgrade.baseline is None
        and "there are trt-10.16.1.11.json" in upgrade.note
        and "--baseline-from" in upgrade.note
    )
    for spelling in ("trt-10.16", "tensorrt-10.16"):
        chosen = baselines.select(tmp_path, "Dev X", "trt", "11.4.0.106", spelling, "tensorrt")
        assert chosen.baseline is not None and "(--baseline-from)" in chosen.note
    missing = baselines.select(tmp_path, "Dev X", "trt", "11.4.0.106", "trt-9", "tensorrt")
    assert missing.baseline is None and "no trt 9* baseline" in missing.note
    other_device = baselines.select(tmp_path, "Dev Y", "trt", "10.16.1.11", None, "tensorrt")
    assert other_device.baseline is None and "other devices: dev-x" in other_device.note


def test_baseline_from_names_the_library_the_descriptor_declares(tmp_path: Path) -> None:
    """A plugin backend's library spelling works like tensorrt-10.16 does for `trt`; another library's does not."""
    folder = tmp_path / baselines.device_class("Dev X")
    write_baseline(folder / "mine-2.0.1.json", {"t": {"case": "c"}}, "2.0.1")
    chosen = baselines.select(tmp_path, "Dev X", "mine", "3.0", "mylib-2.0", "mylib")
    assert chosen.baseline is not None and chosen.baseline.backend_version == "2.0.1"
    refused = baselines.select(tmp_path, "Dev X", "mine", "3.0", "tensorrt-2.0", "mylib")
    assert refused.baseline is None and "no mine 2.0* baseline" in refused.note
