"""Issue 18's audit rows on the caches (engines, references, calibration) and the baselines: one test per fault."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest

from harness.baselines import MAX_SAMPLES, BaselineFile, baseline_path, update
from harness.build import EngineStore, evict_least_recently_used
from harness.case import Case, Precision
from harness.errors import EngineCacheWarning
from harness.gate import GatePolicy, compare_latency
from harness.precision.quantize import CalibrationCacheWarning, QuantizedModel, quantize_int8
from harness.spec import load_spec
from harness.spec.reference import REFERENCES_DIR, ReferenceCacheWarning
from tests.spec_support import linear_model
from tests.test_build import CASE, FP32_MODEL, FakeBackend
from tests.test_quantize import calibration, float32_model
from tests.test_spec import SPEC


def _cached_artifact(cache: Path) -> Path:
    path = EngineStore(cache).artifact(FakeBackend(), CASE, Precision.FP32, 0).record.artifact_path
    assert path is not None
    return Path(path)


def test_row_05_engine_bytes_loaded_are_the_bytes_checked(tmp_path: Path) -> None:
    """engine cache: the bytes deserialized are re-read after the SHA-256 check"""
    artifact = _cached_artifact(tmp_path)
    backend = FakeBackend()
    store = EngineStore(tmp_path)
    found = store.artifact(backend, CASE, Precision.FP32, 0)  # checked here ...
    assert found.record.cached
    artifact.write_bytes(b"rewritten by someone else" + FP32_MODEL)  # ... changed before the load
    with pytest.warns(EngineCacheWarning, match=rf"{artifact}.* changed after it was checked.*rebuilding"):
        built = store.get(backend, CASE, Precision.FP32, 0)
    assert backend.loads == [b"artifact:" + FP32_MODEL]  # the changed bytes never reached the backend
    assert len(backend.builds) == 1 and built.record.cached is False
    assert artifact.read_bytes() == b"artifact:" + FP32_MODEL  # healed on disk too


def test_row_06_a_directory_at_the_artifact_path_is_rebuilt_in_memory(tmp_path: Path) -> None:
    """engine cache: the artifact path is a directory"""
    artifact = _cached_artifact(tmp_path)
    artifact.unlink()
    artifact.mkdir()
    backend = FakeBackend()
    with pytest.warns(EngineCacheWarning) as warned:
        built = EngineStore(tmp_path).get(backend, CASE, Precision.FP32, 0)
    messages = [str(warning.message) for warning in warned]
    assert any(f"{artifact} is unusable (it is a directory, not a file; remove it" in text for text in messages)
    assert any(f"{artifact} cannot be written" in text and "used from memory" in text for text in messages)
    assert not any("free disk space" in text for text in messages)  # the fix is to remove the folder, not space
    assert built.engine.artifact == b"artifact:" + FP32_MODEL  # type: ignore[attr-defined]
    assert built.record.artifact_path is None and artifact.is_dir()  # the user's directory is left alone


def _fill(cache: Path, names: list[str], size: int) -> list[Path]:
    """Artifacts of `size` bytes (and their sidecars) under cache/fake/, used one second apart in `names` order."""
    paths = []
    for age, name in enumerate(reversed(names)):
        path = cache / "fake" / f"{name}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * size)
        path.with_suffix(".json").write_text("{}")
        os.utime(path, (1e9 - age, 1e9 - age))
        paths.append(path)
    return paths[::-1]


def test_row_28_the_engine_cache_evicts_least_recently_used_beyond_its_limit(tmp_path: Path) -> None:
    """the engine cache: no size limit: 5 GB for nine models"""
    oldest, middle, newest = _fill(tmp_path, ["oldest", "middle", "newest"], 1000)
    removed = evict_least_recently_used(tmp_path, 2100, keep=set())
    assert removed == [oldest] and not oldest.exists() and not oldest.with_suffix(".json").exists()
    assert not list(tmp_path.glob("*/*.lock"))  # the lock taken to evict is not left behind
    assert middle.exists() and newest.exists()


def test_row_28_eviction_spares_kept_and_locked_artifacts(tmp_path: Path) -> None:
    """the engine cache: no size limit: 5 GB for nine models"""
    import filelock

    oldest, middle, newest = _fill(tmp_path, ["oldest", "middle", "newest"], 1000)
    with filelock.FileLock(f"{middle}.lock"):  # another session builds or checks it
        removed = evict_least_recently_used(tmp_path, 1000, keep={oldest})
    assert removed == [newest] and oldest.exists() and middle.exists()


def test_row_28_an_artifact_evicted_by_another_session_before_its_load_is_rebuilt(tmp_path: Path) -> None:
    """the engine cache: no size limit: 5 GB for nine models"""
    artifact = _cached_artifact(tmp_path)
    backend = FakeBackend()
    store = EngineStore(tmp_path)
    assert store.artifact(backend, CASE, Precision.FP32, 0).record.cached
    evict_least_recently_used(tmp_path, 0, keep=set())  # another session, over its limit
    with pytest.warns(
        EngineCacheWarning, match=rf"{artifact} is unusable \(it changed after it was checked: it was removed"
    ):
        built = store.get(backend, CASE, Precision.FP32, 0)
    assert built.engine.artifact == b"artifact:" + FP32_MODEL and artifact.exists()  # type: ignore[attr-defined]


def _entry_bytes(artifact: Path) -> int:
    return artifact.stat().st_size + artifact.with_suffix(".json").stat().st_size


def test_row_28_a_store_evicts_and_a_cache_hit_counts_as_use(tmp_path: Path) -> None:
    """the engine cache: no size limit: 5 GB for nine models"""
    cache = tmp_path / "cache"
    fp16 = EngineStore(tmp_path / "probe").artifact(FakeBackend(), CASE, Precision.FP16, 0).record.artifact_path
    assert fp16 is not None
    artifact = _cached_artifact(cache)
    os.utime(artifact, (1.0, 1.0))  # the least recently used ...
    (stale,) = _fill(cache, ["stale"], 10)
    limit = _entry_bytes(artifact) + _entry_bytes(Path(fp16))  # room for the two engines, not for `stale` too
    assert EngineStore(cache, cache_limit=limit).artifact(FakeBackend(), CASE, Precision.FP32, 0).record.cached
    assert artifact.stat().st_mtime > 1e9 and stale.exists()  # ... until this hit; a hit evicts nothing
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        EngineStore(cache, cache_limit=limit).artifact(FakeBackend(), CASE, Precision.FP16, 0)  # a store
    assert artifact.exists() and not stale.exists()


_IDENTITY_CONFTEST = """
from cases import identity

