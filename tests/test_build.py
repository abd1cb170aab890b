"""Unit tests of harness/build.py (cache key, EngineStore memo and disk cache) and harness/atomic.py."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pytest

from cases import identity
from harness.atomic import write_atomically
from harness.backends import Artifact, ArtifactIncompatibleError, BuildRequest
from harness.build import BuiltEngine, EngineStore, cache_key, cache_path
from harness.case import Case, Precision, Profile
from harness.errors import BuildError, CaseDefinitionError, EngineCacheWarning
from harness.measure import Timer
from harness.precision.derive import DerivedModel

CASE = identity.CASE
# The models the store derives for the case (harness/precision/): what a backend is asked to build.
FP32_MODEL = EngineStore(None).model_bytes(CASE, Precision.FP32)
FP16_MODEL = EngineStore(None).model_bytes(CASE, Precision.FP16)
TWO_PROFILES = dataclasses.replace(
    CASE,
    profiles=(
        *CASE.profiles,
        Profile(min={"x": (7, 1, 1)}, opt={"x": (8, 4, 5)}, max={"x": (9, 8, 10)}),
    ),
)


@dataclasses.dataclass
class FakeEngine:
    artifact: bytes
    closed: int = 0

    def close(self) -> None:
        self.closed += 1

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"y": np.asarray(inputs["x"])}

    def timer(self, inputs: Mapping[str, np.ndarray]) -> Timer:
        return lambda: 0.0


class FakeBackend:
    """An in-memory Backend that counts builds and loads.

    Artifacts are `payload + model bytes`; load() rejects artifacts that start with `reject_prefix`,
    and build() fails with BuildError for the precisions in `fail_on`.
    """

    clock = "fake clock"

    def __init__(
        self,
        *,
        name: str = "fake",
        version: str = "1.0",
        parts: Mapping[str, str] | None = None,
        payload: bytes = b"artifact:",
        reject_prefix: bytes | None = None,
        fail_on: frozenset[Precision] = frozenset(),
    ) -> None:
        self.name = name
        self._version = version
        self._parts = dict(parts or {"device": "fake-device"})
        self.payload = payload
        self.reject_prefix = reject_prefix
        self.fail_on = fail_on
        self.builds: list[BuildRequest] = []
        self.loads: list[bytes] = []

    def version(self) -> str:
        return self._version

    def device(self) -> str:
        return "fake-device"

    def unsupported_reason(self, case: Case, precision: Precision) -> str | None:
        return None

    def key_parts(self, request: BuildRequest) -> Mapping[str, str]:
        return self._parts

    def runtime_problem(self) -> str | None:
        return None

    def build(self, request: BuildRequest) -> Artifact:
        self.builds.append(request)
        if request.precision in self.fail_on:
            raise BuildError(request.case.name, f"fake build of {request.precision.value} failed")
        return Artifact(self.payload + request.model_bytes, (f"fake warning about {request.precision.value}",))

    def load(self, artifact: bytes, request: BuildRequest) -> FakeEngine:
        self.loads.append(artifact)
        if self.reject_prefix is not None and artifact.startswith(self.reject_prefix):
            raise ArtifactIncompatibleError("fake: artifact from a foreign version")
        return FakeEngine(artifact)


def request_for(case: Case = CASE, precision: Precision = Precision.FP32, model: bytes = b"model") -> BuildRequest:
    return BuildRequest(case, precision, 0, DerivedModel(precision, model))


# cache_key


BASE_KEY = cache_key(FakeBackend(), request_for())


def test_cache_key_is_equal_for_equal_inputs() -> None:
    """Equal backends and requests give the same SHA-256 hex key, whatever the object identities."""
    key = cache_key(FakeBackend(), request_for(dataclasses.replace(CASE)))
    assert key == BASE_KEY
    assert len(key) == 64 and int(key, 16) >= 0


@pytest.mark.parametrize(
    ("backend", "request_"),
    [
        (FakeBackend(), request_for(model=b"model2")),
        (FakeBackend(), request_for(precision=Precision.FP16)),
        (FakeBackend(), request_for(precision=Precision.TF32)),
        (FakeBackend(), request_for(case=dataclasses.replace(CASE, profiles=TWO_PROFILES.profiles[1:]))),
        (FakeBackend(version="1.1"), request_for()),
        (FakeBackend(parts={"device": "other-device"}), request_for()),
        (FakeBackend(parts={"device": "fake-device", "extra": "x"}), request_for()),
        (FakeBackend(name="other"), request_for()),
    ],
    ids=[
        "model-bytes",
        "precision-fp16",
        "precision-tf32",
        "profile",
        "backend-version",
        "key-part-value",
        "key-part-added",
        "backend-name",
    ],
)
def test_cache_key_changes_with_each_ingredient(backend: FakeBackend, request_: BuildRequest) -> None:
    """Changing any one thing that makes an artifact incompatible changes the key."""
    assert cache_key(backend, request_) != BASE_KEY


def test_cache_key_changes_with_one_profile_dim() -> None:
    """Moving a single corner dim of the profile by one changes the key."""
    profile = CASE.profiles[0]
    moved = Profile(min=profile.min, opt=profile.opt, max={"x": (6, 8, 11)})
    assert cache_key(FakeBackend(), request_for(dataclasses.replace(CASE, profiles=(moved,)))) != BASE_KEY


# EngineStore: session memo and disk cache


def test_store_builds_each_point_once(tmp_path: Path) -> None:
    """A second get of the same (backend, case, precision, profile) returns the same engine without a build."""
    backend = FakeBackend()
    store = EngineStore(tmp_path)
    first = store.get(backend, CASE, Precision.FP32, 0)
    again = store.get(backend, CASE, Precision.FP32, 0)
    assert again is first
    assert len(backend.builds) == 1 and len(backend.loads) == 1
    assert first.record.cached is False and first.record.build_s >= 0.0
    assert first.engine.artifact == b"artifact:" + FP32_MODEL  # type: ignore[attr-defined]
    assert first.record.artifact_bytes == len(b"artifact:" + FP32_MODEL)


def test_store_builds_each_precision_and_profile_separately(tmp_path: Path) -> None:
    """Different precisions (even fp32/tf32 with the same model bytes) and profiles are separate engines."""
    backend = FakeBackend()
    store = EngineStore(tmp_path)
    for precision in TWO_PROFILES.precisions:
        for index in range(2):
            store.get(backend, TWO_PROFILES, precision, index)
    points = 2 * len(TWO_PROFILES.precisions)
    assert len(backend.builds) == points
    assert len({(r.precision, r.profile_index) for r in backend.builds}) == points
    # fp32 and tf32 share the float32 model; fp16 and bf16 each have their own.
    assert {r.model_bytes for r in backend.builds} == {FP32_MODEL, FP16_MODEL, store.model_bytes(CASE, Precision.BF16)}
    assert len({FP32_MODEL, FP16_MODEL, store.model_bytes(CASE, Precision.BF16)}) == 3


def test_new_store_loads_from_disk_without_building(tmp_path: Path) -> None:
    """A fresh store on the same directory loads the artifact: cached True, build_s 0.0, no build()."""
    built = EngineStore(tmp_path).get(FakeBackend(), CASE, Precision.FP16, 0)
    backend = FakeBackend()
    loaded = EngineStore(tmp_path).get(backend, CASE, Precision.FP16, 0)
    assert backend.builds == [] and backend.loads == [b"artifact:" + FP16_MODEL]
    assert loaded.record.cached is True and loaded.record.build_s == 0.0
    assert loaded.record.key == built.record.key and loaded.record.artifact_path == built.record.artifact_path
    assert loaded.record.artifact_bytes == built.record.artifact_bytes


def test_other_backend_version_does_not_reuse_the_cache(tmp_path: Path) -> None:
    """An artifact cached by another backend version is not loaded: the new version builds its own."""
    EngineStore(tmp_path).get(FakeBackend(version="1.0"), CASE, Precision.FP32, 0)
    backend = FakeBackend(version="2.0")
    record = EngineStore(tmp_path).get(backend, CASE, Precision.FP32, 0).record
    assert len(backend.builds) == 1 and record.cached is False


def test_no_cache_dir_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With cache_dir None the engine is built in memory: no artifact path, no file anywhere under cwd."""
    monkeypatch.chdir(tmp_path)
    backend = FakeBackend()
    store = EngineStore(None)
    built = store.get(backend, CASE, Precision.FP32, 0)
    store.get(backend, CASE, Precision.FP32, 0)
    assert built.record.artifact_path is None and built.record.cached is False
    assert len(backend.builds) == 1
    assert list(tmp_path.rglob("*")) == []
    other = FakeBackend()
    EngineStore(None).get(other, CASE, Precision.FP32, 0)
    assert len(other.builds) == 1, "without a disk cache a new store must build again"


