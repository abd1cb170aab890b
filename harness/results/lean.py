"""A large results file read lean, for `python -m harness compare`: 100,000 tests (many CI shards merged, 500 MB)
in seconds and a few hundred MB, where json.load takes minutes and gigabytes.

The harness writes results as json.dumps(indent=1) (results_document.write, `harness merge`): every record of "tests" sits
between a line "  {" and a line "  }", each of its fields starts a line with three spaces and a quote, and JSON
strings hold no raw newline. So a record is cut out of a chunk of bytes without parsing, its fields that compare
never reads (derivation with its int8 scales, layers, ...) are cut out the same way, the latency
samples are parsed by numpy, and json parses only what is left. A file in any other layout (written by hand, or
by another tool) is parsed whole by json: slower, and as correct.
"""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.gate import BUILD_COST_FIELDS, ENGINE_DEVICE_MEMORY, ENGINE_OUTPUT_BYTES
from harness.results.document import ROUND_SIZES, ResultsFileError, read_json

# Fields of a record that compare never reads (it reads `point` and `input_shapes`: a fixed profile's corners,
# comparison._fixed_corner_kept_as; and `layer_profile`, checked, to name the layers of a latency regression). The
# large ones are cut before parsing, looked for in the order the harness writes them (record.TestRecord.to_json),
# with "latency", whose samples are cut: each after the one before; the small ones are dropped once parsed (looking
# for each would cost more than parsing it).
UNREAD = (
    b"nodeid",
    b"backend_library",
    b"backend_clock",
    b"compared_with",
    b"host_latency",
    b"derivation",
    b"layers",
    b"localization",
    b"worker",
    b"cuda_visible_devices",
)
_IN_ORDER = (b"latency", b"host_latency", b"derivation", b"layers", b"localization")
_DROPPED = frozenset(key.decode() for key in UNREAD)
# What compare reads of the nested objects it keeps (harness/results/comparison.py, results_document.TestResult.from_json);
# the rest is dropped after parsing, so that 100,000 records stay small.
_KEPT = {
    "latency": frozenset({"stop_reason", "count", "median_us", "samples_us", ROUND_SIZES}),
    "gate": frozenset({"verdict", "reason", "baseline", "samples", "min_samples"}),
    "engine": frozenset({"timing", ENGINE_DEVICE_MEMORY, ENGINE_OUTPUT_BYTES}),
    "build": frozenset(BUILD_COST_FIELDS),
}
_NAMES = ("case", "precision", "shape", "shape_point", "backend", "backend_name", "backend_version", "backend_device")
_KEPT_OUTPUT = frozenset({"output", "mean_rel", "max_rel", "failure", "tolerance", "nan_count", "inf_count"})
_CHUNK = 8 << 20
_FIELD = b'\n   "'  # a record's field starts a line with three spaces (json.dumps indent=1, depth 3)
_RECORD_START, _RECORD_END = b"\n  {", b"\n  }"
_TESTS = b'\n "tests": ['
_SAMPLES = b'"samples_us": ['


@dataclass
class LeanFile:
    """A results file's top-level fields but "tests", its records without the unread fields, and the latency
    samples of each record (by index) as float64 arrays, its records' "latency.samples_us" left empty."""

    header: dict[str, object]
    records: list[dict[str, object]]
    samples: dict[int, np.ndarray]


class _OtherLayout(Exception):
    """The file is not in the harness's own layout: it is parsed whole instead."""


def load(path: Path) -> LeanFile:
    """The file read lean; ResultsFileError when it cannot be read or is not JSON (with the fix)."""
    try:
        return _load_harness_layout(path)
    except _OtherLayout:
        return _load_whole(path)
    except OSError as error:
        raise ResultsFileError(
            f"cannot read {path} ({error}); check the path, or re-run the tests to write it"
        ) from None


def _load_whole(path: Path) -> LeanFile:
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("tests"), list):
        return LeanFile(data if isinstance(data, dict) else {"schema": None}, [], {})
    lean = LeanFile({key: value for key, value in data.items() if key != "tests"}, [], {})
    for record in data["tests"]:
        if isinstance(record, dict):
            record = _kept(record)
            stats = record.get("latency")
            samples = stats.get("samples_us") if isinstance(stats, dict) else None
            if isinstance(stats, dict) and isinstance(samples, list) and all(type(s) in (int, float) for s in samples):
                array = np.asarray(samples, dtype=np.float64)
                if np.all(np.isfinite(array) & (array > 0)):  # else kept as written, for the check to name
                    lean.samples[len(lean.records)] = array
                    record["latency"] = {**stats, "samples_us": []}
        lean.records.append(record)
    return lean


