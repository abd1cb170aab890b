"""Input generators of spec cases: uniform / normal ranges for floats, integer ranges, `.npy` / `.npz` files.

A generator is a frozen dataclass whose repr is its whole recipe (ranges, the file's SHA-256): the int8
calibration cache hashes that repr (harness/precision/derive.py), so a changed range calibrates again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harness.case import Shape
from harness.spec.errors import SpecError
from harness.spec.model import ModelTensor

GENERATOR_KEYS = ("uniform", "normal", "integers", "file")
DEFAULT_FLOAT = (0.0, 1.0)  # normal(mean 0, std 1) when a float input names no generator


@dataclass(frozen=True)
class Uniform:
    low: float
    high: float

    def draw(self, shape: Shape, dtype: str, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(self.low, self.high, shape).astype(dtype)


@dataclass(frozen=True)
class Normal:
    mean: float
    std: float

    def draw(self, shape: Shape, dtype: str, rng: np.random.Generator) -> np.ndarray:
        return rng.normal(self.mean, self.std, shape).astype(dtype)


@dataclass(frozen=True)
class Integers:
    low: int
    high: int  # inclusive

    def draw(self, shape: Shape, dtype: str, rng: np.random.Generator) -> np.ndarray:
        return rng.integers(self.low, self.high, size=shape, endpoint=True).astype(dtype)


@dataclass(frozen=True)
class FromFile:
    """One stored array: every shape asked for must be its shape (the spec fixes the profile to it)."""

    path: str
    key: str | None
    sha256: str  # of the file's bytes: a changed file is a changed recipe
    array: np.ndarray = field(repr=False, compare=False)

    def draw(self, shape: Shape, dtype: str, rng: np.random.Generator) -> np.ndarray:
        if tuple(self.array.shape) != tuple(shape):
            raise ValueError(
                f"{self.path} holds shape {list(self.array.shape)}, but shape {list(shape)} was asked for; a file "
                "input has its own shape only: give its dynamic dimensions [n, n, n] in every profile"
            )
        return np.array(self.array)


Generator = Uniform | Normal | Integers | FromFile


@dataclass(frozen=True, eq=False)
class SpecInputs:
    """A spec case's generate_inputs(shapes, rng): each input from its own generator, in the model's dtype."""

    generators: tuple[tuple[str, str, Generator], ...]  # (input name, numpy dtype, generator)

    def __call__(self, shapes: Mapping[str, Shape], rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {name: generator.draw(tuple(shapes[name]), dtype, rng) for name, dtype, generator in self.generators}


def parse_generator(table: Mapping[str, object], tensor: ModelTensor, spec_file: Path, field_name: str) -> Generator:
    """The generator an [case.inputs.NAME] table names (at most one of GENERATOR_KEYS), checked against the model's
    dtype for that input; SpecError naming the field and the fix."""
    given = [key for key in GENERATOR_KEYS if key in table]
    if len(given) > 1:
        raise SpecError(spec_file, field_name, f"gives {' and '.join(given)}; keep exactly one generator")
    is_float = np.issubdtype(np.dtype(tensor.dtype), np.floating)
    if tensor.dtype == "bool" and given != ["file"]:
        raise SpecError(
            spec_file,
            field_name,
            f"input '{tensor.name}' is bool, and the harness has no generator for bool inputs (which values are valid "
            'is the model\'s business); give them: file = "mask.npy", or test_data with stored inputs',
        )
    if not given:
        if is_float:
            return Normal(*DEFAULT_FLOAT)
        raise SpecError(
            spec_file,
            field_name,
            f"input '{tensor.name}' is {tensor.dtype} and integer inputs have no safe default range; add "
            "integers = [low, high] (inclusive), e.g. the valid token ids or indices",
        )
    kind = given[0]
    where = f"{field_name}.{kind}"
    if kind == "file":
        return _from_file(table, tensor, spec_file, where)
    if is_float != (kind in ("uniform", "normal")):
        wanted = "uniform = [low, high] or normal = [mean, std]" if is_float else "integers = [low, high]"
        raise SpecError(
            spec_file,
            where,
            f"a {kind} generator does not fit input '{tensor.name}', which the model declares {tensor.dtype}; "
            f"use {wanted}",
        )
    low, high = _pair(table[kind], spec_file, where, int if kind == "integers" else float)
    if kind == "normal":
        if high <= 0:
            raise SpecError(spec_file, where, f"the standard deviation {high} is not positive; give [mean, std > 0]")
        return Normal(low, high)
    if low > high or (kind == "uniform" and low == high):
        raise SpecError(spec_file, where, f"[{low}, {high}] is empty; give [low, high] with low < high")
    return Uniform(low, high) if kind == "uniform" else Integers(int(low), int(high))


def _pair(value: object, spec_file: Path, where: str, kind: type) -> tuple[float, float]:
    numbers = (int,) if kind is int else (int, float)
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, numbers) and not isinstance(v, bool) for v in value)
    ):
        raise SpecError(spec_file, where, f"expected two {kind.__name__} numbers [a, b], got {value!r}")
    return value[0], value[1]


def _from_file(table: Mapping[str, object], tensor: ModelTensor, spec_file: Path, where: str) -> FromFile:
    raw, key = table["file"], table.get("key")
    if not isinstance(raw, str) or (key is not None and not isinstance(key, str)):
        raise SpecError(spec_file, where, 'expected file = "path.npy" (or .npz, with an optional key = "array name")')
    path = spec_file.parent / raw
    if not path.is_file() or path.suffix not in (".npy", ".npz"):
        raise SpecError(spec_file, where, f"no .npy or .npz file at {path}; give a path relative to {spec_file.name}")
    data = path.read_bytes()
    try:
        array = _load_array(path, key or tensor.name)
    except (ValueError, OSError) as error:
        raise SpecError(spec_file, where, f"cannot read {path}: {error}; save it with numpy.save / savez") from None
    if array.dtype != np.dtype(tensor.dtype):
        raise SpecError(
            spec_file,
            where,
            f"{path.name} holds {array.dtype}, but the model declares input '{tensor.name}' {tensor.dtype}; save it "
            f"as {tensor.dtype} (array.astype(numpy.{tensor.dtype}))",
        )
    static = [dim if isinstance(dim, int) else "?" for dim in tensor.shape]
    if array.ndim != len(tensor.shape) or any(d != "?" and d != v for d, v in zip(static, array.shape)):
        raise SpecError(
            spec_file,
            where,
            f"{path.name} holds shape {list(array.shape)}, but the model declares input '{tensor.name}' of shape "
            f"{static} ('?': dynamic); save an array of that shape",
        )
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        # The reference of a non-finite input is meaningless at every precision (and int8 calibration refuses it).
        bad = ~np.isfinite(array)
        kinds = " and ".join(
            kind for kind, hit in (("NaN", np.isnan(array).any()), ("Inf", np.isinf(array).any())) if hit
        )
        raise SpecError(
            spec_file,
            where,
            f"{path.name} holds {kinds} ({int(bad.sum())} of {array.size} values, the first at index "
            f"{tuple(int(i) for i in np.argwhere(bad)[0])}); no precision can be judged against a reference of "
            "non-finite inputs: save the array with finite values (numpy.nan_to_num, or fix what wrote it)",
        )
    return FromFile(str(path), key, hashlib.sha256(data).hexdigest(), array)


def _load_array(path: Path, key: str) -> np.ndarray:
    loaded = np.load(path, allow_pickle=False)
    if path.suffix == ".npy":
        return np.asarray(loaded)
    with loaded:
        if key not in loaded.files:
            raise ValueError(f"it has no array '{key}' (arrays: {', '.join(loaded.files)}); set key = \"...\"")
        return np.asarray(loaded[key])