def test_artifact_alone_builds_or_finds_without_loading_and_keeps_the_builders_warnings(tmp_path: Path) -> None:
    """What a build-only run does: no engine is loaded, and a cache hit still reports the build's warnings."""
    backend = FakeBackend()
    built = EngineStore(tmp_path).artifact(backend, CASE, Precision.FP16, 0)
    assert not built.record.cached and built.record.load_s is None and backend.loads == []
    assert built.record.warnings == ("fake warning about fp16",) and built.read() == b"artifact:" + FP16_MODEL
    again = EngineStore(tmp_path).artifact(backend, CASE, Precision.FP16, 0)
    assert again.record.cached and again.record.warnings == built.record.warnings
    assert len(backend.builds) == 1 and backend.loads == []
    assert again.record.to_json()["warnings"] == ["fake warning about fp16"]


def test_close_closes_every_loaded_engine_once(tmp_path: Path) -> None:
    store = EngineStore(None)
    engines = [store.get(FakeBackend(), CASE, precision, 0).engine for precision in (Precision.FP32, Precision.FP16)]
    store.artifact(FakeBackend(), CASE, Precision.TF32, 0)  # built, never loaded: nothing to close
    store.close()
    assert [engine.closed for engine in engines] == [1, 1]  # type: ignore[attr-defined]


