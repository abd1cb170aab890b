"""The case layer: what a benchmark case declares, and the checks that a declaration is usable.

A case is data plus three pure functions (model, reference, inputs). Nothing here imports a
backend or builds a model, so collecting the whole matrix stays cheap.
"""

from __future__ import annotations

import enum
import functools
import inspect
import re
import traceback
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from harness.errors import CaseDefinitionError, HarnessError, ShapeOutsideProfileError
from harness.precision.table import PRECISIONS

# Precision lives in the precision table; cases and the harness import it from here, so it is re-exported.
from harness.precision.table import Precision as Precision  # noqa: PLC0414

if TYPE_CHECKING:
    import onnx

T = TypeVar("T")
Shape = tuple[int, ...]
# A dimension is fixed (an int) or dynamic (a name). Dynamic dimensions that share a name are
# tied: they take the same value in every shape the harness draws (e.g. the batch of two inputs).
Dim = int | str


class ShapePoint(str, enum.Enum):
    """The corners of an optimization profile that every case is tested at."""

    MIN = "min"
    OPT = "opt"
    MAX = "max"


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str  # numpy dtype name of the I/O tensor, e.g. "float32" or "int64"
    shape: tuple[Dim, ...]

    @property
    def is_float(self) -> bool:
        return np.issubdtype(np.dtype(self.dtype), np.floating)


@dataclass(frozen=True)
class Profile:
    """One optimization profile: per input, the min / opt / max shapes (as in TensorRT)."""

    min: Mapping[str, Shape]
    opt: Mapping[str, Shape]
    max: Mapping[str, Shape]

    def shapes(self, point: ShapePoint) -> dict[str, Shape]:
        return dict(getattr(self, point.value))

    @property
    def is_fixed(self) -> bool:
        """min = opt = max for every input: the profile holds one shape, which one point tests (three corners
        would run the same accuracy and latency work three times)."""
        corners = [{name: tuple(shape) for name, shape in corner.items()} for corner in (self.min, self.opt, self.max)]
        return corners[0] == corners[1] == corners[2]


@dataclass(frozen=True)
class Tolerance:
    """Accuracy limit for one output at one precision.

    Float outputs are judged on the mean relative error (formula in docs/checks.md, "Accuracy");
    integer outputs must match exactly. A limit looser than the default must say why.
    """

    mean_rel: float | None = None
    exact: bool = False
    justification: str = ""


# The limit a precision gets where a case sets none: its row in the precision table (measured there).
DEFAULT_MEAN_REL: Mapping[Precision, float] = {p: entry.default_mean_rel for p, entry in PRECISIONS.items()}


class ReferenceKind(str, enum.Enum):
    """What a case's reference() computes with; the results record it as the accuracy tests' `compared_with`."""

    NUMPY = "numpy reference"  # float64 numpy, written by the case's author
    ONNXRUNTIME_FP32 = "onnxruntime fp32 reference"  # a spec case: unoptimized ONNX Runtime on the float32 model
    STORED = "stored outputs"  # a spec case with stored data: the expected outputs saved beside the inputs


ModelBuilder = Callable[[], "onnx.ModelProto"]
# define_network(network, trt, precision): adds the case's layers to an empty strongly typed TensorRT
# INetworkDefinition, one by one, with the same weights as the ONNX model, written once in float32 terms:
# `precision` (harness.precision.network.NetworkPrecision) casts at the boundary and converts weights.
# `trt` is the tensorrt module, passed in so that a case never imports it (only harness/backends/trt.py does).
NetworkDefinition = Callable[[Any, ModuleType, Any], None]
Reference = Callable[[Mapping[str, np.ndarray]], Mapping[str, np.ndarray]]
InputGenerator = Callable[[Mapping[str, Shape], np.random.Generator], dict[str, np.ndarray]]


