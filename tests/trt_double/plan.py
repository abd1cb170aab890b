"""The double's serialized formats: engine plans and timing caches.

Both are: magic | u16 version length | version | u64 body length | body | SHA-256 of everything before.
A plan's body pickles a Program (graph, profiles, numerics flags) as builtins and numpy arrays only,
and unpickling admits nothing else, so a tampered file cannot run code. The version is the real
TensorRT version the double imitates: a plan from another version is refused with TensorRT's message.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import struct
from dataclasses import dataclass
from typing import Any

from .graph import Graph
from .layers import Shape

PLAN_MAGIC = b"TRTDBLP\x01"
TIMING_CACHE_MAGIC = b"TRTDBLT\x01"
_DIGEST = 32
_SERIALIZATION = "Error Code 1: Serialization"

# (min, opt, max) per input name, one dict per optimization profile.
Profiles = list[dict[str, tuple[Shape, Shape, Shape]]]


class FormatError(Exception):
    """The bytes are not a usable plan / timing cache; the message is what TensorRT would log."""


@dataclass
class Program:
    """Everything an engine needs: what a plan holds."""

    graph: Graph
    profiles: Profiles
    tf32: bool  # BuilderFlag.TF32 at build: conv / matmul operands of float32 layers rounded to TF32
    weak_fp16: bool  # weakly typed network built with BuilderFlag.FP16: float layers computed in fp16
    profiling_verbosity: str  # ProfilingVerbosity member name at build: what the engine inspector may show
    slow_layers: tuple[str, ...] = ()  # layers built with the slower tactic (Faults.slower_tactic, profiler.py)

    def to_plain(self) -> dict[str, Any]:
        return {
            "graph": self.graph.to_plain(),
            "profiles": self.profiles,
            "tf32": self.tf32,
            "weak_fp16": self.weak_fp16,
            "profiling_verbosity": self.profiling_verbosity,
            "slow_layers": list(self.slow_layers),
        }

    @classmethod
    def from_plain(cls, plain: dict[str, Any]) -> Program:
        return cls(
            Graph.from_plain(plain["graph"]),
            plain["profiles"],
            plain["tf32"],
            plain["weak_fp16"],
            plain["profiling_verbosity"],
            tuple(plain["slow_layers"]),
        )


def _frame(magic: bytes, version: str, body: bytes) -> bytes:
    head = magic + struct.pack("<H", len(version)) + version.encode() + struct.pack("<Q", len(body)) + body
    return head + hashlib.sha256(head).digest()


def _unframe(magic: bytes, expected_version: str, data: bytes, what: str) -> bytes:
    """The body of a framed blob, after every check a loader owes its caller."""
    if not data.startswith(magic):
        if magic.startswith(data):
            raise FormatError(f"{_SERIALIZATION} (the {what} is truncated: {len(data)} bytes)")
        raise FormatError(
            f"{_SERIALIZATION} (Serialization assertion magicTagRead == kMAGIC_TAG failed.Magic tag does not match)"
        )
    try:
        (length,) = struct.unpack_from("<H", data, len(magic))
        version = data[len(magic) + 2 : len(magic) + 2 + length].decode()
        (body_length,) = struct.unpack_from("<Q", data, len(magic) + 2 + length)
    except (struct.error, UnicodeDecodeError):
        raise FormatError(f"{_SERIALIZATION} (the {what} is truncated: {len(data)} bytes)") from None
    if version != expected_version:
        raise FormatError(
            f"The engine plan file is not compatible with this version of TensorRT, expecting library version "
            f"{expected_version} got {version}, please rebuild."
            if what == "plan"
            else f"the timing cache was created by TensorRT {version}; this is TensorRT {expected_version}"
        )
    start = len(magic) + 2 + length + 8
    if len(data) != start + body_length + _DIGEST:
        raise FormatError(
            f"{_SERIALIZATION} (the {what} is truncated or has trailing bytes: {len(data)} bytes, "
            f"expected {start + body_length + _DIGEST})"
        )
    if hashlib.sha256(data[:-_DIGEST]).digest() != data[-_DIGEST:]:
        raise FormatError(f"{_SERIALIZATION} (checksum mismatch: the {what} is corrupted)")
    return data[start:-_DIGEST]


class _PlainUnpickler(pickle.Unpickler):
    """Admits builtins and numpy arrays (bfloat16 ones too), nothing that could run code."""

    _ALLOWED = frozenset(
        {
            ("numpy", "dtype"),
            ("numpy", "ndarray"),
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy.core.numeric", "_frombuffer"),
            ("numpy._core.numeric", "_frombuffer"),
            ("ml_dtypes", "bfloat16"),  # the storage type of BF16 weights (layers.STORAGE_TYPES)
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"a plan holds only builtins and numpy arrays, not {module}.{name}")
        return super().find_class(module, name)


def encode_plan(version: str, program: Program) -> bytes:
    return _frame(PLAN_MAGIC, version, pickle.dumps(program.to_plain(), protocol=pickle.HIGHEST_PROTOCOL))


def decode_plan(version: str, data: bytes) -> Program:
    body = _unframe(PLAN_MAGIC, version, data, "plan")
    try:
        return Program.from_plain(_PlainUnpickler(io.BytesIO(body)).load())
    except (pickle.UnpicklingError, KeyError, TypeError, ValueError) as error:
        raise FormatError(f"{_SERIALIZATION} (the plan's payload is invalid: {error})") from None


def encode_timing_cache(version: str, entries: set[str]) -> bytes:
    return _frame(TIMING_CACHE_MAGIC, version, json.dumps(sorted(entries)).encode())


def decode_timing_cache(version: str, data: bytes) -> set[str]:
    """The entries of a serialized cache; b"" is an empty cache, as for TensorRT."""
    if not data:
        return set()
    try:
        body = _unframe(TIMING_CACHE_MAGIC, version, data, "timing cache")
    except FormatError as error:
        if "Magic tag" in str(error):
            raise FormatError("the data is not a timing cache of this TensorRT (bad magic tag)") from None
        raise
    return set(json.loads(body))