def test_build_failure_is_memoized(tmp_path: Path) -> None:
    """A failed build raises the same exception again on the next get, without a second build()."""
    backend = FakeBackend(fail_on=frozenset({Precision.FP16}))
    store = EngineStore(tmp_path)
    with pytest.raises(BuildError, match=r"^case 'identity': fake build of fp16 failed") as first:
        store.get(backend, CASE, Precision.FP16, 0)
    with pytest.raises(BuildError) as second:
        store.get(backend, CASE, Precision.FP16, 0)
    assert second.value is first.value
    assert len(backend.builds) == 1
    assert store.get(backend, CASE, Precision.FP32, 0).record.cached is False
    assert [r.precision for r in backend.builds] == [Precision.FP16, Precision.FP32]


def artifact_of(tmp_path: Path) -> Path:
    """Build the FP32 identity engine into the cache at tmp_path and return its artifact's path."""
    path = EngineStore(tmp_path).get(FakeBackend(), CASE, Precision.FP32, 0).record.artifact_path
    assert path is not None
    return Path(path)


def truncate(artifact: Path) -> None:
    artifact.write_bytes(artifact.read_bytes()[:-3])


def flip_a_byte(artifact: Path) -> None:
    data = bytearray(artifact.read_bytes())
    data[0] ^= 0xFF
    artifact.write_bytes(bytes(data))


def delete_sidecar(artifact: Path) -> None:
    artifact.with_suffix(".json").unlink()


def garble_sidecar(artifact: Path) -> None:
    artifact.with_suffix(".json").write_text("{not json")


def sidecar_of_other_key(artifact: Path) -> None:
    sidecar = artifact.with_suffix(".json")
    sidecar.write_text(sidecar.read_text().replace('"key": "', '"key": "0'))


def null_sidecar(artifact: Path) -> None:
    """`echo null > sidecar.json`: valid JSON, not an object (it used to raise AttributeError in every test)."""
    artifact.with_suffix(".json").write_text("null\n")


def list_sidecar(artifact: Path) -> None:
    artifact.with_suffix(".json").write_text('["key", "sha256"]')


def binary_sidecar(artifact: Path) -> None:
    artifact.with_suffix(".json").write_bytes(bytes(range(256)))


@pytest.mark.parametrize(
    "damage",
    [
        truncate,
        flip_a_byte,
        delete_sidecar,
        garble_sidecar,
        sidecar_of_other_key,
        null_sidecar,
        list_sidecar,
        binary_sidecar,
    ],
    ids=lambda damage: damage.__name__,
)
def test_damaged_cache_entry_is_rebuilt_with_a_warning(tmp_path: Path, damage: Callable[[Path], None]) -> None:
    """An artifact whose bytes or sidecar are damaged is rebuilt with an EngineCacheWarning, then cached again."""
    artifact = artifact_of(tmp_path)
    good = artifact.read_bytes()
    damage(artifact)
    backend = FakeBackend()
    with pytest.warns(EngineCacheWarning, match=r"^case 'identity': .*rebuilding") as warned:
        built = EngineStore(tmp_path).get(backend, CASE, Precision.FP32, 0)
    assert len(warned) == 1 and str(artifact) in str(warned[0].message)
    assert len(backend.builds) == 1 and built.record.cached is False
    assert built.engine.artifact == good  # type: ignore[attr-defined]
    assert_cache_is_good(tmp_path, good)