@dataclass(frozen=True)
class Case:
    """A network under test, declared once and run on every backend and precision.

    onnx_model() returns the float32 model (the harness derives fp16, bf16 and int8 from it);
    reference(inputs) computes every output in float64, with numpy only in a case written in Python
    (a case from a spec file runs ONNX Runtime or returns stored outputs: `reference_kind` says which);
    generate_inputs(shapes, rng) makes inputs of the given shapes (and int8's calibration data).
    """

    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    profiles: tuple[Profile, ...]
    onnx_model: ModelBuilder
    reference: Reference
    generate_inputs: InputGenerator
    precisions: tuple[Precision, ...] = tuple(Precision)
    tolerances: Mapping[tuple[Precision, str], Tolerance] = field(default_factory=dict)
    description: str = ""
    define_network: NetworkDefinition | None = None  # the TensorRT network-definition workflow
    latency_threshold: float | None = None  # the gate's slowdown threshold for this case (default per backend)
    keep_fp32: tuple[str, ...] = ()  # node names kept float32 in the fp16/bf16/int8 models (as --keep-fp32 does)
    reference_kind: ReferenceKind = ReferenceKind.NUMPY  # what reference() computes with (spec cases: the others)

    def output(self, name: str) -> TensorSpec:
        return next(spec for spec in self.outputs if spec.name == name)

    def tolerance(self, precision: Precision, output: str) -> Tolerance:
        override = self.tolerances.get((precision, output))
        if override is not None:
            return override
        if not self.output(output).is_float:
            return Tolerance(exact=True)
        return Tolerance(mean_rel=DEFAULT_MEAN_REL[precision])

    def model(self) -> onnx.ModelProto:
        """onnx_model(), or CaseDefinitionError naming the case, the function and the fix."""
        model = _called(self, "onnx_model", self.onnx_model)
        if not callable(getattr(model, "SerializeToString", None)):
            raise CaseDefinitionError(
                self.name,
                f"its onnx_model() returned {type(model).__name__}, not an onnx.ModelProto; return the float32 "
                "model built with onnx.helper",
            )
        return model

    def reference_outputs(self, inputs: Mapping[str, np.ndarray]) -> Mapping[str, np.ndarray]:
        """reference(inputs), or CaseDefinitionError naming the case, the function and the fix."""
        outputs = _called(self, "reference", self.reference, inputs)
        if not isinstance(outputs, Mapping):
            raise CaseDefinitionError(
                self.name,
                f"its reference(inputs) returned {type(outputs).__name__}, not a mapping; return "
                f"{{output name: float64 array}} for the outputs {[spec.name for spec in self.outputs]}",
            )
        return outputs

    def make_inputs(self, shapes: Mapping[str, Shape], rng: np.random.Generator) -> dict[str, np.ndarray]:
        """generate_inputs(shapes, rng), checked against the case's TensorSpecs: every input an array of the
        declared dtype and rank (and fixed dimensions), else CaseDefinitionError naming the input and the fix."""
        inputs = _called(self, "generate_inputs", self.generate_inputs, shapes, rng)
        names = [spec.name for spec in self.inputs]
        if not isinstance(inputs, Mapping) or sorted(inputs) != sorted(names):
            got = sorted(inputs) if isinstance(inputs, Mapping) else type(inputs).__name__
            raise CaseDefinitionError(
                self.name,
                f"its generate_inputs(shapes, rng) returned {got}; return {{input name: array}} for exactly the "
                f"inputs {names}",
            )
        for spec in self.inputs:
            problem = _input_problem(spec, inputs[spec.name])
            if problem is not None:
                raise CaseDefinitionError(self.name, f"its generate_inputs(shapes, rng) returned input {problem}")
        return dict(inputs)

    def input_seed(self, profile_index: int, point: ShapePoint, base_seed: int) -> int:
        """A seed that depends only on what identifies the inputs, never on collection order."""
        key = f"{self.name}/{profile_index}/{point.value}/{base_seed}"
        return zlib.crc32(key.encode())


def _called(case: Case, name: str, function: Callable[..., T], *args: object) -> T:
    """Call one of the case's own functions; its failure becomes CaseDefinitionError naming the case, the
    function, the line that raised and the fix (the harness's own errors pass through unchanged)."""
    try:
        return function(*args)
    except HarnessError:
        raise
    except Exception as error:  # any failure of a case's own function is the case's bug
        raise CaseDefinitionError(
            case.name,
            f"its {name} function raised {type(error).__name__}: {error}{_at(raising_line(error, function))}; "
            f"fix the case's {name}",
        ) from error


def _at(line: str | None) -> str:
    return f" (at {line})" if line else ""


def raising_line(error: Exception, function: Callable[..., object]) -> str | None:
    """'file:line' of the deepest frame of `function`'s own file in the error's traceback: the line a
    case author fixes (the harness calls the case's functions; the deepest frame may be numpy's)."""
    try:
        source = inspect.getsourcefile(function)
    except TypeError:
        source = None
    frames = [frame for frame in traceback.extract_tb(error.__traceback__) if frame.filename == source]
    return f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else None