def pytest_harness_cases(config):
    return [identity.CASE]
"""


def test_row_28_engine_cache_size_is_an_option_and_an_ini_key(pytester: pytest.Pytester) -> None:
    """the engine cache: no size limit: 5 GB for nine models"""
    pytester.makeconftest(_IDENTITY_CONFTEST)
    pytester.makepyfile(test_matrix="from harness.suite import test_build")
    pytester.makeini("[pytest]\nharness_engine_cache_size = 1K\n")
    args = ("--engine-cache=cache", "-p", "no:cacheprovider")
    pytester.runpytest_inprocess("--precision=fp32", *args).assert_outcomes(passed=1)
    (fp32,) = (pytester.path / "cache").glob("*/identity-fp32-*.bin")
    pytester.runpytest_inprocess("--precision=fp16", *args).assert_outcomes(passed=1)  # 1K holds one engine
    assert not fp32.exists() and len(list((pytester.path / "cache").glob("*/identity-fp16-*.bin"))) == 1
    pytester.runpytest_inprocess("--precision=fp32", "--engine-cache-size=off", *args).assert_outcomes(passed=1)
    assert len(list((pytester.path / "cache").glob("*/*.bin"))) == 2  # the command line beats the ini
    refused = pytester.runpytest_inprocess("--engine-cache-size=lots", *args)
    assert refused.ret == pytest.ExitCode.USAGE_ERROR
    refused.stderr.fnmatch_lines(
        ["*--engine-cache-size / harness_engine_cache_size must be a size above 0 such as 500M*"]
    )


def _calibrated(cache: Path) -> QuantizedModel:
    model, data = float32_model("conv_add_relu"), calibration("conv_add_relu")
    return quantize_int8(model, data, "max", case_name="conv_add_relu", cache_dir=cache)


def test_row_08_a_null_calibration_sidecar_is_calibrated_again(tmp_path: Path) -> None:
    """calibration cache sidecar `null`"""
    cold = _calibrated(tmp_path)
    (entry,) = tmp_path.glob("int8-*.onnx")
    entry.with_suffix(".json").write_text("null\n")
    with pytest.warns(CalibrationCacheWarning, match=rf"'conv_add_relu': .*{entry} is unusable .*holds NoneType"):
        assert _calibrated(tmp_path) == cold
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _calibrated(tmp_path) == cold  # healed: the next session reads it back silently


def test_row_08_a_sidecar_without_scales_is_calibrated_again(tmp_path: Path) -> None:
    """calibration cache sidecar `null`"""
    cold = _calibrated(tmp_path)
    (entry,) = tmp_path.glob("int8-*.onnx")
    sidecar = entry.with_suffix(".json")
    sidecar.write_text(sidecar.read_text().replace('"scales"', '"scales_"'))
    with pytest.warns(CalibrationCacheWarning, match=rf"{entry} is unusable .*no \"scales\" object"):
        assert _calibrated(tmp_path) == cold


def test_row_09_a_full_disk_leaves_the_calibration_in_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """full disk while writing the int8 calibration cache"""

    def full_disk(path: Path, data: bytes) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    expected = _calibrated(tmp_path / "elsewhere")
    monkeypatch.setattr("harness.cachefile.write_atomically", full_disk)
    with pytest.warns(CalibrationCacheWarning, match=r"entry .*int8-.*\.onnx cannot be written .*No space left"):
        assert _calibrated(tmp_path / "full") == expected
    assert not [*(tmp_path / "full").glob("int8-*.onnx"), *(tmp_path / "full").glob("int8-*.json")]


def test_row_09_an_unwritable_calibration_folder_calibrates_in_memory(tmp_path: Path) -> None:
    """full disk while writing the int8 calibration cache"""
    blocker = tmp_path / "calibration"
    blocker.write_text("a file where the calibration folder belongs")
    with pytest.warns(CalibrationCacheWarning, match=rf"{blocker}/int8-.*cannot be written"):
        assert _calibrated(blocker) == _calibrated(tmp_path / "elsewhere")


def _spec_case(folder: Path) -> Case:
    linear_model(folder / "classifier.onnx")
    (folder / "models.toml").write_text(SPEC)
    (case,) = load_spec(folder / "models.toml", folder / "engines")
    return case


def _pixels(case: Case) -> dict[str, np.ndarray]:
    return case.make_inputs({"pixels": (2, 16)}, np.random.default_rng(1))


def _reference_file(folder: Path) -> Path:
    (path,) = (folder / "engines" / REFERENCES_DIR).glob("*.npz")
    return path


def test_row_07_a_truncated_reference_is_computed_again(tmp_path: Path) -> None:
    """reference cache (`references/*.npz`) truncated or rewritten"""
    expected = _spec_case(tmp_path).reference_outputs(_pixels(_spec_case(tmp_path)))
    stored = _reference_file(tmp_path)
    stored.write_bytes(stored.read_bytes()[:-40])
    case = _spec_case(tmp_path)  # a new session
    with pytest.warns(ReferenceCacheWarning, match=rf"cached reference {stored} is unusable .*truncated"):
        again = case.reference_outputs(_pixels(case))
    assert np.array_equal(again["logits"], expected["logits"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        healed = _spec_case(tmp_path)
        assert np.array_equal(healed.reference_outputs(_pixels(healed))["logits"], expected["logits"])


def test_row_07_a_rewritten_reference_is_not_trusted(tmp_path: Path) -> None:
    """reference cache (`references/*.npz`) truncated or rewritten"""
    expected = _spec_case(tmp_path).reference_outputs(_pixels(_spec_case(tmp_path)))
    stored = _reference_file(tmp_path)
    np.savez(stored, logits=np.full((2, 4), 7.0))  # a whole, valid .npz with other numbers
    case = _spec_case(tmp_path)
    with pytest.warns(ReferenceCacheWarning, match=rf"{stored} is unusable .*SHA-256 does not match"):
        again = case.reference_outputs(_pixels(case))
    assert np.array_equal(again["logits"], expected["logits"])


def test_row_07_a_full_disk_keeps_the_reference_in_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """reference cache (`references/*.npz`) truncated or rewritten"""

    def full_disk(path: Path, data: bytes) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr("harness.cachefile.write_atomically", full_disk)
    case = _spec_case(tmp_path)
    with pytest.warns(ReferenceCacheWarning, match=r"entry .*references/.*\.npz cannot be written .*No space left"):
        computed = case.reference_outputs(_pixels(case))
    assert computed["logits"].shape == (2, 4)
    assert not list((tmp_path / "engines" / REFERENCES_DIR).glob("*.npz"))


# A session updating the baselines, its write slowed so that the two sessions overlap whenever they can.
_UPDATER = """
import sys, time
from pathlib import Path
from harness import baselines

