"""Explicit (Q/DQ) int8 models derived from a float32 ONNX model, calibrated by ONNX Runtime's quantization tool.

TensorRT 11 and TensorRT for RTX build int8 only from explicitly quantized networks: the implicit INT8
builder flag and the calibrators are gone, so the scales must be in the ONNX model as QuantizeLinear /
DequantizeLinear pairs. ONNX Runtime's `quantize_static` calibrates and inserts them; the options below
are the ones TensorRT accepts (symmetric int8, zero point 0, per-channel weights, float32 bias).

Calibration runs the model over every calibration sample, so a result is cached on disk when asked:
keyed by a SHA-256 over the model, the calibration data, the calibrator and ONNX Runtime's version,
written atomically under a file lock so that parallel xdist workers quantize each key once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

import filelock
import numpy as np

from harness.atomic import write_atomically
from harness.errors import CaseDefinitionError

if TYPE_CHECKING:
    import onnx

Calibrator = Literal["max", "percentile"]
CALIBRATORS: tuple[Calibrator, ...] = get_args(Calibrator)

# Bump when the quantization options or the cache layout change: older entries are then never looked up.
CACHE_FORMAT = 1
# The share of |x| that percentile calibration keeps (ONNX Runtime's default, pinned here so that the
# cached scales do not change meaning with a new default): the largest 0.001 % are clipped.
PERCENTILE = 99.999


@dataclass(frozen=True)
class QuantizedModel:
    """A Q/DQ int8 model and the scales it holds (tensor name -> per-tensor scale or per-channel scales),
    JSON-serialisable so that results can record what the engine was built with."""

    model_bytes: bytes
    calibrator: str
    scales: dict[str, float | list[float]]


Feeds = Sequence[Mapping[str, np.ndarray]]


@dataclass(frozen=True)
class CalibrationRecipe:
    """Calibration data named by what makes it (e.g. the case's generator source, shapes and seeds) rather than
    by its bytes: a cached result is then found without generating the data, which for mnist's margin-checked
    images costs more than reading the result back (0.26 s of 0.29 s)."""

    fingerprint: str
    make: Callable[[], Feeds]


def quantize_int8(
    model: onnx.ModelProto,
    calibration: Feeds | CalibrationRecipe,
    calibrator: Calibrator,
    *,
    case_name: str,
    cache_dir: Path | None = None,
) -> QuantizedModel:
    """The Q/DQ int8 model of `model`, its activation ranges calibrated on `calibration` (one feed per
    sample: input name -> array) with `calibrator`: "max" (the largest |x| seen) or "percentile".

    Bad calibration data raises CaseDefinitionError naming `case_name` and the fix. A model with no operator
    ONNX Runtime quantizes (a lone Identity) comes back unchanged, with no scales: there is nothing to
    calibrate. With `cache_dir`, a result computed once for the same model, data, calibrator and ONNX
    Runtime version is read back without calibrating again.
    """
    if calibrator not in CALIBRATORS:
        raise ValueError(f"unknown calibrator {calibrator!r}; the calibrators are {', '.join(CALIBRATORS)}")
    model_bytes = model.SerializeToString()

    def feeds() -> Feeds:
        data = calibration.make() if isinstance(calibration, CalibrationRecipe) else calibration
        _check_calibration(model, data, case_name)
        return data

    if cache_dir is None:
        return _quantize(model_bytes, feeds(), calibrator)
    key = cache_key(model_bytes, calibration, calibrator)
    path = cache_dir / f"int8-{key}.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(f"{path}.lock"):  # one worker calibrates a key; the others then find its result
        cached = _read_cached(path, key)
        if cached is not None:
            return cached
        quantized = _quantize(model_bytes, feeds(), calibrator)
        _store(path, key, quantized)
        return quantized


def cache_key(model_bytes: bytes, calibration: Feeds | CalibrationRecipe, calibrator: Calibrator) -> str:
    """SHA-256 over everything the scales depend on: the model, the calibration data (every array's name,
    dtype, shape and bytes, in order; or a recipe's fingerprint), the calibrator and ONNX Runtime's version
    (its calibrators change between releases)."""
    import onnxruntime

    digest = hashlib.sha256()
    header = {"format": CACHE_FORMAT, "calibrator": calibrator, "onnxruntime": onnxruntime.__version__}
    digest.update(json.dumps(header, sort_keys=True).encode())
    digest.update(hashlib.sha256(model_bytes).digest())
    if isinstance(calibration, CalibrationRecipe):
        digest.update(f"recipe:{calibration.fingerprint}".encode())
        return digest.hexdigest()
    for sample in calibration:
        for name in sorted(sample):
            array = np.ascontiguousarray(sample[name])
            digest.update(json.dumps([name, array.dtype.str, list(array.shape)]).encode())
            digest.update(array.tobytes())
    return digest.hexdigest()


def _check_calibration(model: onnx.ModelProto, calibration: Sequence[Mapping[str, np.ndarray]], case: str) -> None:
    """Refuse calibration data the model cannot run on, before ONNX Runtime fails on it with less to go on."""
    if len(calibration) == 0:
        raise CaseDefinitionError(
            case, "the calibration data is empty; give at least one feed {input name: array} to calibrate on"
        )
    inputs = _graph_inputs(model)
    for index, sample in enumerate(calibration):
        if sorted(sample) != sorted(inputs):
            raise CaseDefinitionError(
                case,
                f"calibration sample {index} has the inputs {sorted(sample)}; the model's inputs are "
                f"{sorted(inputs)}: give exactly those",
            )
        for name, (dtype, dims) in inputs.items():
            problem = _array_problem(sample[name], dtype, dims)
            if problem is not None:
                raise CaseDefinitionError(case, f"calibration sample {index}, input '{name}': {problem}")


def _graph_inputs(model: onnx.ModelProto) -> dict[str, tuple[np.dtype, tuple[int | None, ...]]]:
    """Each fed input's dtype and dims (None where dynamic); initializers listed as inputs are not fed."""
    from onnx import helper

    initializers = {tensor.name for tensor in model.graph.initializer}
    return {
        value.name: (
            np.dtype(helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type)),
            tuple(dim.dim_value if dim.HasField("dim_value") else None for dim in value.type.tensor_type.shape.dim),
        )
        for value in model.graph.input
        if value.name not in initializers
    }


def _array_problem(array: object, dtype: np.dtype, dims: tuple[int | None, ...]) -> str | None:
    if not isinstance(array, np.ndarray):
        return f"is a {type(array).__name__}, not a numpy array; give an array of {dtype.name}"
    if array.dtype != dtype:
        return f"is {array.dtype.name}, the model takes {dtype.name}; convert it with .astype(np.{dtype.name})"
    if array.ndim != len(dims):
        return f"has rank {array.ndim} (shape {array.shape}), the model takes rank {len(dims)}; reshape it"
    wrong = [(axis, size, want) for axis, (size, want) in enumerate(zip(array.shape, dims)) if want not in (None, size)]
    if wrong:
        axis, size, want = wrong[0]
        return f"has {size} at dim {axis} (shape {array.shape}), the model fixes it at {want}; give that size"
    return None


def _quantize(
    model_bytes: bytes, calibration: Sequence[Mapping[str, np.ndarray]], calibrator: Calibrator
) -> QuantizedModel:
    """Calibrate and insert Q/DQ pairs with ONNX Runtime's quantize_static, with the options TensorRT accepts."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    if not _has_quantizable_node(onnx.load_from_string(model_bytes)):
        # ONNX Runtime's percentile calibrator raises "Histogram has not been collected" on a graph with no
        # tensor to calibrate (max returns the graph unchanged): nothing to quantize, the model is its own int8 form.
        return QuantizedModel(model_bytes, calibrator, {})

    class Feeds(CalibrationDataReader):  # type: ignore[misc]  # onnxruntime has no type hints
        """The calibration samples, one feed per get_next, then None: how calibration pulls its data."""

        def __init__(self) -> None:
            self._samples = iter(calibration)

        def get_next(self) -> dict[str, np.ndarray] | None:
            sample = next(self._samples, None)
            return None if sample is None else dict(sample)

    method = {"max": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile}[calibrator]
    with tempfile.TemporaryDirectory(prefix="harness-quantize-") as scratch:
        # quantize_static reads a path: given a ModelProto, it rewrites that proto in place to external data.
        source, target = Path(scratch) / "float32.onnx", Path(scratch) / "int8.onnx"
        source.write_bytes(model_bytes)
        # The percentile calibrator prints its progress: keep stdout for the caller's own output (JSON).
        with contextlib.redirect_stdout(sys.stderr):
            quantize_static(
                source,
                target,
                Feeds(),
                quant_format=QuantFormat.QDQ,
                per_channel=True,  # one scale per output channel of each Conv / Gemm weight
                activation_type=QuantType.QInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=method,
                extra_options={
                    # TensorRT takes int8 Q/DQ with zero point 0 only (tests/conformance_corpus.py, "qdq-*").
                    # A tensor that is 0 on every sample calibrates to the range [0, 0]: ONNX Runtime's
                    # compute_scale_zp replaces a scale below float32's smallest normal by 1.0 (zero point 0),
                    # so no zero scale reaches the model and nothing divides by 0; a test holds it to that.
                    "ActivationSymmetric": True,
                    "WeightSymmetric": True,
                    # Calibrate |x| (a range centred on 0): the symmetric scale then uses the whole range.
                    "CalibTensorRangeSymmetric": True,
                    "CalibPercentile": PERCENTILE,
                    # ONNX Runtime would store the bias as int32 behind a DequantizeLinear, which TensorRT's
                    # parser refuses ("input has type Int32 but must have type FP8, FP4, Int4, Int8, or
                    # UInt8", TensorRT for RTX 1.7), while it builds the float32 bias (tests/test_quantize.py).
                    "QuantizeBias": False,
                },
            )
        quantized = target.read_bytes()
    return QuantizedModel(quantized, calibrator, scales_of(onnx.load_from_string(quantized)))


def _has_quantizable_node(model: onnx.ModelProto) -> bool:
    """Whether any node is of a type quantize_static quantizes by default (its own registries)."""
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    return any(node.op_type in QDQRegistry or node.op_type in QLinearOpsRegistry for node in model.graph.node)


def scales_of(model: onnx.ModelProto) -> dict[str, float | list[float]]:
    """Each quantized tensor's scale(s), by the float model's tensor name: a float per tensor, a list per
    channel. An activation is known by what its QuantizeLinear quantizes (pool1 and flat share relu's scale
    and are listed under their own names too); a weight, stored quantized, and a graph output, whose producer
    ONNX Runtime renames, by the name of their scale: ONNX Runtime names it `<tensor>_scale`."""
    from onnx import numpy_helper

    initializers = {tensor.name: tensor for tensor in model.graph.initializer}
    scales: dict[str, float | list[float]] = {}
    for node in model.graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            scale = numpy_helper.to_array(initializers[node.input[1]]).astype(np.float64)
            value = float(scale) if scale.ndim == 0 else [float(item) for item in scale]
            scales.setdefault(node.input[1].removesuffix("_scale"), value)
            if node.op_type == "QuantizeLinear":
                scales[node.input[0]] = value
    return scales


def _read_cached(path: Path, key: str) -> QuantizedModel | None:
    """The cached result, or None when absent or not whole (the sidecar, written last, checks the model's hash)."""
    sidecar = _sidecar(path)
    try:
        record: dict[str, Any] = json.loads(sidecar.read_text())
        model_bytes = path.read_bytes()
    except (OSError, ValueError):
        return None
    if record.get("key") != key or record.get("sha256") != hashlib.sha256(model_bytes).hexdigest():
        return None
    return QuantizedModel(model_bytes, record["calibrator"], record["scales"])


def _store(path: Path, key: str, quantized: QuantizedModel) -> None:
    record = {
        "key": key,
        "sha256": hashlib.sha256(quantized.model_bytes).hexdigest(),
        "calibrator": quantized.calibrator,
        "scales": quantized.scales,
    }
    write_atomically(path, quantized.model_bytes)
    write_atomically(_sidecar(path), json.dumps(record, indent=1).encode())


def _sidecar(path: Path) -> Path:
    return path.with_suffix(".json")