def _input_problem(spec: TensorSpec, array: object) -> str | None:
    """What is wrong with one generated input against its TensorSpec, naming it and the fix."""
    if not isinstance(array, np.ndarray):
        return f"'{spec.name}' as {type(array).__name__}, not a numpy array; return np.ndarray of {spec.dtype}"
    if array.dtype != np.dtype(spec.dtype):
        return (
            f"'{spec.name}' as {array.dtype}, but the case declares {spec.dtype}; generate {spec.dtype} "
            f"(e.g. .astype(np.{spec.dtype})) or fix TensorSpec('{spec.name}', ...)"
        )
    if array.ndim != len(spec.shape):
        return (
            f"'{spec.name}' with rank {array.ndim} (shape {list(array.shape)}), but the case declares rank "
            f"{len(spec.shape)} {list(spec.shape)}; generate arrays of the shapes asked for"
        )
    for axis, (dim, value) in enumerate(zip(spec.shape, array.shape)):
        if isinstance(dim, int) and value != dim:
            return (
                f"'{spec.name}' with shape {list(array.shape)}, but dim {axis} is fixed at {dim} in the case's "
                f"TensorSpec {list(spec.shape)}; generate arrays of the shapes asked for"
            )
    return None


@functools.cache
def network_weights(weights: Callable[[], Mapping[str, np.ndarray]], compute_dtype: np.dtype) -> dict[str, np.ndarray]:
    """A case's weights() in the compute dtype, C-contiguous, kept for the life of the process.

    TensorRT holds layer weights by reference until the engine is built, without copying them, so the
    arrays a define_network function hands to a network must outlive it: the cache keeps them alive.
    """
    return {name: np.ascontiguousarray(value, dtype=compute_dtype) for name, value in weights().items()}


# A case's name starts its test ids and its engine cache files: a path separator or '..' in it would
# write outside the cache, so it is letters, digits, '_', '-' and '.', starting with a letter or digit.
CASE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
CASE_NAME_RULE = "letters, digits, '_', '-' and '.', starting with a letter or digit"


def check_case(case: Case) -> None:
    """Raise CaseDefinitionError listing everything wrong with a case's declaration."""
    problems = [*_profile_problems(case), *_tolerance_problems(case)]
    if not case.profiles:
        problems.append("it declares no optimization profile; add at least one Profile(min, opt, max)")
    if not isinstance(case.name, str) or not CASE_NAME.fullmatch(case.name):
        problems.append(f"its name {case.name!r} is not allowed: a case name may hold only {CASE_NAME_RULE}; rename it")
    if problems:
        raise CaseDefinitionError(case.name, "; ".join(problems))


def check_shapes_in_profile(case: Case, profile_index: int, shapes: Mapping[str, Shape]) -> None:
    """Refuse shapes that the profile does not cover, naming the input and the allowed range."""
    profile = case.profiles[profile_index]
    missing = [spec.name for spec in case.inputs if spec.name not in shapes]
    if missing:
        raise ShapeOutsideProfileError(case.name, f"no shape given for inputs {missing}; give every input a shape")
    for spec in case.inputs:
        shape = tuple(shapes[spec.name])
        low, high = profile.min[spec.name], profile.max[spec.name]
        if len(shape) != len(low):
            raise ShapeOutsideProfileError(
                case.name,
                f"input '{spec.name}' has rank {len(shape)} (shape {list(shape)}) but profile "
                f"{profile_index} expects rank {len(low)}; pass a shape between {list(low)} and {list(high)}",
            )
        for axis, (value, lo, hi) in enumerate(zip(shape, low, high)):
            if not lo <= value <= hi:
                raise ShapeOutsideProfileError(
                    case.name,
                    f"input '{spec.name}' shape {list(shape)} is outside profile {profile_index}: "
                    f"dim {axis} = {value} not in [{lo}, {hi}] (profile min {list(low)}, max {list(high)}); "
                    "use a shape inside the profile or add a profile that covers it",
                )
    _check_tied_dims(case, shapes)


