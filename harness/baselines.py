"""Baselines: reviewable JSON, one file per device class, backend and backend version.

    baselines/<device class>/<backend id>-<backend version>.json

A file maps test ids (e.g. "test_latency[mnist-fp16-opt-trt]") to the test's record as written in
the results file (README, "Results file"), raw latency samples thinned to at most MAX_SAMPLES.
Updating writes only the tests that ran and passed, atomically, and keeps every other entry.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness.atomic import write_atomically
from harness.errors import HarnessError

SCHEMA = "trt-harness/baseline"
SCHEMA_VERSION = 1
MAX_SAMPLES = 2000  # enough for the rank test and the bootstrap CI; keeps files reviewable


class BaselineError(HarnessError):
    """A baseline file cannot be used; the message names the file and the fix."""


def device_class(device: str) -> str:
    """A file-name-safe class of device: 'NVIDIA H200 (compute capability 9.0)' → 'nvidia-h200-cc9.0'."""
    slug = device.lower().replace("compute capability ", "cc")
    return re.sub(r"[^a-z0-9.]+", "-", slug).strip("-") or "unknown-device"


@dataclass
class BaselineFile:
    path: Path
    device_class: str
    backend: str  # short id, e.g. "trt"
    backend_version: str
    entries: dict[str, dict[str, object]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> BaselineFile:
        try:
            text = path.read_text()
        except OSError as error:
            raise BaselineError(f"baseline {path} cannot be read ({error}); restore it from version control") from None
        try:
            data = json.loads(text, object_pairs_hook=_refuse_duplicates)
        except _DuplicateKeyError as error:
            raise BaselineError(
                f"baseline {path} holds test id {error.key!r} twice; keep one entry (git diff shows which is new)"
            ) from None
        except json.JSONDecodeError as error:
            raise BaselineError(
                f"baseline {path} is not valid JSON ({error.msg} at line {error.lineno} column {error.colno}; "
                "truncated or corrupted?); restore it from version control or delete it and run --update-baselines"
            ) from None
        return cls._from_json(path, data)

    @classmethod
    def _from_json(cls, path: Path, data: object) -> BaselineFile:
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            raise BaselineError(f'{path} is not a trt-harness baseline file (no "schema": "{SCHEMA}")')
        if data.get("schema_version") != SCHEMA_VERSION:
            raise BaselineError(
                f"baseline {path} has schema_version {data.get('schema_version')!r}, this harness reads "
                f"{SCHEMA_VERSION}; use the harness version that wrote it, or re-create it with --update-baselines"
            )
        entries = data.get("entries")
        if not isinstance(entries, dict) or not all(isinstance(entry, dict) for entry in entries.values()):
            raise BaselineError(f'baseline {path}: "entries" must map test ids to objects')
        return cls(
            path=path,
            device_class=str(data.get("device_class")),
            backend=str(data.get("backend")),
            backend_version=str(data.get("backend_version")),
            entries=entries,
        )

    def to_json(self) -> dict[str, object]:
        return {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "device_class": self.device_class,
            "backend": self.backend,
            "backend_version": self.backend_version,
            "updated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "entries": dict(sorted(self.entries.items())),
        }

    def write(self) -> None:
        write_atomically(self.path, (json.dumps(self.to_json(), indent=1, allow_nan=False) + "\n").encode())


def baseline_path(root: Path, device: str, backend: str, version: str) -> Path:
    return root / device_class(device) / f"{backend}-{version}.json"


def update(path: Path, device: str, backend: str, version: str, tests: Mapping[str, Mapping[str, object]]) -> int:
    """Merge these test records into the file at `path` (created if missing); returns entries written.

    An existing file that cannot be read is never overwritten: its entries would be lost."""
    current = BaselineFile.load(path) if path.exists() else BaselineFile(path, device_class(device), backend, version)
    current.entries.update({test_id: _thinned(record) for test_id, record in tests.items()})
    current.write()
    return len(tests)


def _thinned(record: Mapping[str, object]) -> dict[str, object]:
    entry = dict(record)
    for key in ("latency", "host_latency"):
        stats = entry.get(key)
        if isinstance(stats, dict) and isinstance(stats.get("samples_us"), list):
            samples = stats["samples_us"]
            step = max(1, -(-len(samples) // MAX_SAMPLES))
            entry[key] = {**stats, "samples_us": samples[::step]}
    return entry


@dataclass(frozen=True)
class Selection:
    """The baseline a session compares with, and what to tell the user about the choice."""

    baseline: BaselineFile | None
    note: str


def select(root: Path, device: str, backend: str, version: str, baseline_from: str | None, library: str) -> Selection:
    """The file for this device class, backend and version; or, with --baseline-from BACKEND-VERSION,
    the newest file of that backend whose version starts with VERSION (the upgrade gate). BACKEND may
    be the backend's library as its descriptor names it: tensorrt-10.16 means trt-10.16 for `trt`."""
    folder = root / device_class(device)
    if baseline_from:
        wanted_backend, _, prefix = baseline_from.rpartition("-")
        candidates = sorted(folder.glob(f"{backend}-{prefix}*.json")) if wanted_backend in (backend, library) else []
        if not candidates:
            return Selection(None, f"--baseline-from {baseline_from}: no {backend} {prefix}* baseline in {folder}")
        chosen = candidates[-1]
        return Selection(
            BaselineFile.load(chosen), f"comparing {backend} {version} with the baseline {chosen} (--baseline-from)"
        )
    exact = baseline_path(root, device, backend, version)
    if exact.exists():
        return Selection(BaselineFile.load(exact), f"baseline {exact}")
    others = sorted(path.name for path in folder.glob(f"{backend}-*.json"))
    if others:
        return Selection(
            None,
            f"no baseline for {backend} {version} on {device_class(device)}; there are {', '.join(others)}: "
            f"to gate this upgrade against one, pass --baseline-from {backend}-<version>",
        )
    elsewhere = sorted(str(path.parent.name) for path in root.glob(f"*/{backend}-*.json"))
    where = f" (baselines exist for other devices: {', '.join(elsewhere)})" if elsewhere else ""
    return Selection(None, f"no baseline for {backend} on {device_class(device)}{where}")


class _DuplicateKeyError(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _refuse_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    seen: dict[str, object] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKeyError(key)
        seen[key] = value
    return seen
