"""Explicit (Q/DQ) int8 models derived from a float32 ONNX model, calibrated by ONNX Runtime's quantization tool.

TensorRT 11 and TensorRT for RTX build int8 only from explicitly quantized networks: the implicit INT8
builder flag and the calibrators are gone, so the scales must be in the ONNX model as QuantizeLinear /
DequantizeLinear pairs. ONNX Runtime's `quantize_static` calibrates and inserts them; the options below
are the ones TensorRT accepts (symmetric int8, zero point 0, per-channel weights, float32 bias), and the
placement is the one TensorRT's explicit-quantization guide recommends: Q/DQ on the inputs of the compute
layers (QUANTIZED_OPS), never on their outputs, Softmax or a graph output. Inference no-ops (Dropout,
Identity) are removed first; nodes the case keeps in float32 are not quantized.

NVIDIA's ModelOpt ONNX quantizer (modelopt.onnx.quantization 0.47) was measured against this on nine real
architectures (benchmarks/real_architectures.py --modelopt): errors of the same order (its 0.67-1.08x ours),
TensorRT for RTX builds both, but it leaves batch-1 Gemms float (AlexNet/VGG/ZFNet engines 3.5-3.8x larger),
quantizes one input of residual Sums, Concat and BatchNormalization, which the ONNX-types proof cannot credit
(3 of 9 models fail it), is 1.7-6.4x slower, and needs torch, onnxruntime-gpu, cupy and onnx pinned to 1.21 (a
2 GB venv): not used.

Calibration runs the model over every calibration sample, so a result is cached on disk when asked:
keyed by a SHA-256 over the model, the calibration data, the calibrator and ONNX Runtime's version,
written atomically under a file lock so that parallel xdist workers quantize each key once, and checked on
the very bytes used (harness/cachefile.py). A damaged entry is calibrated again with a warning naming it; a cache
that cannot be written (a full disk) leaves the result in memory for this session, with a warning.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

import filelock
import numpy as np

from harness import cachefile
from harness.atomic import release_removed, scratch_folder
from harness.errors import CaseDefinitionError

if TYPE_CHECKING:
    import onnx

Calibrator = Literal["max", "percentile"]
CALIBRATORS: tuple[Calibrator, ...] = get_args(Calibrator)

# Bump when the quantization options or the cache layout change: older entries are then never looked up.
CACHE_FORMAT = 2  # 2: Q/DQ on the inputs of compute layers only, inference no-ops removed, keep_fp32 excluded
# The layers int8 quantizes, on their inputs only (activation and weight), as TensorRT's explicit-quantization
# guide places Q/DQ: "quantize all inputs of weighted operations (Convolution, Transposed Convolution and GEMM)"
# and leave their outputs float, so that TensorRT fuses the dequantize into the layer and chooses the output
# type itself. Softmax, pooling, Concat, elementwise layers and graph outputs get no Q/DQ: quantizing Softmax's
# output at 1/127 turned every probability under 0.004 into 0 (errors 0.93-1.0 on real classifiers).
QUANTIZED_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
# Nodes that compute nothing at inference: removed before quantization (their consumers read their input), so
# that no Q/DQ is put around them and the precision proof never holds them to Int8.
INFERENCE_NO_OPS = ("Dropout", "Identity")
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


class CalibrationCacheWarning(UserWarning):
    """A cached calibration result was unusable and is calibrated again, or the result could not be cached."""


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
    keep_fp32: Sequence[str] = (),
) -> QuantizedModel:
    """The Q/DQ int8 model of `model`, its activation ranges calibrated on `calibration` (one feed per
    sample: input name -> array) with `calibrator`: "max" (the largest |x| seen) or "percentile".

    Bad calibration data raises CaseDefinitionError naming `case_name` and the fix. A model with no operator
    ONNX Runtime quantizes (a lone Identity) comes back unchanged, with no scales: there is nothing to
    calibrate. With `cache_dir`, a result computed once for the same model, data, calibrator and ONNX
    Runtime version is read back without calibrating again. Nodes named in `keep_fp32` are not quantized
    (ONNX Runtime's nodes_to_exclude): they compute in float32 between int8 layers.
    """
    if calibrator not in CALIBRATORS:
        raise ValueError(f"unknown calibrator {calibrator!r}; the calibrators are {', '.join(CALIBRATORS)}")
    model = without_inference_no_ops(model)
    model_bytes = model.SerializeToString()
    kept = tuple(sorted(set(keep_fp32)))

    def feeds() -> Feeds:
        data = calibration.make() if isinstance(calibration, CalibrationRecipe) else calibration
        _check_calibration(model, data, case_name)
        return data

    if cache_dir is None:
        return _quantize(model_bytes, feeds(), calibrator, kept)
    key = cache_key(model_bytes, calibration, calibrator, kept)
    path = cache_dir / f"int8-{key}.onnx"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(f"{path}.lock")
        lock.acquire()  # one worker calibrates a key; the others then find its result
    except OSError as error:  # a full or read-only disk: calibrate all the same, in memory
        cachefile.warn_unwritable(
            CalibrationCacheWarning, case_name, "int8 calibration cache entry", path, error, "the result was computed"
        )
        return _quantize(model_bytes, feeds(), calibrator, kept)
    try:
        cached = _read_cached(path, key, case_name)
        if cached is not None:
            return cached
        quantized = _quantize(model_bytes, feeds(), calibrator, kept)
        _store(path, key, quantized, case_name)
        return quantized
    finally:
        release_removed(lock)  # no lock file stays behind in the cache


def cache_key(
    model_bytes: bytes, calibration: Feeds | CalibrationRecipe, calibrator: Calibrator, keep_fp32: Sequence[str] = ()
) -> str:
    """SHA-256 over everything the scales depend on: the model, the calibration data (every array's name,
    dtype, shape and bytes, in order; or a recipe's fingerprint), the calibrator, the nodes kept float32 and
    ONNX Runtime's version (its calibrators change between releases)."""
    import onnxruntime

    digest = hashlib.sha256()
    header = {
        "format": CACHE_FORMAT,
        "calibrator": calibrator,
        "onnxruntime": onnxruntime.__version__,
        "keep_fp32": sorted(keep_fp32),
    }
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
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        bad = ~np.isfinite(array)
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        kinds = " and ".join(
            kind for kind, hit in (("NaN", np.isnan(array).any()), ("Inf", np.isinf(array).any())) if hit
        )
        return (
            f"holds {kinds} ({int(bad.sum())} of {array.size} values, the first at index {first}); calibration "
            "derives each tensor's scale from its largest magnitude, which a non-finite value makes meaningless: "
            "give finite values (fix the input's generator or file)"
        )
    if array.ndim != len(dims):
        return f"has rank {array.ndim} (shape {array.shape}), the model takes rank {len(dims)}; reshape it"
    wrong = [(axis, size, want) for axis, (size, want) in enumerate(zip(array.shape, dims)) if want not in (None, size)]
    if wrong:
        axis, size, want = wrong[0]
        return f"has {size} at dim {axis} (shape {array.shape}), the model fixes it at {want}; give that size"
    return None


def _quantize(
    model_bytes: bytes,
    calibration: Sequence[Mapping[str, np.ndarray]],
    calibrator: Calibrator,
    keep_fp32: Sequence[str] = (),
) -> QuantizedModel:
    """Calibrate and insert Q/DQ pairs with ONNX Runtime's quantize_static, with the options TensorRT accepts,
    on the inputs of the compute layers (QUANTIZED_OPS) except those kept float32."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    if not _has_quantizable_node(onnx.load_from_string(model_bytes), keep_fp32):
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
    with scratch_folder("quantize") as scratch:
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
                op_types_to_quantize=list(QUANTIZED_OPS),
                nodes_to_exclude=list(keep_fp32),
                extra_options={
                    # Inputs only: a compute layer's output stays float (TensorRT picks the output type of the
                    # fused int8 kernel); no graph output is ever quantized.
                    "OpTypesToExcludeOutputQuantization": list(QUANTIZED_OPS),
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
        placed = _only_on_quantized_layers(onnx.load(target), keep_fp32)
    quantized = placed.SerializeToString()
    return QuantizedModel(quantized, calibrator, scales_of(placed))


def _has_quantizable_node(model: onnx.ModelProto, keep_fp32: Sequence[str] = ()) -> bool:
    """Whether any node is one that int8 quantizes (QUANTIZED_OPS) and not kept float32."""
    return any(node.op_type in QUANTIZED_OPS and node.name not in keep_fp32 for node in model.graph.node)


def _only_on_quantized_layers(model: onnx.ModelProto, keep_fp32: Sequence[str]) -> onnx.ModelProto:
    """ONNX Runtime gives every consumer of a quantized tensor its dequantized form (a MaxPool or Concat reading
    the same activation as a Conv): those consumers read the float tensor again, and Q/DQ pairs left unread are
    dropped, so that Q/DQ sits only on the inputs of the layers int8 quantizes."""
    graph = model.graph
    producers = {output: node for node in graph.node for output in node.output}
    float_of = {}  # a DequantizeLinear's output -> the float tensor its QuantizeLinear read
    for node in graph.node:
        if node.op_type == "DequantizeLinear":
            quantize = producers.get(node.input[0])
            if quantize is not None and quantize.op_type == "QuantizeLinear":
                float_of[node.output[0]] = quantize.input[0]
    for node in graph.node:
        if node.op_type in QUANTIZED_OPS and node.name not in keep_fp32:
            continue
        for index, name in enumerate(node.input):
            if name in float_of and node.op_type not in ("QuantizeLinear", "DequantizeLinear"):
                node.input[index] = float_of[name]
    _drop_unread(graph)
    return model


def _drop_unread(graph: onnx.GraphProto) -> None:
    """Remove nodes none of whose outputs is read or is a graph output, until none is left (Q then DQ)."""
    while True:
        read = {name for node in graph.node for name in node.input} | {value.name for value in graph.output}
        unread = [node for node in graph.node if not any(output in read for output in node.output)]
        if not unread:
            break
        for node in unread:
            graph.node.remove(node)
    used = {name for node in graph.node for name in node.input}
    for tensor in [tensor for tensor in graph.initializer if tensor.name not in used]:
        graph.initializer.remove(tensor)


def without_inference_no_ops(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` without the nodes that compute nothing at inference (INFERENCE_NO_OPS: Identity, and Dropout whose
    mask nobody reads): their consumers read their input instead; one whose output is a graph output read
    straight from a graph input stays. A copy; `model` itself where there is none."""
    import onnx

    graph_outputs = {value.name for value in model.graph.output}
    graph_inputs = {value.name for value in model.graph.input}
    read = {name for node in model.graph.node for name in node.input} | graph_outputs

    def removable(node: onnx.NodeProto) -> bool:
        if node.op_type not in INFERENCE_NO_OPS or not node.input or not node.input[0]:
            return False
        if any(output in read for output in node.output[1:]):  # Dropout's mask is used
            return False
        source, target = node.input[0], node.output[0]
        return target not in graph_outputs or (source not in graph_inputs and source not in graph_outputs)

    if not any(removable(node) for node in model.graph.node):
        return model
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    graph = fixed.graph
    for node in [node for node in graph.node if removable(node)]:
        source, target = node.input[0], node.output[0]
        graph.node.remove(node)
        if target in graph_outputs:  # the producer of `source` now writes the graph output itself
            _rename(graph, source, target)
        else:
            for other in graph.node:
                for index, name in enumerate(other.input):
                    if name == target:
                        other.input[index] = source
    return fixed


def _rename(graph: onnx.GraphProto, old: str, new: str) -> None:
    for node in graph.node:
        for index, name in enumerate(node.input):
            if name == old:
                node.input[index] = new
        for index, name in enumerate(node.output):
            if name == old:
                node.output[index] = new


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


def _read_cached(path: Path, key: str, case_name: str) -> QuantizedModel | None:
    """The cached result, None when absent or unusable (then with a warning naming the file)."""
    entry = cachefile.read_entry(path, key)
    if entry is None:
        return None
    if isinstance(entry, cachefile.Entry):
        calibrator, scales = entry.sidecar.get("calibrator"), entry.sidecar.get("scales")
        if calibrator in CALIBRATORS and isinstance(scales, dict):
            return QuantizedModel(entry.data, str(calibrator), scales)
        problem = 'its checksum file has no "calibrator" of ' + ", ".join(CALIBRATORS) + ' or no "scales" object'
    else:
        problem = entry.problem
    warnings.warn(
        CalibrationCacheWarning(
            f"case '{case_name}': the int8 calibration cache entry {path} is unusable ({problem}); calibrating again"
        ),
        stacklevel=4,
    )
    return None


def _store(path: Path, key: str, quantized: QuantizedModel, case_name: str) -> None:
    """Cache the result; a failed write (a full disk) is a warning: the result is used from memory."""
    fields = {"calibrator": quantized.calibrator, "scales": quantized.scales}
    try:
        cachefile.write_entry(path, key, quantized.model_bytes, fields)
    except OSError as error:
        cachefile.warn_unwritable(
            CalibrationCacheWarning, case_name, "int8 calibration cache entry", path, error, "the result was computed"
        )