def _check_tied_dims(case: Case, shapes: Mapping[str, Shape]) -> None:
    """Dimensions that share a name must take one value across all inputs of a run."""
    bound: dict[str, tuple[str, int]] = {}
    for spec in case.inputs:
        for dim, value in zip(spec.shape, shapes[spec.name]):
            if not isinstance(dim, str):
                continue
            first = bound.setdefault(dim, (spec.name, value))
            if first[1] != value:
                raise ShapeOutsideProfileError(
                    case.name,
                    f"dimension '{dim}' is {value} in input '{spec.name}' but {first[1]} in input '{first[0]}'; "
                    "tied dimensions must be equal",
                )


def _profile_problems(case: Case) -> list[str]:
    problems: list[str] = []
    for index, profile in enumerate(case.profiles):
        for spec in case.inputs:
            shapes = [getattr(profile, corner).get(spec.name) for corner in ("min", "opt", "max")]
            if any(shape is None for shape in shapes):
                problems.append(f"profile {index} gives no min/opt/max shape for input '{spec.name}'; add them")
                continue
            low, opt, high = (tuple(shape) for shape in shapes if shape is not None)
            problems.extend(_corner_problems(index, spec, low, opt, high))
        problems.extend(_tied_dim_problems(case, index, profile))
        names = {spec.name for spec in case.inputs}
        strangers = sorted({name for corner in (profile.min, profile.opt, profile.max) for name in corner} - names)
        if strangers:
            problems.append(
                f"profile {index} names {strangers}, which the case has no input for "
                f"(inputs: {', '.join(sorted(names))}); rename or remove them"
            )
    return problems


def _corner_problems(index: int, spec: TensorSpec, low: Shape, opt: Shape, high: Shape) -> list[str]:
    where = f"profile {index} input '{spec.name}'"
    if not len(low) == len(opt) == len(high) == len(spec.shape):
        return [f"{where}: min/opt/max must all have rank {len(spec.shape)} like {spec.shape}"]
    problems = []
    for axis, (dim, lo, op, hi) in enumerate(zip(spec.shape, low, opt, high)):
        if isinstance(dim, int) and not lo == op == hi == dim:
            problems.append(f"{where}: dim {axis} is fixed at {dim}, so min/opt/max must all be {dim}")
        elif lo > hi:
            problems.append(f"{where}: dim {axis} has min {lo} > max {hi}; swap them or fix the profile")
        elif not lo <= op <= hi:
            problems.append(f"{where}: dim {axis} has opt {op} outside [min {lo}, max {hi}]; move opt inside")
        elif lo < 1:
            problems.append(f"{where}: dim {axis} has min {lo}; every dimension must be at least 1")
    return problems


def _tied_dim_problems(case: Case, index: int, profile: Profile) -> list[str]:
    """Dimensions that share a name must have the same range in every corner of a profile."""
    seen: dict[str, tuple[str, tuple[int, int, int]]] = {}
    problems = []
    for spec in case.inputs:
        if spec.name not in profile.min or spec.name not in profile.opt or spec.name not in profile.max:
            continue
        if any(len(getattr(profile, c)[spec.name]) != len(spec.shape) for c in ("min", "opt", "max")):
            continue  # a rank problem, reported by _corner_problems
        for axis, dim in enumerate(spec.shape):
            if not isinstance(dim, str):
                continue
            corners = tuple(getattr(profile, c)[spec.name][axis] for c in ("min", "opt", "max"))
            first = seen.setdefault(dim, (spec.name, corners))
            if first[1] != corners:
                problems.append(
                    f"profile {index}: dimension '{dim}' is {list(corners)} (min/opt/max) for input "
                    f"'{spec.name}' but {list(first[1])} for input '{first[0]}'; tied dimensions must agree"
                )
    return problems


def _tolerance_problems(case: Case) -> list[str]:
    names = {spec.name for spec in case.outputs}
    problems = []
    for (precision, output), tolerance in case.tolerances.items():
        if output not in names:
            problems.append(
                f"a tolerance is given for output '{output}' at {Precision(precision).value}, but the case has "
                f"no such output (outputs: {', '.join(sorted(names))}); rename or remove it"
            )
            continue
        default = DEFAULT_MEAN_REL[Precision(precision)]
        looser = tolerance.mean_rel is not None and tolerance.mean_rel > default
        if looser and not tolerance.justification.strip():
            problems.append(
                f"the tolerance for output '{output}' at {Precision(precision).value} raises mean relative error "
                f"to {tolerance.mean_rel:g} above the default {default:g} without a justification; "
                "say why (from measurement) in Tolerance(justification=...)"
            )
    return problems
