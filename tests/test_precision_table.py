"""The precision table is the one place a precision is declared: every reader takes its facts from the row."""

from __future__ import annotations

import dataclasses

from cases import conv_add_relu
from harness.backends import BuildRequest
from harness.build import EngineStore
from harness.case import DEFAULT_MEAN_REL, Precision
from harness.precision.layers import REDUCED
from harness.precision.proof import EXPECTED
from harness.precision.table import PRECISIONS, Group, row
from tests.trt_support import DOUBLE_VERSIONS, adapter_backend, double_library


def test_every_precision_has_exactly_its_own_row() -> None:
    assert list(PRECISIONS) == list(Precision)
    assert all(entry.precision is precision for precision, entry in PRECISIONS.items())


def test_the_reduced_float_group_is_fp16_and_bf16() -> None:
    reduced = {precision for precision, entry in PRECISIONS.items() if entry.group is Group.REDUCED_FLOAT}
    assert reduced == {Precision.FP16, Precision.BF16}


def test_the_proof_holds_each_derived_precision_to_the_rows_inspector_word() -> None:
    assert EXPECTED == {Precision.FP16: "Half", Precision.BF16: "BFloat16", Precision.INT8: "Int8"}
    assert REDUCED == ("Half", "BFloat16", "Int8")


def test_the_default_limits_are_the_rows() -> None:
    assert DEFAULT_MEAN_REL == {precision: row(precision).default_mean_rel for precision in Precision}
    assert DEFAULT_MEAN_REL[Precision.BF16] == 1e-2


def test_trt_net_builds_int8_from_the_requests_scales_without_reading_the_model_back() -> None:
    """The request carries the derived model's scales: the network API needs no ONNX model to quantize, so
    bytes that are no model at all still give an engine whose quantized layers run in Int8."""
    case = conv_add_relu.CASE
    derived = EngineStore(None).derived(case, Precision.INT8)
    assert derived.scales
    request = BuildRequest(case, Precision.INT8, 0, dataclasses.replace(derived, model_bytes=b"not an ONNX model"))
    backend = adapter_backend(double_library(DOUBLE_VERSIONS[0]), "network-api")
    engine = backend.load(backend.build(request).data, request)
    try:
        layers = engine.layer_precisions()
    finally:
        engine.close()
    assert layers is not None
    assert any(layer.precision == "Int8" for layer in layers)
