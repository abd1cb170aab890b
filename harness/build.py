"""The build layer: one engine per (backend, case, precision, profile) per session, cached on disk.

The disk cache keys an artifact by a SHA-256 over everything that makes it incompatible (see
`cache_key`). Artifacts are written atomically under a file lock, so concurrent sessions (or xdist
workers) sharing one cache never read half a file and never build the same engine twice at once.
Every artifact has a sidecar JSON holding its own SHA-256 (harness/cachefile.py), checked on the very bytes the
backend is handed. The cache has a size limit: after a store, the least recently used artifacts are evicted.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TypeVar

import filelock

from harness import cachefile
from harness.atomic import lock_removed, release_removed
from harness.backends import ArtifactIncompatibleError, Backend, BuildRequest, Engine
from harness.case import Case, Precision
from harness.errors import EngineCacheWarning, HarnessError
from harness.naming import engine_name
from harness.precision.derive import DerivedModel, PrecisionOptions, derive
from harness.progress import BuildProgressLines, DerivationLines

T = TypeVar("T")

# Bump when the layout of the cache or the meaning of a key changes.
CACHE_FORMAT = 1
# The engine cache's size limit unless --engine-cache-size says otherwise: nine real models took 5 GB unbounded.
DEFAULT_CACHE_LIMIT = 2 * 1024**3
# Engines a session keeps loaded (device memory, streams) unless told otherwise; the least recently used go first.
DEFAULT_LOADED_ENGINES = 16
# The engines one test holds: its point's, and for an agreement test its twin's. A test gets its engines last, so
# they are the most recently used: a store that keeps at least this many never releases one a running test holds.
ENGINES_A_TEST_HOLDS = 2


class EngineCacheError(HarnessError):
    """The engine cache cannot be used for an artifact (its path would leave the cache directory)."""


@dataclass(frozen=True)
class BuildRecord:
    key: str
    cached: bool  # found in the disk cache: no build ran in this session
    build_s: float  # time the backend spent building (0.0 when cached)
    load_s: float | None  # time to load the artifact into a runnable engine; None while not loaded (build-only)
    artifact_bytes: int
    artifact_path: str | None
    warnings: tuple[str, ...] = ()  # the builder's warnings, kept with a cached artifact too
    # Seconds this artifact paid deriving its model (fp16/bf16 conversion, int8 quantization and calibration):
    # the first artifact of a (case, precision) in the session pays it, the others share the model (0.0). With
    # build_s, the whole cost of the engine: an int8 calibration can take far longer than the build.
    derive_s: float = 0.0

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "warnings": list(self.warnings)}


class CachedArtifactChangedError(Exception):
    """The cached artifact changed (or went) after it was found: it must be rebuilt, not loaded."""


@dataclass(frozen=True)
class BuiltArtifact:
    """A built (or cached) artifact: its bytes stay on disk when there is a cache, in memory otherwise."""

    record: BuildRecord
    data: bytes | None  # None: read it from record.artifact_path when an engine is loaded

    def read(self) -> bytes:
        """The artifact's bytes; from the cache read once and checked against the sidecar's SHA-256, so that the
        bytes handed to the backend are the bytes checked (CachedArtifactChangedError when they are not intact)."""
        if self.data is not None:
            return self.data
        assert self.record.artifact_path is not None
        entry = cachefile.read_entry(Path(self.record.artifact_path), self.record.key)
        if not isinstance(entry, cachefile.Entry):
            problem = entry.problem if entry is not None else "it was removed"
            raise CachedArtifactChangedError(f"it changed after it was checked: {problem}")
        return entry.data


@dataclass(frozen=True)
class BuiltEngine:
    engine: Engine
    record: BuildRecord


def cache_key(backend: Backend, request: BuildRequest) -> str:
    """SHA-256 over everything that affects the artifact: model bytes, precision, profile, backend (its
    library and version: a plan of another TensorRT library or version is never even looked up)."""
    profile = request.case.profiles[request.profile_index]
    parts = {
        "format": CACHE_FORMAT,
        "model_sha256": hashlib.sha256(request.model_bytes).hexdigest(),
        "precision": request.precision.value,
        "profile": {
            corner: {k: list(v) for k, v in getattr(profile, corner).items()} for corner in ("min", "opt", "max")
        },
        "backend": backend.name,
        "backend_version": backend.version(),
        "backend_parts": dict(backend.key_parts(request)),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


_Point = tuple[Backend, str, Precision, int]


class EngineStore:
    """Builds each artifact once per session and keeps at most `loaded_limit` engines loaded, releasing the least
    recently used (closed, loaded again from its artifact if asked for again); keeps artifacts on disk when given
    a cache directory. Failures are kept too: every test of a point reports the same error, and none retries a
    build or a load that failed."""

    def __init__(
        self,
        cache_dir: Path | None,
        precision_options: PrecisionOptions | None = None,
        write_progress: Callable[[str], None] | None = None,
        cache_limit: int | None = DEFAULT_CACHE_LIMIT,
        loaded_limit: int = DEFAULT_LOADED_ENGINES,
    ) -> None:
        if loaded_limit < ENGINES_A_TEST_HOLDS:
            raise ValueError(
                f"an engine store keeps at least {ENGINES_A_TEST_HOLDS} engines loaded, not {loaded_limit}"
            )
        self._cache_dir = cache_dir
        self._cache_limit = cache_limit  # bytes of engine artifacts the cache keeps; None: no limit
        self._write_progress = write_progress  # where long builds say how far they are (harness/progress.py)
        options = precision_options or PrecisionOptions()
        # int8's calibration results live beside the engines: one cache to share, clear or keep warm.
        self._precision_options = replace(options, cache_dir=cache_dir / "calibration" if cache_dir else None)
        # Keyed by the backend object itself: two backends may share a library name (TensorRT's
        # parser and network-API workflows) yet must never share an engine.
        self._artifacts: dict[_Point, BuiltArtifact | Exception] = {}
        self._loaded_limit = loaded_limit
        self._engines: OrderedDict[_Point, BuiltEngine] = OrderedDict()  # least recently used first
        self._load_failures: dict[_Point, Exception] = {}
        self._models: dict[tuple[str, Precision], DerivedModel | Exception] = {}
        # Derivation seconds not yet paid by an artifact, and what each artifact paid (see BuildRecord.derive_s).
        self._unpaid_derive_s: dict[tuple[str, Precision], float] = {}
        self._derive_s: dict[_Point, float] = {}

    def derived(self, case: Case, precision: Precision) -> DerivedModel:
        """The model `precision` runs (harness/precision/), derived once per session from the case's float32
        model; keyed by Precision, so no two precisions ever share a model."""
        return _memoized(self._models, (case.name, precision), lambda: self._derive(case, precision))

    def model_bytes(self, case: Case, precision: Precision) -> bytes:
        return self.derived(case, precision).model_bytes

    def artifact(self, backend: Backend, case: Case, precision: Precision, profile_index: int) -> BuiltArtifact:
        """The point's artifact, built or found in the cache, not loaded: all a build-only run needs."""
        point = (backend, case.name, precision, profile_index)
        return _memoized(self._artifacts, point, lambda: self._artifact(point, case))

    def get(self, backend: Backend, case: Case, precision: Precision, profile_index: int) -> BuiltEngine:
        """The session's engine for this point; a cached artifact the backend cannot load is rebuilt. Loading
        one closes the least recently used beyond the limit: never one of the last ENGINES_A_TEST_HOLDS got."""
        point = (backend, case.name, precision, profile_index)
        if point in self._engines:
            self._engines.move_to_end(point)
            return self._engines[point]
        if point in self._load_failures:
            raise self._load_failures[point]
        try:
            built = self._load(point, case)
        except Exception as error:
            self._load_failures[point] = error
            raise
        self._engines[point] = built
        while len(self._engines) > self._loaded_limit:
            _, released = self._engines.popitem(last=False)
            released.engine.close()
        return built

    def close(self) -> None:
        """Free every loaded engine (streams, device memory): the session is over."""
        for built in self._engines.values():
            built.engine.close()
        self._engines.clear()

    def _derive(self, case: Case, precision: Precision) -> DerivedModel:
        """derive(), timed, with progress lines when it is long (int8 calibration)."""
        lines = DerivationLines(f"{precision.value} model of {case.name}", self._write_progress or _silent)
        start = time.perf_counter()
        try:
            derived = derive(case, precision, self._precision_options, calibrating=lines.calibrating)
        except Exception:
            lines.finished(time.perf_counter() - start, derived=False)
            raise
        self._unpaid_derive_s[(case.name, precision)] = time.perf_counter() - start
        lines.finished(self._unpaid_derive_s[(case.name, precision)], derived=True)
        return derived

    def _artifact(self, point: _Point, case: Case) -> BuiltArtifact:
        request = self._request(point, case)  # derives the model the first time (case, precision) is asked for
        derive_s = self._derive_s[point] = self._unpaid_derive_s.pop((case.name, point[2]), 0.0)
        built = self._build_or_find(point[0], request)
        return replace(built, record=replace(built.record, derive_s=derive_s))  # a cached artifact's too

    def _request(self, point: _Point, case: Case) -> BuildRequest:
        _, _, precision, profile_index = point
        return BuildRequest(case, precision, profile_index, self.derived(case, precision))

    def _load(self, point: _Point, case: Case) -> BuiltEngine:
        backend = point[0]
        built = self.artifact(backend, case, point[2], point[3])
        request = self._request(point, case)
        try:
            data = built.read()
        except CachedArtifactChangedError as error:  # rewritten or removed on disk since it was found or stored
            built, data = self._rebuilt(point, request, built, str(error))
        start = time.perf_counter()
        try:
            engine = backend.load(data, request)
        except ArtifactIncompatibleError as error:
            if not built.record.cached:
                raise  # a fresh build that cannot load: rebuilding would only fail again
            built, data = self._rebuilt(point, request, built, str(error))
            start = time.perf_counter()
            engine = backend.load(data, request)
        if built.record.artifact_path is not None:
            _touch(Path(built.record.artifact_path))  # used: the last to be evicted
        return BuiltEngine(engine, replace(built.record, load_s=time.perf_counter() - start))

    def _rebuilt(
        self, point: _Point, request: BuildRequest, stale: BuiltArtifact, problem: str
    ) -> tuple[BuiltArtifact, bytes]:
        """Rebuild an unusable cached artifact, with a warning naming it; the new artifact and its bytes (kept in
        memory: the bytes built are the bytes loaded)."""
        _warn_unusable(point[0], request, stale.record.artifact_path, problem)
        built, data = self._rebuild(point[0], request, stale.record)
        self._artifacts[point] = built
        return built, data

    def _build_or_find(self, backend: Backend, request: BuildRequest) -> BuiltArtifact:
        key = cache_key(backend, request)
        if self._cache_dir is None:
            return self._build(backend, request, key, artifact_path=None)[0]
        artifact_path = cache_path(self._cache_dir, backend.name, request, key)
        try:
            artifact_path.parent.mkdir(parents=True, exist_ok=True)
            lock = filelock.FileLock(f"{artifact_path}.lock")
            lock.acquire()
        except OSError as error:  # a full or read-only disk: the engine is built all the same, in memory
            cachefile.warn_unwritable(
                EngineCacheWarning,
                request.case.name,
                "engine cache entry",
                artifact_path,
                error,
                "the engine was built",
            )
            return self._build(backend, request, key, artifact_path=None)[0]
        try:
            found = _find_cached(backend, request, key, artifact_path)
            built = found or self._build(backend, request, key, artifact_path)[0]
        finally:
            release_removed(lock)  # no lock file stays behind in the cache
        if found is None and built.record.artifact_path is not None:
            self._evict(keep=artifact_path)
        return built

    def _rebuild(self, backend: Backend, request: BuildRequest, stale: BuildRecord) -> tuple[BuiltArtifact, bytes]:
        if stale.artifact_path is None:
            return self._build(backend, request, stale.key, None)
        with lock_removed(Path(f"{stale.artifact_path}.lock")):
            return self._build(backend, request, stale.key, Path(stale.artifact_path))

    def _evict(self, keep: Path) -> None:
        """Least recently used artifacts out until the cache is within its size limit; never `keep` (just stored)
        nor one this session found or built (it may still be loaded)."""
        assert self._cache_dir is not None
        if self._cache_limit is None:
            return
        in_use = {keep} | {
            Path(outcome.record.artifact_path)
            for outcome in self._artifacts.values()
            if isinstance(outcome, BuiltArtifact) and outcome.record.artifact_path is not None
        }
        evict_least_recently_used(self._cache_dir, self._cache_limit, in_use)

    def _build(
        self, backend: Backend, request: BuildRequest, key: str, artifact_path: Path | None
    ) -> tuple[BuiltArtifact, bytes]:
        """The artifact, stored in the cache at `artifact_path` when given and writable, and its bytes."""
        progress = None
        if self._write_progress is not None:
            label = (
                f"{engine_name(request.case.name, request.precision.value, request.profile_index)} on {backend.name}"
            )
            progress = BuildProgressLines(label, self._write_progress)
        derive_s = self._derive_s.get((backend, request.case.name, request.precision, request.profile_index), 0.0)
        start = time.perf_counter()
        try:
            artifact = backend.build(replace(request, progress=progress))
        except Exception:
            if progress is not None:
                progress.finished(time.perf_counter() - start, built=False, derive_s=derive_s)
            raise
        build_s = time.perf_counter() - start
        if progress is not None:
            progress.finished(build_s, built=True, derive_s=derive_s)
        if artifact_path is not None and not _stored(request, artifact_path, key, artifact.data, artifact.warnings):
            artifact_path = None  # not cached: the engine is used from memory
        record = BuildRecord(
            key=key,
            cached=False,
            build_s=build_s,
            load_s=None,
            artifact_bytes=len(artifact.data),
            artifact_path=str(artifact_path) if artifact_path else None,
            warnings=artifact.warnings,
            derive_s=derive_s,
        )
        return BuiltArtifact(record, None if artifact_path else artifact.data), artifact.data