def test_damaged_artifact_never_reaches_the_backend(tmp_path: Path) -> None:
    """The SHA-256 check runs before load(): a corrupted artifact is not handed to the backend."""
    artifact = artifact_of(tmp_path)
    flip_a_byte(artifact)
    damaged = artifact.read_bytes()
    backend = FakeBackend()
    with pytest.warns(EngineCacheWarning, match="truncated or corrupted"):
        EngineStore(tmp_path).get(backend, CASE, Precision.FP32, 0)
    assert damaged not in backend.loads


def test_incompatible_artifact_is_rebuilt_with_a_warning(tmp_path: Path) -> None:
    """A load() raising ArtifactIncompatibleError triggers a rebuild, a warning quoting it, and a good cache."""
    artifact_of(tmp_path)  # cached as b"artifact:..."
    backend = FakeBackend(payload=b"new:", reject_prefix=b"artifact:")
    with pytest.warns(EngineCacheWarning, match=r"^case 'identity': .*foreign version.*rebuilding"):
        built = EngineStore(tmp_path).get(backend, CASE, Precision.FP32, 0)
    assert len(backend.builds) == 1 and built.record.cached is False
    assert backend.loads == [b"artifact:" + FP32_MODEL, b"new:" + FP32_MODEL]
    assert_cache_is_good(tmp_path, b"new:" + FP32_MODEL)


def assert_cache_is_good(cache_dir: Path, artifact: bytes) -> None:
    """A new store on cache_dir loads `artifact` from disk without building or warning."""
    backend = FakeBackend()
    with warnings.catch_warnings():
        warnings.simplefilter("error", EngineCacheWarning)
        built: BuiltEngine = EngineStore(cache_dir).get(backend, CASE, Precision.FP32, 0)
    assert built.record.cached is True and backend.builds == []
    assert built.engine.artifact == artifact  # type: ignore[attr-defined]
    assert built.record.artifact_path is not None
    assert hashlib.sha256(Path(built.record.artifact_path).read_bytes()).digest() == hashlib.sha256(artifact).digest()


# write_atomically


def test_write_atomically_replaces_content_and_leaves_no_temp_files(tmp_path: Path) -> None:
    """Two writes leave exactly the target file, holding the second content."""
    target = tmp_path / "sub" / "out.bin"
    write_atomically(target, b"first")
    write_atomically(target, b"second")
    assert target.read_bytes() == b"second"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.bin"]


def test_failed_write_keeps_old_content_and_removes_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An OSError midway (at fsync) propagates, the previous content survives, and no temp file remains."""
    target = tmp_path / "out.bin"
    write_atomically(target, b"old content")

    def failing_fsync(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="disk full"):
        write_atomically(target, b"new content that never lands")
    assert target.read_bytes() == b"old content"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_failed_first_write_creates_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the very first write fails, neither the target nor a temp file exists afterwards."""

    def failing_fsync(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError):
        write_atomically(tmp_path / "out.bin", b"data")
    assert list(tmp_path.iterdir()) == []


def test_two_backends_with_one_library_name_never_share_an_engine() -> None:
    """TensorRT's two workflows are both named 'tensorrt'; each must get its own engine."""
    store = EngineStore(None)
    first, second = FakeBackend(), FakeBackend()
    engine_a = store.get(first, identity.CASE, Precision.FP32, 0)
    engine_b = store.get(second, identity.CASE, Precision.FP32, 0)
    assert first.name == second.name and engine_a is not engine_b
    assert len(first.builds) == len(second.builds) == 1


# A full disk, and names that would leave the cache