def _load_harness_layout(path: Path) -> LeanFile:
    with path.open("rb") as handle:
        chunks = iter(lambda: handle.read(_CHUNK), b"")
        buffer = next(chunks, b"")
        if not buffer.startswith(b'{\n "'):
            raise _OtherLayout
        while (start := buffer.find(_TESTS)) < 0:
            buffer = _more(buffer, chunks)
        header = _parsed(buffer[:start].rstrip().rstrip(b",") + b"\n}")
        lean = LeanFile(header if isinstance(header, dict) else {}, [], {})
        rest = _read_records(buffer[start + len(_TESTS) :], chunks, lean)
        trailer = _parsed(b"{" + rest.lstrip().removeprefix(b"]").lstrip().lstrip(b","))
    if not isinstance(trailer, dict):
        raise _OtherLayout
    lean.header.update(trailer)
    return lean


def _read_records(buffer: bytes, chunks: Iterator[bytes], lean: LeanFile) -> bytes:
    """Every record of the "tests" array into `lean`; returns what follows the array's last record."""
    position = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # numpy 1.x warns on text it cannot read (2.x raises)
        while True:
            while (end := buffer.find(_RECORD_END, position)) < 0 or not buffer.startswith(_RECORD_START, position):
                if buffer[position:].lstrip().startswith(b"]"):  # the array ends
                    return _rest(buffer[position:], chunks)
                if buffer.find(_RECORD_START, position) > position or len(buffer) - position > _CHUNK * 4:
                    raise _OtherLayout  # something else between records, or a record larger than any the harness writes
                buffer = _more(buffer[position:], chunks)
                position = 0
            record, samples = _lean_record(buffer[position + 1 : end + len(_RECORD_END)])
            if samples is not None:
                lean.samples[len(lean.records)] = samples
            lean.records.append(record)
            position = end + len(_RECORD_END)
            if buffer.startswith(b",", position):
                position += 1


def _lean_record(text: bytes) -> tuple[dict[str, object], np.ndarray | None]:
    """A record's fields but the unread ones, parsed, and its latency samples (None where it has none, or where they
    are not all finite positive numbers: then they stay in the record, for the check to name)."""
    cuts, samples, after = [], None, 0
    for key in _IN_ORDER:
        span = _field_span(text, key, after)
        if span is None:
            continue
        after = span[0]
        if key != b"latency":
            cuts.append(span)
            continue
        opened = text.find(_SAMPLES, *span)
        closed = text.find(b"]", opened) if opened >= 0 else -1
        if 0 <= closed < span[1]:
            samples = _numbers(text[opened + len(_SAMPLES) : closed])
            if samples is not None:
                cuts.append((opened + len(_SAMPLES), closed))
    kept, position = [], 0
    for start, end in sorted(cuts):
        kept.append(text[position:start])
        position = end
    kept.append(text[position:])
    lean = b"".join(kept)
    body = lean[: -len(_RECORD_END)].rstrip()
    if body.endswith(b","):  # the last field was cut: its comma stays behind
        lean = body[:-1] + _RECORD_END
    record = _parsed(lean)
    if not isinstance(record, dict):
        raise _OtherLayout
    return _kept(record), samples


def _kept(record: dict[str, object]) -> dict[str, object]:
    """The record with only what compare reads of its nested objects, its keys and the names that repeat in every
    record interned."""
    kept = {sys.intern(key): value for key, value in record.items() if key not in _DROPPED}
    for key, names in _KEPT.items():
        value = kept.get(key)
        if isinstance(value, dict):
            kept[key] = {name: part for name, part in value.items() if name in names}
    outputs = kept.get("accuracy")
    if isinstance(outputs, list):
        kept["accuracy"] = [
            {k: v for k, v in o.items() if k in _KEPT_OUTPUT} if isinstance(o, dict) else o for o in outputs
        ]
    for key in _NAMES:
        if isinstance(name := kept.get(key), str):
            kept[key] = sys.intern(name)
    return kept


def _field_span(text: bytes, key: bytes, after: int) -> tuple[int, int] | None:
    """(start, end) of the field `key` of a record, its trailing comma and newline included; None where absent.
    Looked for after `after` first (the harness's order), then from the start."""
    pattern = _FIELD + key + b'": '
    start = text.find(pattern, after)
    if start < 0:
        start = text.find(pattern)
    if start < 0:
        return None
    end = text.find(_FIELD, start + 1)
    return start, end if end >= 0 else len(text) - len(_RECORD_END)


def _numbers(body: bytes) -> np.ndarray | None:
    """The numbers of a JSON array's body, where all are finite and > 0 (else None: json reads them)."""
    expected = body.count(b",") + 1 if body.strip() else 0
    try:
        values = np.fromstring(body, dtype=np.float64, sep=",") if expected else np.empty(0)
    except ValueError:  # text that is not a number (null, "nan", true)
        return None
    if values.size != expected or not np.all(np.isfinite(values) & (values > 0)):
        return None
    return values


def _parsed(text: bytes) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise _OtherLayout from None  # parsed whole, whose error names the line and the column


def _more(buffer: bytes, chunks: Iterator[bytes]) -> bytes:
    chunk = next(chunks, b"")
    if not chunk:
        raise _OtherLayout  # ended before the layout did: parsed whole, whose error says where the file is cut
    return buffer + chunk


def _rest(buffer: bytes, chunks: Iterator[bytes]) -> bytes:
    return buffer + b"".join(chunks)