def cache_path(cache_dir: Path, backend_name: str, request: BuildRequest, key: str) -> Path:
    """Where the artifact lives: every component made file-name safe, and never outside `cache_dir`
    (check_case already refuses unsafe case names; a plugin backend's name is not checked there)."""
    stem = f"{engine_name(request.case.name, request.precision.value, request.profile_index)}-{key[:20]}"
    path = cache_dir / _safe_component(backend_name) / f"{_safe_component(stem)}.bin"
    if Path(os.path.normpath(path)).parent.parent != Path(
        os.path.normpath(cache_dir)
    ):  # lexically: symlinks are the user's
        raise EngineCacheError(
            f"case '{request.case.name}': its engine cache path {path} would leave the cache {cache_dir}; "
            "give the case and backend names of letters, digits, '_', '-' and '.'"
        )
    return path


def _safe_component(name: str) -> str:
    """One path component: anything but letters, digits, '_', '-', '.' becomes '_', and no leading dot."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name).lstrip(".") or "_"


def _stored(request: BuildRequest, artifact_path: Path, key: str, data: bytes, logged: tuple[str, ...]) -> bool:
    """Write the artifact and its sidecar into the cache; a failed write (a full disk) is a warning, not
    an error: the engine was built and is used from memory. Whether it was stored."""
    try:
        cachefile.write_entry(artifact_path, key, data, {"warnings": list(logged)})
    except OSError as error:
        cachefile.warn_unwritable(
            EngineCacheWarning, request.case.name, "engine cache entry", artifact_path, error, "the engine was built"
        )
        return False
    return True


def _touch(artifact_path: Path) -> None:
    """Mark an artifact used now (its modification time): eviction takes the least recently used first."""
    try:
        os.utime(artifact_path)
    except OSError:
        pass  # a read-only cache is still read: it is just not evicted in the order of use


def evict_least_recently_used(cache_dir: Path, limit: int, keep: set[Path]) -> list[Path]:
    """Remove the least recently used artifacts (and their sidecars) until those in `cache_dir` take at most
    `limit` bytes; never one in `keep`, nor one whose lock another session holds (being built or checked).
    The removed artifacts' paths, oldest first."""
    entries = []
    for artifact in cache_dir.glob("*/*.bin"):
        try:
            stats = artifact.stat()
            size = stats.st_size + _size(cachefile.sidecar_path(artifact))
        except OSError:
            continue  # removed meanwhile
        entries.append((stats.st_mtime, artifact, size))
    total = sum(size for _, _, size in entries)
    removed = []
    for _, artifact, size in sorted(entries):
        if total <= limit:
            break
        if artifact in keep:
            continue
        try:
            with lock_removed(Path(f"{artifact}.lock"), timeout=0):
                artifact.unlink(missing_ok=True)
                cachefile.sidecar_path(artifact).unlink(missing_ok=True)
        except filelock.Timeout:
            continue  # in use by another session
        except OSError:
            continue  # not ours to remove (permissions): the limit is then exceeded, nothing breaks
        total -= size
        removed.append(artifact)
    return removed


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


