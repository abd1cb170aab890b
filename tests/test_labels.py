"""Tests of harness/precision/labels.py: an integer label may differ from the reference only where the reference's
own top-1/top-2 margin is inside the precision's error on the scores that produced it."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from cases import mnist
from harness.case import Precision, Tolerance
from harness.compare import output_errors
from harness.precision.convert import derived_model
from harness.precision.labels import LabelSource, exempt_labels, judge_labels, label_source, margins
from harness.precision.localize import run_on_onnxruntime


def argmax_model() -> onnx.ModelProto:
    """x (N, 4) -> Mul(w) 'scale' -> 'scores' -> ArgMax(axis 1) 'argmax' -> Identity 'name_it' -> label (N,), with
    w = [1, 1.0002, 1, 1]: float16 rounds 1.0002 to 1 (ONNX Runtime's CPU provider computes a float16 model's Mul
    in float32 behind casts, but the weight itself is stored in float16)."""
    graph = helper.make_graph(
        [
            helper.make_node("Mul", ["x", "w"], ["scores"], name="scale"),
            helper.make_node("ArgMax", ["scores"], ["index"], name="argmax", axis=1, keepdims=0),
            helper.make_node("Identity", ["index"], ["label"], name="name_it"),
        ],
        "argmax",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("label", TensorProto.INT64, ["N"])],
        initializer=[numpy_helper.from_array(np.array([1, 1.0002, 1, 1], np.float32), "w")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def near_tie_inputs() -> dict[str, np.ndarray]:
    """Row 0 a near tie that float16 rounds to a tie (scores 1.0 vs 1.0002: argmax 1 in float32, 0 in float16); the
    other rows' best scores lead by 0.5 or more."""
    rng = np.random.default_rng(11)
    x = rng.uniform(-1, 1, (8, 4))
    x[np.arange(8), rng.integers(0, 4, 8)] = 2.0 + rng.uniform(0, 0.5, 8)
    x[0] = [1.0, 1.0, 0.0, -1.0]
    return {"x": x.astype(np.float32)}


def test_the_label_is_traced_back_to_its_argmax_and_scores() -> None:
    assert label_source(argmax_model(), "label") == LabelSource("argmax", "ArgMax", "scores", 1, 1, True)
    assert label_source(mnist.CASE.model(), "label") == LabelSource("argmax", "ArgMax", "logits", 1, 1, True)
    shape = helper.make_graph(
        [helper.make_node("Shape", ["x"], ["s"], name="shape")],
        "shape",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("s", TensorProto.INT64, [1])],
    )
    assert label_source(helper.make_model(shape), "s") is None  # an integer output that is no label


def test_topk_indices_are_labels_with_a_margin_on_each_side() -> None:
    graph = helper.make_graph(
        [helper.make_node("TopK", ["x", "k"], ["values", "indices"], name="top2", axis=-1)],
        "topk",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("indices", TensorProto.INT64, [1, 2])],
        initializer=[numpy_helper.from_array(np.array([2], np.int64), "k")],
    )
    source = label_source(helper.make_model(graph), "indices")
    assert source == LabelSource("top2", "TopK", "x", -1, 2, True)
    assert label_source(helper.make_model(graph), "values") is None  # the values are no label
    # best 5.0, then 4.5, then 1.0: the first pick is 0.5 from the second; the second 0.5 above and 3.5 below
    assert margins(np.array([[1.0, 5.0, 4.5, 0.0]]), source, (1, 2)).tolist() == [[0.5, 0.5]]


def test_the_margin_is_top1_minus_top2_in_the_labels_shape() -> None:
    source = LabelSource("argmax", "ArgMax", "s", 1, 1, True)
    scores = np.array([[3.0, 2.9, 0.0], [5.0, 1.0, 0.0]])
    assert margins(scores, source, (2,)) == pytest.approx([0.1, 4.0])
    argmin = LabelSource("argmin", "ArgMin", "s", 1, 1, False)
    assert np.allclose(margins(scores, argmin, (2, 1)), [[2.9], [1.0]])  # type: ignore[arg-type]
    assert margins(scores, source, (3,)) is None  # not one label per row of scores


