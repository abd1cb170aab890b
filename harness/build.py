"""The build layer: one engine per (backend, case, precision, profile) per session, cached on disk.

The disk cache keys an artifact by a SHA-256 over everything that makes it incompatible (see
`cache_key`). Artifacts are written atomically under a file lock, so concurrent sessions (or xdist
workers) sharing one cache never read half a file and never build the same engine twice at once.
Every artifact has a sidecar JSON holding its own SHA-256, checked before the backend sees the bytes.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import filelock

from harness.atomic import write_atomically
from harness.backends import ArtifactIncompatibleError, Backend, BuildRequest, Engine
from harness.case import Case, Precision

# Bump when the layout of the cache or the meaning of a key changes.
CACHE_FORMAT = 1


class EngineCacheWarning(UserWarning):
    """A cached artifact was unusable and has been rebuilt."""


@dataclass(frozen=True)
class BuildRecord:
    key: str
    cached: bool  # loaded from the disk cache: no build ran in this session
    build_s: float  # time the backend spent building (0.0 when cached)
    load_s: float  # time to load the artifact into a runnable engine
    artifact_bytes: int
    artifact_path: str | None

    def to_json(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class BuiltEngine:
    engine: Engine
    record: BuildRecord


def cache_key(backend: Backend, request: BuildRequest) -> str:
    """SHA-256 over everything that affects the artifact: model bytes, precision, profile, backend."""
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


class EngineStore:
    """Builds each engine once per session; keeps artifacts on disk when given a cache directory."""

    def __init__(self, cache_dir: Path | None) -> None:
        self._cache_dir = cache_dir
        # Keyed by the backend object itself: two backends may share a library name (TensorRT's
        # parser and network-API workflows) yet must never share an engine.
        self._engines: dict[tuple[Backend, str, Precision, int], BuiltEngine | Exception] = {}
        self._models: dict[tuple[str, str], bytes] = {}

    def model_bytes(self, case: Case, precision: Precision) -> bytes:
        key = (case.name, precision.compute_dtype.name)
        if key not in self._models:
            self._models[key] = case.onnx_model(precision.compute_dtype).SerializeToString()
        return self._models[key]

    def get(self, backend: Backend, case: Case, precision: Precision, profile_index: int) -> BuiltEngine:
        """The session's engine for this point; a build that failed fails again without a retry."""
        memo_key = (backend, case.name, precision, profile_index)
        if memo_key not in self._engines:
            try:
                request = BuildRequest(case, precision, profile_index, self.model_bytes(case, precision))
                self._engines[memo_key] = self._build_or_load(backend, request)
            except Exception as error:  # noqa: BLE001 - any failure is kept and re-raised below
                # Every test of this engine reports the same error; none retries a build that failed.
                self._engines[memo_key] = error
        outcome = self._engines[memo_key]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def _build_or_load(self, backend: Backend, request: BuildRequest) -> BuiltEngine:
        key = cache_key(backend, request)
        if self._cache_dir is None:
            return _build(backend, request, key, artifact_path=None)
        stem = f"{request.case.name}-{request.precision.value}-p{request.profile_index}-{key[:20]}"
        artifact_path = self._cache_dir / backend.name / f"{stem}.bin"
        artifact_path.parent.mkdir(parents=True, exist_ok=True)
        with filelock.FileLock(f"{artifact_path}.lock"):
            cached = _load_cached(backend, request, key, artifact_path)
            return cached or _build(backend, request, key, artifact_path)


def _build(backend: Backend, request: BuildRequest, key: str, artifact_path: Path | None) -> BuiltEngine:
    start = time.perf_counter()
    artifact = backend.build(request)
    build_s = time.perf_counter() - start
    if artifact_path is not None:
        write_atomically(artifact_path, artifact)
        sidecar = {"key": key, "sha256": hashlib.sha256(artifact).hexdigest(), "bytes": len(artifact)}
        write_atomically(_sidecar(artifact_path), json.dumps(sidecar, indent=1).encode())
    start = time.perf_counter()
    engine = backend.load(artifact, request)
    record = BuildRecord(
        key=key,
        cached=False,
        build_s=build_s,
        load_s=time.perf_counter() - start,
        artifact_bytes=len(artifact),
        artifact_path=str(artifact_path) if artifact_path else None,
    )
    return BuiltEngine(engine, record)


def _load_cached(backend: Backend, request: BuildRequest, key: str, artifact_path: Path) -> BuiltEngine | None:
    """The cached engine, or None (with a warning when a file was there but unusable)."""
    if not artifact_path.exists():
        return None
    start = time.perf_counter()
    artifact = artifact_path.read_bytes()
    problem = _integrity_problem(artifact, artifact_path, key)
    if problem is None:
        try:
            engine = backend.load(artifact, request)
        except ArtifactIncompatibleError as error:
            problem = str(error)
        else:
            record = BuildRecord(key, True, 0.0, time.perf_counter() - start, len(artifact), str(artifact_path))
            return BuiltEngine(engine, record)
    warnings.warn(
        EngineCacheWarning(
            f"case '{request.case.name}': cached {backend.name} artifact {artifact_path} is unusable ({problem}); rebuilding it"
        ),
        stacklevel=2,
    )
    return None


def _integrity_problem(artifact: bytes, artifact_path: Path, key: str) -> str | None:
    try:
        sidecar = json.loads(_sidecar(artifact_path).read_text())
    except (OSError, ValueError) as error:
        return f"its checksum file is missing or unreadable: {error}"
    if sidecar.get("key") != key:
        return "its checksum file belongs to another key"
    if sidecar.get("sha256") != hashlib.sha256(artifact).hexdigest():
        return "its SHA-256 does not match the one recorded when it was written (truncated or corrupted)"
    return None


def _sidecar(artifact_path: Path) -> Path:
    return artifact_path.with_suffix(".json")
