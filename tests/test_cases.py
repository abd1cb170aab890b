"""Unit tests of the case modules: declarations, ONNX models, and the numpy references against onnxruntime."""

from __future__ import annotations

import functools
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from cases import ALL_CASES, conv_add_relu, mnist
from harness.case import Case, Precision, Shape, ShapePoint, TensorSpec, check_case
from harness.compare import compare_outputs
from harness.errors import ModelRefusedError
from harness.precision.derive import PrecisionOptions, derive

REPO = Path(__file__).resolve().parents[1]

each_case = pytest.mark.parametrize("case", ALL_CASES, ids=lambda case: case.name)
each_point = pytest.mark.parametrize("point", list(ShapePoint), ids=lambda point: point.value)
each_precision = pytest.mark.parametrize("precision", list(Precision), ids=lambda precision: precision.value)


def derived_model(case: Case, precision: Precision) -> onnx.ModelProto:
    """The model the harness runs at `precision`, derived from the case's float32 model."""
    return onnx.load_from_string(derived_bytes(case, precision, PrecisionOptions()))


def derived_bytes(case: Case, precision: Precision, options: PrecisionOptions) -> bytes:
    """derive()'s model; a precision the case does not declare may be refused (identity at int8): skipped."""
    try:
        return derive(case, precision, options).model_bytes
    except ModelRefusedError as error:
        if precision in case.precisions:
            raise
        pytest.skip(f"{case.name} declares no {precision.value}, and its derivation refuses it: {error}")


def inputs_at(case: Case, point: ShapePoint) -> dict[str, np.ndarray]:
    shapes = case.profiles[0].shapes(point)
    return case.generate_inputs(shapes, np.random.default_rng(case.input_seed(0, point, 0)))


def output_shape(case: Case, spec: TensorSpec, input_shapes: Mapping[str, Shape]) -> Shape:
    """Resolve an output's dynamic dims from the input shapes, through the dim names they share."""
    bound = {
        dim: value
        for input_spec in case.inputs
        for dim, value in zip(input_spec.shape, input_shapes[input_spec.name], strict=True)
        if isinstance(dim, str)
    }
    return tuple(bound[dim] if isinstance(dim, str) else dim for dim in spec.shape)


@functools.cache
def fp32_session(case_name: str) -> ort.InferenceSession:
    """One session per case: building the mnist model and session is the slowest step in this file."""
    case = next(case for case in ALL_CASES if case.name == case_name)
    model = case.onnx_model().SerializeToString()
    return ort.InferenceSession(model, providers=["CPUExecutionProvider"])


@each_case
def test_declaration_is_valid(case: Case) -> None:
    check_case(case)


@each_case
@each_precision
def test_derived_model_is_valid(case: Case, precision: Precision) -> None:
    onnx.checker.check_model(derived_model(case, precision), full_check=True)


@each_case
@each_precision
def test_onnx_io_matches_the_tensor_specs(case: Case, precision: Precision) -> None:
    """I/O stays float32 (int64 for labels) at every precision, with the case's dim names."""
    graph = derived_model(case, precision).graph
    for values, specs in ((graph.input, case.inputs), (graph.output, case.outputs)):
        declared = [
            (
                value.name,
                onnx.helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type).name,
                tuple(dim.dim_param or dim.dim_value for dim in value.type.tensor_type.shape.dim),
            )
            for value in values
        ]
        assert declared == [(spec.name, spec.dtype, spec.shape) for spec in specs]


@each_case
@each_precision
def test_derived_model_is_deterministic(case: Case, precision: Precision) -> None:
    """Engine caches key on the model bytes, so the same derivation must serialize identically."""
    options = PrecisionOptions()
    assert derived_bytes(case, precision, options) == derived_bytes(case, precision, options)


def test_identity_at_int8_is_refused_saying_it_has_nothing_int8_quantizes() -> None:
    """Why identity declares no int8 (cases/identity.py): a lone Identity has no layer int8 quantizes."""
    identity = next(case for case in ALL_CASES if case.name == "identity")
    with pytest.raises(ModelRefusedError, match="identity has no layer int8 quantizes .*drop int8 from the case's"):
        derive(identity, Precision.INT8, PrecisionOptions())


@each_case
@each_point
def test_reference_agrees_with_onnxruntime_at_fp32(case: Case, point: ShapePoint) -> None:
    inputs = inputs_at(case, point)
    expected = case.reference(inputs)
    session = fp32_session(case.name)
    actual = dict(zip([output.name for output in session.get_outputs()], session.run(None, inputs), strict=True))
    failures = [errors for errors in compare_outputs(case, Precision.FP32, actual, expected) if errors.failure]
    assert not failures


@each_case
@each_point
def test_inputs_and_reference_have_the_declared_shapes_and_dtypes(case: Case, point: ShapePoint) -> None:
    """Inputs are float32 of exactly the asked shapes; float outputs come back float64, integer ones int64."""
    shapes = case.profiles[0].shapes(point)
    inputs = inputs_at(case, point)
    assert {name: (array.shape, array.dtype) for name, array in inputs.items()} == {
        spec.name: (shapes[spec.name], np.dtype(np.float32)) for spec in case.inputs
    }
    outputs = case.reference(inputs)
    assert {name: (array.shape, array.dtype) for name, array in outputs.items()} == {
        spec.name: (output_shape(case, spec, shapes), np.dtype(np.float64 if spec.is_float else np.int64))
        for spec in case.outputs
    }


@each_point
def test_mnist_probabilities_sum_to_one(point: ShapePoint) -> None:
    probabilities = mnist.reference(inputs_at(mnist.CASE, point))["probabilities"]
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-12)


@each_point
def test_mnist_inputs_have_a_clear_winner(point: ShapePoint) -> None:
    """The exact check on `label` at fp16 relies on no two top logits being nearly tied."""
    top2 = np.sort(mnist.logits(inputs_at(mnist.CASE, point)["x"]), axis=1)[:, -2:]
    assert (top2[:, 1] - top2[:, 0] >= mnist.LABEL_MARGIN).all()


def test_weights_are_float32() -> None:
    """The ONNX, numpy and TensorRT builders all start from these exact float32 values."""
    for module in (conv_add_relu, mnist):
        assert {value.dtype for value in module.weights().values()} == {np.dtype(np.float32)}


def test_importing_cases_loads_no_onnx_or_onnxruntime() -> None:
    """Collection imports every case, so it must not pay for onnx or onnxruntime."""
    code = (
        "import cases, sys; loaded = [m for m in ('onnx', 'onnxruntime') if m in sys.modules]; "
        "assert not loaded, loaded"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