def test_a_label_differing_where_the_margin_is_wide_is_not_exempt() -> None:
    source = LabelSource("argmax", "ArgMax", "s", 1, 1, True)
    scores = np.array([[3.0, 2.999, 0.0], [5.0, 1.0, 0.0], [0.0, 2.0, 1.0]])
    reference = np.array([0, 0, 1])
    one_tie = judge_labels(np.array([1, 0, 1]), reference, scores, source, {"here": 0.002}, 1e-3)
    assert one_tie is not None and (one_tie.differ, one_tie.exempt, one_tie.bound) == (1, 1, pytest.approx(0.01))
    assert one_tie.note == (
        "1 of 3 labels differ, all where the reference's top-1/top-2 margin on 's' < bound 0.01: exempt (bound = "
        "2 × the scores' error 0.005, the precision's tolerance × max|scores|, above what was measured)"
    )
    both = judge_labels(np.array([1, 1, 1]), reference, scores, source, {"here": 0.02}, 1e-3)
    assert both is not None and (both.differ, both.exempt) == (2, 1)
    assert both.note.startswith("2 of 3 labels differ: 1 where the reference's top-1/top-2 margin on 's' < bound 0.04")
    assert both.note.endswith(
        "(exempt; bound = 2 × the scores' error 0.02, measured on here), 1 elsewhere, which must match"
    )


def flip(labels: np.ndarray, row: int) -> np.ndarray:
    flipped = labels.copy()
    flipped[row] = (flipped[row] + 1) % 4
    return flipped


def test_a_real_fp16_flip_at_a_near_tie_is_exempt_and_a_flip_elsewhere_fails() -> None:
    """The fp16 model really flips row 0 (1.0 and 1.0002 round to one float16); that label is exempt, with the
    count in the record; a label flipped where the margin is 0.5 or more still fails; at fp32 nothing is exempt."""
    model = argmax_model()
    derived = derived_model(model, Precision.FP16)
    inputs = near_tie_inputs()
    x = inputs["x"].astype(np.float64) * np.array([1, np.float32(1.0002), 1, 1])
    reference = {"label": x.argmax(axis=1)}
    engine = {"label": run_on_onnxruntime(derived, inputs, ["label"])["label"]}
    assert engine["label"][0] == 0 and reference["label"][0] == 1  # the flip is real
    assert (engine["label"][1:] == reference["label"][1:]).all()

    def judged(labels: np.ndarray, precision: Precision) -> object:
        errors = [output_errors("label", labels, reference["label"], Tolerance(exact=True))]
        assert errors[0].failure is not None
        (entry,) = exempt_labels(errors, precision, model, derived, inputs, {"label": labels}, reference)
        return entry

    exempt = judged(engine["label"], Precision.FP16)
    assert exempt.failure is None  # type: ignore[attr-defined]
    assert exempt.exemption["differ"] == 1 and exempt.exemption["exempt"] == 1  # type: ignore[attr-defined]
    assert exempt.exemption["note"].startswith(  # type: ignore[attr-defined]
        "1 of 8 labels differ, all where the reference's top-1/top-2 margin on 'scores' < bound 0.00"
    )
    elsewhere = judged(flip(engine["label"], 3), Precision.FP16)
    assert elsewhere.failure is not None and "1 elsewhere, which must match" in elsewhere.failure  # type: ignore[attr-defined]
    fp32 = judged(engine["label"], Precision.FP32)
    assert fp32.failure == "1 of 8 elements differ; this output must match exactly"  # type: ignore[attr-defined]
    assert fp32.exemption is None  # type: ignore[attr-defined]


def test_a_label_chosen_straight_from_a_graph_input_takes_its_scores_from_the_inputs() -> None:
    graph = helper.make_graph(
        [helper.make_node("ArgMax", ["scores"], ["label"], name="argmax", axis=1, keepdims=0)],
        "classify",
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("label", TensorProto.INT64, ["batch"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    scores = np.array([[1.0, 1.0005, 0.0], [3.0, 0.0, 1.0]], np.float32)
    reference = {"label": np.array([1, 0])}
    labels = np.array([0, 2])  # row 0 inside fp16's bound (2 × 1e-3 × 3), row 1 far outside it
    errors = [output_errors("label", labels, reference["label"], Tolerance(exact=True))]
    (entry,) = exempt_labels(
        errors,
        Precision.FP16,
        model,
        derived_model(model, Precision.FP16),
        {"scores": scores},
        {"label": labels},
        reference,
    )
    assert entry.exemption is not None and (entry.exemption["differ"], entry.exemption["exempt"]) == (2, 1)
    assert entry.exemption["bound"] == pytest.approx(2 * 1e-3 * 3.0)
    assert entry.failure is not None and entry.failure.startswith("2 of 2 labels differ: 1 where")


def test_the_results_file_reads_back_the_exemption() -> None:
    from harness.results.document import OutputResult

    note = "1 of 8 labels differ, all where the reference's top-1/top-2 margin on 's' < bound 0.01: exempt (...)"
    read = OutputResult.from_json(
        {"output": "label", "tolerance": {"exact": True}, "failure": None, "exemption": {"exempt": 1, "note": note}}
    )
    assert (read.exempt, read.exemption, read.failure) == (1, note, None)
