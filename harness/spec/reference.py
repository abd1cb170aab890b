"""References of spec cases, which have no numpy reference: ONNX Runtime at float32 on the original model
(computed once per input, cached in memory and under the engine cache), or the outputs stored with the model.

A cached reference is checked like an engine (harness/cachefile.py: a sidecar's SHA-256 checked on the very bytes
loaded): a truncated or rewritten file is computed again with a warning naming it, never blamed on the case nor
trusted; a cache that cannot be written (a full disk) keeps the reference in memory, with a warning."""

from __future__ import annotations

import hashlib
import io
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harness import cachefile
from harness.precision.opset import OpsetConversion
from harness.spec.model import ModelBytes

REFERENCES_DIR = "references"  # under the engine cache folder


class ReferenceCacheWarning(UserWarning):
    """A cached reference was unusable and is computed again, or a reference could not be cached."""


def inputs_sha256(inputs: Mapping[str, np.ndarray]) -> str:
    """A digest of the inputs' names, dtypes, shapes and bytes: equal inputs, equal digest."""
    digest = hashlib.sha256()
    for name in sorted(inputs):
        array = np.ascontiguousarray(inputs[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def as_reference(array: np.ndarray) -> np.ndarray:
    """Float outputs in float64, as every reference is; integer and boolean outputs as they are (compared exactly)."""
    array = np.asarray(array)
    return array.astype(np.float64) if np.issubdtype(array.dtype, np.floating) else array


@dataclass(frozen=True, eq=False)
class OnnxRuntimeReference:
    """reference(inputs) of a spec case: the outputs of unoptimized ONNX Runtime at float32, as float64."""

    model: ModelBytes  # the original float32 model, every output the case checks among its outputs
    outputs: tuple[str, ...]
    cache_dir: Path | None  # the engine cache folder; None: memory only
    # Where the model was below ONNX Runtime's opset: `model` is the upgraded copy, and this says so in the results.
    opset_conversion: OpsetConversion | None = None
    _memory: dict[str, dict[str, np.ndarray]] = field(default_factory=dict, repr=False)

    def __call__(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        key = hashlib.sha256(f"{self.model!r}|{self.outputs}|{inputs_sha256(inputs)}".encode()).hexdigest()
        if key not in self._memory:
            self._memory[key] = self._from_disk(key) or self._computed(key, inputs)
        return {name: array.copy() for name, array in self._memory[key].items()}

    def _path(self, key: str) -> Path | None:
        return self.cache_dir / REFERENCES_DIR / f"{key}.npz" if self.cache_dir else None

    def _from_disk(self, key: str) -> dict[str, np.ndarray] | None:
        path = self._path(key)
        entry = cachefile.read_entry(path, key) if path is not None else None
        if entry is None:
            return None
        if isinstance(entry, cachefile.Unusable):
            problem = entry.problem
        else:
            try:
                with np.load(io.BytesIO(entry.data), allow_pickle=False) as stored:
                    return {name: np.asarray(stored[name]) for name in self.outputs}
            except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:  # intact bytes, but not our arrays
                problem = f"its arrays cannot be read: {error}"
        _warn(f"the cached reference {path} is unusable ({problem}); computing it again")
        return None

    def _computed(self, key: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        # The localizer's plain ONNX Runtime run (optimizations off: the model as written, nothing fused).
        from harness.precision.localize import run_on_onnxruntime

        ran = run_on_onnxruntime(self.model(), inputs, list(self.outputs))
        outputs = {name: as_reference(ran[name]) for name in self.outputs}
        path = self._path(key)
        if path is not None:
            buffer = io.BytesIO()
            np.savez(buffer, allow_pickle=False, **outputs)
            try:
                cachefile.write_entry(path, key, buffer.getvalue(), {"outputs": list(self.outputs)})
            except OSError as error:  # costs a recomputation next session, nothing else
                _warn(
                    f"the reference cache entry {path} cannot be written ({error}); the reference is kept in memory "
                    f"this session; {cachefile.unwritable_fix(error)}"
                )
        return outputs


def _warn(message: str) -> None:
    warnings.warn(ReferenceCacheWarning(message), stacklevel=4)


@dataclass(frozen=True, eq=False)
class StoredOutputs:
    """reference(inputs) of a case with stored data: the outputs stored beside the inputs that were handed out."""

    by_inputs: Mapping[str, Mapping[str, np.ndarray]] = field(repr=False)  # inputs_sha256 -> outputs

    def __call__(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        stored = self.by_inputs.get(inputs_sha256(inputs))
        if stored is None:
            raise ValueError(
                "these inputs are not among the stored data sets; a case with stored outputs is checked on its "
                "stored inputs only"
            )
        return {name: as_reference(array) for name, array in stored.items()}
