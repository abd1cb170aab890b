"""The one point name (harness/naming.py): every place that names a point or its engine spells it alike."""

from __future__ import annotations

from pathlib import Path

from cases.identity import CASE as IDENTITY
from harness.backends import BuildRequest
from harness.build import cache_path
from harness.case import Precision, ShapePoint
from harness.matrix import Point
from harness.naming import engine_name, point_name, shape_label
from harness.parallel import engine_group
from harness.results.document import TestResult


def test_profile_zero_keeps_the_short_label_and_later_profiles_are_prefixed() -> None:
    assert shape_label(0, "max") == "max"
    assert shape_label(2, "fuzz") == "p2.fuzz"
    assert point_name("mnist", "fp16", "p1.max", "ort") == "mnist-fp16-p1.max-ort"
    assert engine_name("mnist", "fp16", 1) == "mnist-fp16-p1"


def test_a_points_id_its_engine_group_cache_stem_and_recorded_label_agree() -> None:
    point = Point(IDENTITY, Precision.FP16, 1, ShapePoint.MAX, "ort")
    assert point.id == "identity-fp16-p1.max-ort"
    assert engine_group(point) == "identity-fp16-p1-ort"
    request = BuildRequest(IDENTITY, Precision.FP16, 1, b"model")
    assert cache_path(Path("/cache"), "onnxruntime", request, "k" * 40).name == f"identity-fp16-p1-{'k' * 20}.bin"
    # A results file written before the "shape" field: the label is rebuilt from profile and corner, alike.
    recorded = TestResult.from_json({"id": "x", "verdict": "pass", "profile": 1, "shape_point": "max"})
    assert recorded.shape == point.shape_label
