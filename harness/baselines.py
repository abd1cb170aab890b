"""Baselines: reviewable JSON, one file per device class, backend and backend version.

    baselines/<device class>/<backend id>-<backend version>.json

A file maps test ids (e.g. "test_latency[mnist-fp16-opt-trt]") to what the gate needs of the test's record as
written in the results file (docs/results-format.md), small enough to review in a pull request (<= 50 kB per real
model, benchmarks/baseline_size.py): the record less what only the report reads (DROPPED: int8 scales, per-layer
precisions, localization, the build's local paths, the recording run's own comparison, why a layer profile is
missing; a build test keeps its build time, plan size and whether it was cached), the latency test's layer profile as
recorded (medians per layer: harness/profile.py; its rows packed, _packed), each latency's summary
statistics as measured, and its samples reduced to at most MAX_SAMPLES evenly spaced order statistics (the quantiles
(i + 0.5) / MAX_SAMPLES of the samples, chosen deterministically). The gate's rules read medians, lower quartiles and
ranks, which these keep (tests/faults/test_faults_caches.py holds its verdicts equal on both). A file written with
every sample (before this reduction) still loads and gates as before.
An update run records each latency test's A/A pair (harness/drift.py) in its entry; the file's "drift" summarizes
its entries' pairs (Drift), written from them, so the two never disagree; a file without pairs has no "drift".
Updating writes only the tests that ran and passed, atomically, and keeps every other entry. Updates are
serialized across processes by a file lock beside the file (`<file>.lock`, as the engine cache locks its
artifacts): the file is read again under the lock and this session's entries merged in, so two sessions
updating one file at once both keep their entries.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import math
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from harness.atomic import lock_removed, write_atomically
from harness.drift import Drift, pair_problem
from harness.errors import HarnessError
from harness.gate import Resolution
from harness.profile import layer_profile_problem
from harness.recorded import is_number, json_safe, recorded_number, significant

SCHEMA = "trt-harness/baseline"
SCHEMA_VERSION = 1
MAX_SAMPLES = 64  # latency samples kept per test: >= the gate's 30, and 2 x 64 numbers of ~20 bytes per test
# What no gate reads, kept in the results file only: int8 scales (90 kB per int8 test of SqueezeNet), per-layer
# precisions, the first layer beyond tolerance, the build (its local artifact path; a build test keeps its costs:
# _thinned), the recording run's gate.
DROPPED = ("layers", "localization", "build", "gate", "worker", "cuda_visible_devices", "layer_profile_error")
DROPPED_DERIVATION = ("scales",)
MAX_MESSAGE = 500  # characters of a message kept (a passing test rarely has one)


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
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise BaselineError(f"baseline {path} cannot be read ({error}); restore it from version control") from None
        except UnicodeDecodeError as error:
            raise BaselineError(
                f"baseline {path} is not UTF-8 text (byte {error.start}: {error.reason}; a binary or corrupted file?); "
                "restore it from version control, or delete it and record it again with --update-baselines"
            ) from None
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
        entries = {test_id: _unpacked(path, test_id, entry) for test_id, entry in entries.items()}
        if (found := first_record_problem(entries)) is not None:
            test_id, problem = found
            raise BaselineError(
                f"baseline {path}: test {test_id!r}: {problem}; restore the file from version control, or delete "
                "that entry and record it again with --update-baselines"
            )
        return cls(
            path=path,
            device_class=str(data.get("device_class")),
            backend=str(data.get("backend")),
            backend_version=str(data.get("backend_version")),
            entries=entries,
        )

    @property
    def drift(self) -> Drift | None:
        """The A/A drift of the machine that recorded these entries, None where none carries a pair."""
        return Drift.of_records(self.entries.values())

    def to_json(self) -> dict[str, object]:
        drift = self.drift
        return {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "device_class": self.device_class,
            "backend": self.backend,
            "backend_version": self.backend_version,
            "updated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            **({"drift": drift.to_json()} if drift is not None else {}),
            "entries": {test_id: _packed(entry) for test_id, entry in sorted(self.entries.items())},
        }

    def write(self) -> None:
        write_atomically(self.path, (json.dumps(json_safe(self.to_json()), indent=1, allow_nan=False) + "\n").encode())


PACKED_LAYERS = "layers_zlib"  # a baseline's layer profile rows: their JSON, zlib-compressed, in base64


def _packed(entry: dict[str, object]) -> dict[str, object]:
    """The entry as its file keeps it: its layer profile's rows (LayerProfile.to_json's "layers") packed into one
    string. Written as rows, DenseNet-121's three profiles (2154 layers) took 105 kB of its 122 kB baseline, and every
    row changes on every update (each layer's median moves), so the rows' diff told a reviewer nothing that
    `compare` and the report do not say better; packed they take 17 kB. Source, runs and columns stay readable."""
    profile = entry.get("layer_profile")
    if not isinstance(profile, dict) or not isinstance(profile.get("layers"), list):
        return entry
    rows = json.dumps(json_safe(profile["layers"]), separators=(",", ":"), allow_nan=False).encode()
    packed = {key: value for key, value in profile.items() if key != "layers"}
    packed[PACKED_LAYERS] = base64.b64encode(zlib.compress(rows, 9)).decode("ascii")
    return {**entry, "layer_profile": packed}


def _unpacked(path: Path, test_id: str, entry: dict[str, object]) -> dict[str, object]:
    """The entry with its layer profile's rows as _packed found them (an entry written before packing: as it is)."""
    profile = entry.get("layer_profile")
    if not isinstance(profile, dict) or PACKED_LAYERS not in profile:
        return entry
    try:
        rows = json.loads(zlib.decompress(base64.b64decode(str(profile[PACKED_LAYERS]), validate=True)))
    except (binascii.Error, zlib.error, ValueError) as error:
        raise BaselineError(
            f'baseline {path}: test {test_id!r}: "layer_profile.{PACKED_LAYERS}" cannot be unpacked ({error}); '
            "restore the file from version control, or delete that entry and record it again with --update-baselines"
        ) from None
    unpacked = {key: value for key, value in profile.items() if key != PACKED_LAYERS}
    return {**entry, "layer_profile": {**unpacked, "layers": rows}}


_ACCURACY_NUMBERS = ("mean_abs", "max_abs", "mean_rel", "max_rel", "worst_value", "worst_reference")


def first_record_problem(records: Mapping[str, Mapping[str, object]]) -> tuple[str, str] | None:
    """(test id, problem) of the first record the gate could not read, None when all are usable."""
    for test_id, record in records.items():
        problem = record_problem(record)
        if problem is not None:
            return test_id, problem
    return None


def record_problem(record: Mapping[str, object]) -> str | None:
    """What the gate could not read in one test's record (a baseline entry or a results record), naming
    the field; None when it is usable. The gate reads raw latency samples (finite, positive numbers), per-output
    accuracy numbers, and the layer profile that explains a latency regression (harness/explain.py)."""
    for key in ("latency", "host_latency"):
        stats = record.get(key)
        if stats is None:
            continue
        if not isinstance(stats, dict):
            return f'"{key}" must be an object or null, got {_shown(stats)}'
        samples = stats.get("samples_us")
        if samples is None:
            continue
        if not isinstance(samples, list):
            return f'"{key}.samples_us" must be a list of numbers, got {_shown(samples)}'
        for index, sample in enumerate(samples):
            if not (is_number(sample) and math.isfinite(sample) and sample > 0):
                return f'"{key}.samples_us[{index}]" is {_shown(sample)}; latency samples must be finite numbers > 0'
    return (
        layer_profile_problem(record.get("layer_profile"))
        or _accuracy_problem(record.get("accuracy"))
        or _build_problem(record.get("build"))
        or pair_problem(record.get("aa_drift"))
    )


def _build_problem(build: object) -> str | None:
    """The build costs a build test's gate reads (gate.judge_build): its time and size numbers, cached a flag."""
    if build is None:
        return None
    if not isinstance(build, dict):
        return f'"build" must be an object or null, got {_shown(build)}'
    for name in ("build_s", "artifact_bytes"):
        value = build.get(name)
        if value is not None and not (is_number(value) and math.isfinite(value) and value >= 0):
            return f'"build.{name}" must be a number >= 0 or null, got {_shown(value)}'
    if not isinstance(build.get("cached", False), bool):
        return f'"build.cached" must be true or false, got {_shown(build.get("cached"))}'
    return None


def _accuracy_problem(accuracy: object) -> str | None:
    if accuracy is None:
        return None
    if not isinstance(accuracy, list):
        return f'"accuracy" must be a list of per-output objects or null, got {_shown(accuracy)}'
    for index, output in enumerate(accuracy):
        where = f"accuracy[{index}]"
        if not isinstance(output, dict):
            return f'"{where}" must be an object, got {_shown(output)}'
        if not isinstance(output.get("output"), str):
            return f'"{where}.output" must be the output\'s name, got {_shown(output.get("output"))}'
        if "mean_rel" not in output:
            return f'"{where}.mean_rel" is missing'
        for name in _ACCURACY_NUMBERS:
            value = output.get(name, 0.0)
            if recorded_number(value) is None:  # a number, or a non-finite one spelled out (json_safe)
                return f'"{where}.{name}" (output {output["output"]!r}) must be a number, got {_shown(value)}'
        tolerance = output.get("tolerance")
        if tolerance is not None and not isinstance(tolerance, dict):
            return f'"{where}.tolerance" must be an object or null, got {_shown(tolerance)}'
        limit = tolerance.get("mean_rel") if isinstance(tolerance, dict) else None
        if limit is not None and not (is_number(limit) and math.isfinite(limit)):
            return f'"{where}.tolerance.mean_rel" must be a number or null, got {_shown(limit)}'
    return None


def _shown(value: object) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def baseline_path(root: Path, device: str, backend: str, version: str) -> Path:
    return root / device_class(device) / f"{backend}-{version}.json"


def update(path: Path, device: str, backend: str, version: str, tests: Mapping[str, Mapping[str, object]]) -> int:
    """Merge these test records into the file at `path` (created if missing); returns entries written.

    An existing file that cannot be read is never overwritten: its entries would be lost. Another session's update
    of the same file waits for this one (a file lock), then merges into what this one wrote."""
    entries = {test_id: _thinned(record) for test_id, record in tests.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    # Read, merge, write: no other update in between; the lock's file is removed on release, so that none is left
    # in a folder under version control.
    with lock_removed(Path(f"{path}.lock")):
        current = (
            BaselineFile.load(path) if path.exists() else BaselineFile(path, device_class(device), backend, version)
        )
        current.entries.update(entries)
        current.write()
    return len(tests)


def is_build_record(test: Mapping[str, object]) -> bool:
    """A build test's record (test_build): it measures building, whose costs are gated apart from latency and
    accuracy (gate.judge_build)."""
    return str(test.get("id", "")).startswith("test_build[")


def _thinned(record: Mapping[str, object]) -> dict[str, object]:
    """What the gate needs of a passing test's record (module docstring)."""
    from harness.gate import BUILD_COST_FIELDS

    entry = {key: value for key, value in record.items() if key not in DROPPED}
    build = record.get("build")
    if is_build_record(record) and isinstance(build, dict):  # a build test's costs, which its gate reads
        entry["build"] = {key: build.get(key) for key in BUILD_COST_FIELDS}
    derivation = entry.get("derivation")
    if isinstance(derivation, dict):
        entry["derivation"] = {key: value for key, value in derivation.items() if key not in DROPPED_DERIVATION}
    message = entry.get("message")
    if isinstance(message, str) and len(message) > MAX_MESSAGE:
        entry["message"] = message[: MAX_MESSAGE - 1] + "…"
    for key in ("latency", "host_latency"):
        stats = entry.get(key)
        if isinstance(stats, dict) and isinstance(stats.get("samples_us"), list):
            entry[key] = {**stats, "samples_us": order_statistics(stats["samples_us"], MAX_SAMPLES)}
    return entry


def order_statistics(samples: list[float], count: int) -> list[float]:
    """At most `count` of the samples, evenly spaced in rank: the sorted samples at the quantiles (i + 0.5) / count
    (each an actual sample, as recorded: recorded.significant); all of them, sorted, when there are no more than
    `count`."""
    ordered = sorted(samples)
    if len(ordered) > count:
        ordered = [ordered[int((index + 0.5) * len(ordered) / count)] for index in range(count)]
    return significant(ordered)  # a baseline written from an older results file holds full digits


@dataclass(frozen=True)
class Selection:
    """The baseline a session compares with, and what to tell the user about the choice."""

    baseline: BaselineFile | None
    note: str

    @cached_property  # the session keeps one selection per backend; every latency test asks it
    def resolution(self) -> Resolution | None:
        """The smallest threshold the baseline's machine supports (its A/A drift), where it recorded one."""
        drift = self.baseline.drift if self.baseline is not None else None
        if drift is None or self.baseline is None:
            return None
        return Resolution(drift.resolution, f"A/A drift of {drift.pairs} tests recorded in {self.baseline.path}")


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