path, go, name = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
write = baselines.BaselineFile.write
def slow_write(self):
    time.sleep(0.5)
    write(self)
baselines.BaselineFile.write = slow_write
while not go.exists():
    time.sleep(0.005)
tests = {f"test_accuracy[{name}-{index}]": {"case": name, "verdict": "pass"} for index in range(6)}
print(baselines.update(path, "cpu", "ort", "1.0", tests))
"""


def test_row_04_two_concurrent_baseline_updates_both_land(tmp_path: Path) -> None:
    """two concurrent `--update-baselines` sessions on one baselines file"""
    path = baseline_path(tmp_path / "baselines", "cpu", "ort", "1.0")
    update(path, "cpu", "ort", "1.0", {"test_accuracy[kept-0]": {"case": "kept", "verdict": "pass"}})
    go = tmp_path / "go"
    environment = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    sessions = [
        subprocess.Popen(
            [sys.executable, "-c", _UPDATER, str(path), str(go), name], env=environment, stdout=subprocess.PIPE
        )
        for name in ("first", "second")
    ]
    go.touch()
    assert [session.communicate(timeout=60)[0].strip() for session in sessions] == [b"6", b"6"]
    entries = BaselineFile.load(path).entries
    assert sorted({entry["case"] for entry in entries.values()}) == ["first", "kept", "second"]
    assert len(entries) == 13 and not list(path.parent.glob("*.lock"))  # no lock file left in the baselines


def _latencies(rng: np.random.Generator, count: int, scale: float = 1.0) -> list[float]:
    """Latencies of a CPU engine on a shared machine: log-normal around 1 ms (CV ~5 %), 2 % stalls of 2-4x."""
    runs = 1000.0 * scale * rng.lognormal(0.0, 0.05, count)
    stalls = rng.random(count) < 0.02
    runs[stalls] *= rng.uniform(2.0, 4.0, int(stalls.sum()))
    return [float(value) for value in runs]


def _neighbour(rng: np.random.Generator, count: int) -> list[float]:
    """Unchanged code with a neighbour taking the CPU for 60 % of the runs (1.5x slower on those): the median moves
    beyond the threshold, the lower quartile does not (the gate's rule 3 passes it)."""
    runs = np.asarray(_latencies(rng, count))
    runs[: count * 6 // 10] *= 1.5
    return [float(value) for value in runs]


SCENARIOS = {  # name: (new samples, the verdict against the full baseline)
    "unchanged": (lambda rng: _latencies(rng, 400), "pass"),
    "1.03x, below the threshold": (lambda rng: _latencies(rng, 400, 1.03), "pass"),
    "1.25x slower": (lambda rng: _latencies(rng, 400, 1.25), "regression"),
    "0.8x, faster": (lambda rng: _latencies(rng, 400, 0.8), "improvement"),
    "a neighbour": (lambda rng: _neighbour(rng, 400), "pass"),
}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_row_27_the_gate_judges_a_reduced_baseline_as_the_full_one(scenario: str) -> None:
    """baselines for three real models: 5.1 MB: not reviewable in a pull request"""
    policy = GatePolicy(latency_threshold=0.10)
    for seed in range(3):
        rng = np.random.default_rng(seed)
        old = _latencies(rng, 2000)
        make_new, expected = SCENARIOS[scenario]
        new = make_new(rng)
        (entry,) = _stored_entries({"test_latency[x]": {"case": "x", "latency": {"samples_us": old}}}).values()
        kept = entry["latency"]["samples_us"]  # type: ignore[index]
        assert len(kept) == MAX_SAMPLES <= 64  # a bounded sample ...
        distance = np.abs(np.subtract.outer(kept, old)).min(axis=1)
        assert np.all(distance <= 1e-5 * np.asarray(kept))  # ... of actual samples (to 6 significant digits)
        full, reduced = compare_latency(old, new, policy), compare_latency(kept, new, policy)
        assert full.verdict == expected and reduced.verdict == expected, (seed, full.reason, reduced.reason)
        assert abs(reduced.ratio / full.ratio - 1) < 0.01


def _stored_entries(records: dict[str, dict[str, object]]) -> dict[str, dict[str, object]]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ort-1.0.json"
        update(path, "cpu", "ort", "1.0", records)
        return BaselineFile.load(path).entries


def test_row_27_an_entry_keeps_what_the_gate_reads_within_a_few_kilobytes() -> None:
    """baselines for three real models: 5.1 MB: not reviewable in a pull request"""
    rng = np.random.default_rng(0)
    accuracy = [{"output": "prob", "mean_rel": 0.01, "max_rel": 0.2, "tolerance": {"mean_rel": 0.05}}]
    record = {
        "case": "squeezenet",
        "verdict": "pass",
        "latency": {"median_us": 1000.0, "count": 5000, "samples_us": _latencies(rng, 5000)},
        "host_latency": {"median_us": 1010.0, "count": 5000, "samples_us": _latencies(rng, 5000)},
        "accuracy": accuracy,
        "engine": {"timing": {"intra_op_threads": 1}},
        "derivation": {"precision": "int8", "opset": "converted from opset 9 to 13", "scales": {"w": [0.1] * 20_000}},
        "layers": {"layers": [{"name": f"conv{index}", "precision": "int8"} for index in range(500)]},
        "build": {"artifact_path": "/home/someone/.harness/engines/x.bin"},
    }
    (entry,) = _stored_entries({"test_latency[squeezenet-int8-opt-ort]": record}).values()
    assert len(json.dumps(entry, indent=1)) < 6000  # was 420 kB: every sample, scale and layer
    assert entry["accuracy"] == accuracy and entry["engine"] == record["engine"]
    assert entry["derivation"] == {"precision": "int8", "opset": "converted from opset 9 to 13"}
    assert "layers" not in entry and "build" not in entry
    assert entry["latency"]["median_us"] == 1000.0 and entry["latency"]["count"] == 5000  # type: ignore[index]


def test_row_27_a_baseline_with_every_sample_still_loads_and_gates(tmp_path: Path) -> None:
    """baselines for three real models: 5.1 MB: not reviewable in a pull request"""
    rng = np.random.default_rng(0)
    old = _latencies(rng, 2000)
    path = tmp_path / "ort-1.0.json"
    BaselineFile(path, "cpu", "ort", "1.0", {"t": {"case": "x", "latency": {"samples_us": old}}}).write()
    loaded = BaselineFile.load(path).entries["t"]["latency"]["samples_us"]  # type: ignore[index]
    assert loaded == old
    verdict = compare_latency(loaded, _latencies(rng, 400, 1.25), GatePolicy(latency_threshold=0.10)).verdict
    assert verdict == "regression"
    update(path, "cpu", "ort", "1.0", {"u": {"case": "y"}})  # a later update keeps the old entry as it was
    assert BaselineFile.load(path).entries["t"]["latency"]["samples_us"] == old  # type: ignore[index]