K = TypeVar("K")


def _silent(line: str) -> None:
    """Where progress goes without a terminal (an xdist worker)."""


def _memoized(memo: dict[K, T | Exception], point: K, make: Callable[[], T]) -> T:
    if point not in memo:
        try:
            memo[point] = make()
        except Exception as error:  # noqa: BLE001 - any failure is kept and re-raised below
            memo[point] = error
    outcome = memo[point]
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def _find_cached(backend: Backend, request: BuildRequest, key: str, artifact_path: Path) -> BuiltArtifact | None:
    """The cached artifact if it is intact, else None (with a warning when a file was there but unusable).
    Whether the backend can load it is decided when an engine is needed (EngineStore.get)."""
    entry = cachefile.read_entry(artifact_path, key)
    if entry is None:
        return None
    if isinstance(entry, cachefile.Unusable):
        _warn_unusable(backend, request, str(artifact_path), entry.problem)
        return None
    _touch(artifact_path)
    logged = entry.sidecar.get("warnings")
    warned = tuple(str(line) for line in logged) if isinstance(logged, list) else ()
    record = BuildRecord(key, True, 0.0, None, len(entry.data), str(artifact_path), warned)
    return BuiltArtifact(record, None)


def _warn_unusable(backend: Backend, request: BuildRequest, artifact_path: str | None, problem: str) -> None:
    warnings.warn(
        EngineCacheWarning(
            f"case '{request.case.name}': cached {backend.name} artifact {artifact_path} is unusable ({problem}); "
            "rebuilding it"
        ),
        stacklevel=3,
    )
