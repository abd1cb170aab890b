"""Every precision's model from a case's one float32 model: the precision transform as one step.

fp32/tf32: the float32 model; fp16/bf16: harness/precision/convert.py; int8: ONNX Runtime's static
quantization (harness/precision/quantize.py) calibrated on the case's own seeded input generator.
Node names are made explicit first (convert.named_nodes), so --keep-fp32, the localization and the
per-layer precision summary all speak of the same layers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from harness.case import Case, Precision
from harness.errors import BuildError, ModelRefusedError
from harness.precision.convert import ConversionError, derived_model, named_nodes
from harness.precision.names import check_node_names
from harness.precision.opset import (
    OpsetConversion,
    OpsetConversionError,
    upgraded,
    weights_as_weights,
    within_onnxruntime_ir,
)
from harness.precision.quantize import QUANTIZED_OPS, CalibrationRecipe, Calibrator, quantize_int8
from harness.precision.table import Derivation, row

if TYPE_CHECKING:
    import onnx

CALIBRATION_BATCHES = 8  # batches at the first profile's opt shapes: 32 images for mnist


@dataclass(frozen=True)
class PrecisionOptions:
    """How the harness derives models: what stays float32, and how int8 is calibrated."""

    keep_fp32: tuple[str, ...] = ()  # node names kept float32 in fp16/bf16/int8 models, where a case has them
    calibrator: Calibrator = "max"  # ONNX Runtime's MinMax or Percentile calibration (harness/precision/quantize.py)
    cache_dir: Path | None = None  # calibration results are cached here (0 s warm)
    min_opset: int = 1  # the oldest opset every selected backend runs: older models are upgraded to it


@dataclass(frozen=True)
class DerivedModel:
    precision: Precision
    model_bytes: bytes
    kept_fp32: tuple[str, ...] = ()  # the nodes this model keeps in float32
    calibrator: str | None = None  # int8 only
    # int8 only: tensor name -> scale(s), as recorded in the results and as trt-net's Q/DQ pairs use them
    scales: Mapping[str, float | list[float]] | None = None
    opset_conversion: OpsetConversion | None = None  # where the case's model was below the opset needed

    def to_json(self) -> dict[str, object]:
        return {
            "precision": self.precision.value,
            "opset": str(self.opset_conversion) if self.opset_conversion else None,
            "kept_fp32": list(self.kept_fp32),
            "calibrator": self.calibrator,
            "scales": dict(self.scales) if self.scales is not None else None,
        }


def node_names(model: onnx.ModelProto) -> list[str]:
    return [node.name for node in named_nodes(model).graph.node]


def derive(
    case: Case,
    precision: Precision,
    options: PrecisionOptions,
    calibrating: Callable[[int], None] | None = None,
) -> DerivedModel:
    """The model `precision` runs for `case`; CaseDefinitionError (naming the case) on bad calibration data.
    `calibrating(batches)` is called when int8 calibration starts (not when its result is found in the cache)."""
    model, conversion = _at_needed_opset(case, precision, options.min_opset)
    derivation = row(precision).derivation
    if row(precision).keeps_fp32:  # the case's own list: every name must be there
        check_node_names(model, case.keep_fp32, case_name=case.name, source="keep_fp32 (the case's field)")
    # --keep-fp32 names apply to the cases that have them (the plugin reports a name that no selected case has).
    kept = tuple(dict.fromkeys((*case.keep_fp32, *(n for n in options.keep_fp32 if n in node_names(model)))))
    if derivation is Derivation.QUANTIZED:
        _refuse_nothing_to_quantize(case, model, kept)

        def calibration_data() -> list[dict[str, np.ndarray]]:
            if calibrating is not None:
                calibrating(CALIBRATION_BATCHES)
            return calibration_inputs(case)

        recipe = CalibrationRecipe(calibration_fingerprint(case), calibration_data)
        quantized = quantize_int8(
            model, recipe, options.calibrator, case_name=case.name, cache_dir=options.cache_dir, keep_fp32=kept
        )
        return DerivedModel(precision, quantized.model_bytes, kept, quantized.calibrator, quantized.scales, conversion)
    if derivation is not Derivation.CONVERTED:
        kept = ()
    try:
        derived = derived_model(model, precision, kept)
    except ConversionError as error:
        raise BuildError(case.name, str(error)) from None  # this point fails; the other precisions go on
    return DerivedModel(precision, derived.SerializeToString(), kept, None, None, conversion)


def _refuse_nothing_to_quantize(case: Case, model: onnx.ModelProto, kept: tuple[str, ...]) -> None:
    """A model with no layer int8 quantizes would run in float32 under an int8 label: a refusal (the point is
    skipped with the fix), not a failed proof at every int8 point."""
    compute = [node.name for node in model.graph.node if node.op_type in QUANTIZED_OPS]
    if any(name not in kept for name in compute):
        return
    all_kept = f" (its {', '.join(compute)} kept float32)" if compute else ""
    raise ModelRefusedError(
        case.name,
        f"{case.name} has no layer int8 quantizes ({', '.join(QUANTIZED_OPS)}: harness.precision.quantize."
        f"QUANTIZED_OPS){all_kept}; int8 would run it in float32: drop int8 from the case's precisions",
    )


def _at_needed_opset(
    case: Case, precision: Precision, backends_need: int
) -> tuple[onnx.ModelProto, OpsetConversion | None]:
    """The case's float32 model, nodes named, its weights not graph inputs (IR < 4 listed them: ONNX Runtime would
    ask for them in the feed), at an IR version ONNX Runtime reads (within_onnxruntime_ir) and an opset every
    selected backend and the derivation can use."""
    needs = [(backends_need, "the selected backends")]
    if row(precision).min_opset_reason:
        needs.append((row(precision).min_opset, row(precision).min_opset_reason))
    minimum, needed_by = max(needs)
    try:
        model, conversion = upgraded(
            within_onnxruntime_ir(weights_as_weights(case.model())), minimum, needed_by=needed_by
        )
    except OpsetConversionError as error:  # the model cannot be what the backends need: a refusal, not a failure
        raise ModelRefusedError(case.name, str(error)) from None
    return named_nodes(model), conversion


def calibration_fingerprint(case: Case) -> str:
    """What calibration_inputs(case) depends on, so that a cached int8 model is found without generating the
    data: the case, the shapes, the seeds, and the source of the module defining the generator (its helpers
    and weights included, as the network-API cache key does for define_network), and a generator object's
    parameters."""
    module = inspect.getmodule(case.generate_inputs)
    try:
        source = inspect.getsource(module) if module else inspect.getsource(case.generate_inputs)
    except (OSError, TypeError):  # no source to read (a lambda typed in a REPL, a C function)
        source = repr(case.generate_inputs)
    if dataclasses.is_dataclass(case.generate_inputs):
        # A generator object (a spec case's, harness/spec/inputs.py): its parameters (ranges, files' SHA-256) are
        # its repr; a changed range must not reuse the scales calibrated on the old one.
        source += repr(case.generate_inputs)
    recipe = {
        "case": case.name,
        "shapes": {name: list(shape) for name, shape in case.profiles[0].opt.items()},
        "batches": CALIBRATION_BATCHES,
        "generator_sha256": hashlib.sha256(source.encode()).hexdigest(),
    }
    return json.dumps(recipe, sort_keys=True)


def calibration_inputs(case: Case) -> list[dict[str, np.ndarray]]:
    """CALIBRATION_BATCHES batches from the case's own generator at its first profile's opt shapes, with
    seeds of their own (never the seeds of the tests' inputs: calibrating on the test data would flatter int8)."""
    shapes = case.profiles[0].opt
    return [
        case.make_inputs(shapes, np.random.default_rng(zlib.crc32(f"{case.name}/calibration/{batch}".encode())))
        for batch in range(CALIBRATION_BATCHES)
    ]