def test_a_full_disk_warns_and_the_built_engine_is_used_from_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine was built; failing to cache it used to error the test with OSError: No space left."""

    def full_disk(path: Path, data: bytes) -> None:
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr("harness.cachefile.write_atomically", full_disk)
    backend = FakeBackend()
    store = EngineStore(tmp_path)
    with pytest.warns(EngineCacheWarning, match=r"^case 'identity': the engine cache entry .*\.bin cannot be written "
                      r"\(.*No space left on device.*\); the engine was built and is used from memory"):  # fmt: skip
        built = store.get(backend, CASE, Precision.FP32, 0)
    assert built.engine.artifact.startswith(b"artifact:")  # type: ignore[attr-defined]
    assert built.record.artifact_path is None and built.record.cached is False and len(backend.builds) == 1
    assert store.get(backend, CASE, Precision.FP32, 0) is built  # once per session, no second warning


def test_an_unwritable_cache_folder_warns_and_builds_in_memory(tmp_path: Path) -> None:
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache folder should be")
    with pytest.warns(EngineCacheWarning, match="cannot be written"):
        built = EngineStore(blocker).artifact(FakeBackend(), CASE, Precision.FP32, 0)
    assert built.record.artifact_path is None and built.read().startswith(b"artifact:")


@pytest.mark.parametrize("name", ["../../escaped", "a/b", "/abs", "..", ".hidden", "sp ace", ""])
def test_case_names_are_restricted_to_a_safe_set(name: str) -> None:
    from harness.case import check_case

    with pytest.raises(CaseDefinitionError, match=r"is not allowed: a case name may hold only letters, digits") as info:
        check_case(dataclasses.replace(CASE, name=name))
    assert f"its name {name!r} is not allowed" in str(info.value) and "rename it" in str(info.value)


@pytest.mark.parametrize("name", ["identity", "conv_add_relu", "mnist", "resnet-50", "v1.2"])
def test_ordinary_case_names_pass(name: str) -> None:
    from harness.case import check_case

    check_case(dataclasses.replace(CASE, name=name))


@pytest.mark.parametrize(("case_name", "backend_name"), [("../../escaped", "fake"), ("x", "../../up"), ("a/b", "c/d")])
def test_cache_paths_never_leave_the_cache(tmp_path: Path, case_name: str, backend_name: str) -> None:
    """Even for names check_case would refuse (a plugin backend's name is not checked there)."""
    cache = tmp_path / "cache"
    request = request_for(dataclasses.replace(CASE, name=case_name))
    path = cache_path(cache, backend_name, request, "ab" * 32)
    assert path.resolve().is_relative_to(cache.resolve()) and path.parent.parent == cache
    store = EngineStore(cache)
    built = store.artifact(FakeBackend(name=backend_name), request.case, Precision.FP32, 0)
    assert built.record.artifact_path is not None
    assert Path(built.record.artifact_path).resolve().is_relative_to(cache.resolve())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]


class CountingEngine(FakeEngine):
    """A FakeEngine that keeps count of the engines loaded and not yet closed."""

    live = 0

    def __init__(self, artifact: bytes) -> None:
        super().__init__(artifact)
        CountingEngine.live += 1

    def close(self) -> None:
        if not self.closed:
            CountingEngine.live -= 1
        super().close()


class CountingBackend(FakeBackend):
    def __init__(self, name: str = "fake") -> None:
        super().__init__(name=name)
        self.engines: list[CountingEngine] = []

    def load(self, artifact: bytes, request: BuildRequest) -> CountingEngine:
        self.loads.append(artifact)
        self.engines.append(CountingEngine(artifact))
        return self.engines[-1]


def test_store_keeps_at_most_its_limit_of_engines_loaded_over_a_large_matrix(tmp_path: Path) -> None:
    """40 points (10 backends x 2 precisions x 2 profiles), each got twice as a test and its twin would: never more
    than the limit loaded, the engines a test just got stay open, an engine got again after its release is loaded
    again from its artifact (not rebuilt), and every engine is closed at the end."""
    backends = [CountingBackend(f"fake{number}") for number in range(10)]
    points = [(b, p, i) for b in backends for p in (Precision.FP32, Precision.FP16) for i in range(2)]
    store = EngineStore(tmp_path, loaded_limit=4)
    CountingEngine.live = 0
    for _ in range(2):
        for (backend, precision, index), (twin, twin_precision, twin_index) in zip(points, points[1:] + points[:1]):
            held = store.get(backend, TWO_PROFILES, precision, index)
            twin_held = store.get(twin, TWO_PROFILES, twin_precision, twin_index)
            assert not held.engine.closed and not twin_held.engine.closed  # type: ignore[attr-defined]
            assert CountingEngine.live <= 4
    assert all(len(backend.builds) == 4 for backend in backends)  # released engines are loaded, not rebuilt
    assert sum(len(backend.loads) for backend in backends) > len(points)
    store.close()
    engines = [engine for backend in backends for engine in backend.engines]
    assert CountingEngine.live == 0 and all(engine.closed == 1 for engine in engines)


def test_store_keeps_an_engine_used_again_and_refuses_a_limit_below_what_a_test_holds(tmp_path: Path) -> None:
    backend = CountingBackend()
    store = EngineStore(tmp_path, loaded_limit=2)
    first = store.get(backend, TWO_PROFILES, Precision.FP32, 0)
    store.get(backend, TWO_PROFILES, Precision.FP32, 1)
    assert store.get(backend, TWO_PROFILES, Precision.FP32, 0) is first  # used again: now the most recent
    store.get(backend, TWO_PROFILES, Precision.FP16, 0)  # releases profile 1, the least recently used
    assert not first.engine.closed and [engine.closed for engine in backend.engines] == [0, 1, 0]  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="at least 2"):
        EngineStore(tmp_path, loaded_limit=1)
