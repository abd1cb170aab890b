"""Tests of harness/precision/localize.py: the first layer of a derived model whose output diverges."""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from cases import mnist
from harness.case import ShapePoint
from harness.precision.localize import LayerError, Localization, localize

LAYERS = ("conv1", "relu1", "conv2", "relu2", "flatten", "fc")


def small_model(weights: Mapping[str, np.ndarray] | None = None) -> onnx.ModelProto:
    """Conv -> Relu -> Conv -> Relu -> Flatten -> Gemm on a (2, 1, 8, 8) input, float32, named nodes whose
    output tensors are named '<node>_out' (so that a test can tell a node's name from its tensor's)."""
    values = dict(small_weights() if weights is None else weights)
    node = helper.make_node
    nodes = [
        node("Conv", ["x", "w1", "b1"], ["conv1_out"], name="conv1", pads=[1] * 4),
        node("Relu", ["conv1_out"], ["relu1_out"], name="relu1"),
        node("Conv", ["relu1_out", "w2", "b2"], ["conv2_out"], name="conv2", pads=[1] * 4),
        node("Relu", ["conv2_out"], ["relu2_out"], name="relu2"),
        node("Flatten", ["relu2_out"], ["flatten_out"], name="flatten", axis=1),
        node("Gemm", ["flatten_out", "w3", "b3"], ["y"], name="fc"),
    ]
    graph = helper.make_graph(
        nodes,
        "small",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
        initializer=[numpy_helper.from_array(value, name) for name, value in values.items()],
    )
    return model_of(graph)


def small_weights() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    shapes = {"w1": (4, 1, 3, 3), "b1": (4,), "w2": (4, 4, 3, 3), "b2": (4,), "w3": (4 * 8 * 8, 3), "b3": (3,)}
    return {name: rng.standard_normal(shape).astype(np.float32) for name, shape in shapes.items()}


def small_inputs() -> dict[str, np.ndarray]:
    return {"x": np.random.default_rng(1).standard_normal((2, 1, 8, 8)).astype(np.float32)}


# node -> (its weight initializer, its output tensor)
WEIGHTED = {"conv1": ("w1", "conv1_out"), "conv2": ("w2", "conv2_out"), "fc": ("w3", "y")}


@pytest.mark.parametrize("perturbed", sorted(WEIGHTED))
def test_a_perturbed_layer_is_the_first_failing_one(perturbed: str) -> None:
    """One node's weight x1.01 in a copy: that node fails first, every layer before it has error 0 (same
    float32 math on the same weights), and the layers after it are compared too."""
    weight, output = WEIGHTED[perturbed]
    weights = small_weights()
    weights[weight] = weights[weight] * np.float32(1.01)
    found = localize(small_model(), small_model(weights), small_inputs(), 1e-3)
    assert found.first_failing is not None
    assert (found.first_failing.node, found.first_failing.tensor) == (perturbed, output)
    assert [layer.node for layer in found.layers] == list(LAYERS)
    before = LAYERS[: LAYERS.index(perturbed)]
    assert all(layer.mean_rel == 0.0 and not layer.exceeds for layer in found.layers if layer.node in before)
    assert found.first_failing.mean_rel > 1e-3


def test_identical_models_have_zero_error_everywhere() -> None:
    found = localize(small_model(), small_model(), small_inputs(), 1e-12)
    assert [(layer.op_type, layer.mean_rel, layer.exceeds) for layer in found.layers] == [
        ("Conv", 0.0, False),
        ("Relu", 0.0, False),
        ("Conv", 0.0, False),
        ("Relu", 0.0, False),
        ("Flatten", 0.0, False),
        ("Gemm", 0.0, False),
    ]
    assert found.first_failing is None
    assert found.summary() == "no layer beyond 1e-12 (worst: conv1 (Conv) output 'conv1_out', 0)"


def test_the_callers_models_are_not_changed() -> None:
    """Intermediate tensors are exposed on copies: the models given keep their one output."""
    reference, candidate = small_model(), small_model()
    before = (reference.SerializeToString(), candidate.SerializeToString())
    localize(reference, candidate, small_inputs(), 1e-3)
    assert (reference.SerializeToString(), candidate.SerializeToString()) == before


def test_a_missing_input_is_named() -> None:
    with pytest.raises(ValueError, match=r"lack \['x'\], which the reference model takes"):
        localize(small_model(), small_model(), {"image": np.zeros((2, 1, 8, 8), np.float32)}, 1e-3)


def test_nan_where_the_reference_is_finite_fails_whatever_the_mean() -> None:
    """A layer that overflows (here a weight of Inf) fails as a float output would, and the summary says why:
    its mean relative error, taken over finite elements only, may be under the tolerance."""
    weights = small_weights()
    weights["b2"][0] = np.inf
    found = localize(small_model(), small_model(weights), small_inputs(), 1e-3)
    assert found.first_failing is not None and found.first_failing.node == "conv2"
    assert found.first_nonfinite is found.first_failing
    assert found.summary() == (
        "first non-finite layer: conv2 (Conv) output 'conv2_out': 128 NaN/Inf where the reference is finite"
    )


def test_summary_names_the_first_failing_layer_and_unnamed_nodes_by_op() -> None:
    named = LayerError("conv2", "Conv", "conv2", 3.1e-3, True)
    unnamed = LayerError("", "Gemm", "fc1", 2.0e-4, False)
    assert (
        Localization((unnamed, named), named, 1e-3).summary()
        == "first layer beyond 0.001: conv2 (Conv) output 'conv2', mean relative error 0.0031"
    )
    assert (
        Localization((unnamed,), None, 1e-3).summary()
        == "no layer beyond 0.001 (worst: unnamed Gemm output 'fc1', 0.0002)"
    )


def mnist_fp16() -> tuple[onnx.ModelProto, onnx.ModelProto, dict[str, np.ndarray]]:
    """The mnist case's float32 model, its fp16 conversion (float32 I/O) and inputs at the max profile shape."""
    float16 = pytest.importorskip("onnxconverter_common.float16")
    reference = mnist.CASE.model()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "the float32 number ... will be truncated": tiny biases
        candidate = float16.convert_float_to_float16(reference, keep_io_types=True)
    inputs = mnist.CASE.make_inputs(mnist.CASE.profiles[0].shapes(ShapePoint.MAX), np.random.default_rng(0))
    return reference, candidate, inputs


def test_the_fp16_converter_keeps_the_float32_tensor_names() -> None:
    """Localization matches layers by tensor name: every node output of the float32 mnist model is there in
    its fp16 conversion (the converter renames only the Softmax output, to put the output Cast on the name)."""
    reference, candidate, _ = mnist_fp16()
    names = {tensor for node in candidate.graph.node for tensor in node.output}
    assert {tensor for node in reference.graph.node for tensor in node.output} <= names


def test_fp16_mnist_fails_first_at_the_first_conv_when_tight_and_nowhere_when_loose() -> None:
    """At 1e-5 the first Conv already fails (float16 input and weights round at ~5e-4); at 1e-2 no layer does.
    The layer is known by its node name, op and output tensor."""
    reference, candidate, inputs = mnist_fp16()
    tight = localize(reference, candidate, inputs, 1e-5)
    assert tight.first_failing is not None
    assert (tight.first_failing.op_type, tight.first_failing.tensor, tight.first_failing.node) == (
        "Conv",
        "conv1",
        "conv1",
    )
    assert [layer.tensor for layer in tight.layers][:3] == ["conv1", "relu1", "pool1"]
    loose = localize(reference, candidate, inputs, 1e-2)
    assert loose.first_failing is None
    assert all(0 < layer.mean_rel < 1e-2 for layer in loose.layers)
    assert "label" not in {layer.tensor for layer in loose.layers}  # int64: not compared


def qdq_pair() -> tuple[onnx.ModelProto, onnx.ModelProto]:
    """Conv -> Relu -> Neg, and its Q/DQ derivation as ONNX Runtime's quantizer writes it: the Relu folded into
    the uint8 range (zero point 0), the Conv's output named like the Relu's and quantized, Neg reading the
    dequantized tensor."""
    rng = np.random.default_rng(3)
    weight = numpy_helper.from_array(rng.standard_normal((2, 1, 3, 3)).astype(np.float32), "w")
    x = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 6, 6])]
    y = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 4, 4])]
    reference = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w"], ["conv"], name="conv"),
            helper.make_node("Relu", ["conv"], ["relu"], name="relu"),
            helper.make_node("Neg", ["relu"], ["y"], name="neg"),
        ],
        "reference",
        x,
        y,
        initializer=[weight],
    )
    quantization = [numpy_helper.from_array(np.float32(4.0 / 255), "scale"), numpy_helper.from_array(np.uint8(0), "zp")]
    candidate = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w"], ["relu"], name="conv"),
            helper.make_node("QuantizeLinear", ["relu", "scale", "zp"], ["relu_q"], name="relu_QuantizeLinear"),
            helper.make_node("DequantizeLinear", ["relu_q", "scale", "zp"], ["relu_dq"], name="relu_DequantizeLinear"),
            helper.make_node("Neg", ["relu_dq"], ["y"], name="neg"),
        ],
        "candidate",
        x,
        y,
        initializer=[weight, *quantization],
    )
    return model_of(reference), model_of(candidate)


def model_of(graph: onnx.GraphProto) -> onnx.ModelProto:
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_a_quantized_tensor_is_compared_after_its_dequantization() -> None:
    """Under the Relu's name the Q/DQ model holds the Conv's pre-quantization output, negatives included; the
    network sees it through Quantize/DequantizeLinear, which clamps them. That round trip is compared, so the
    Relu's error is the int8 rounding (under 1 %), not the missing clamp; the folded-away 'conv' tensor is not
    compared at all."""
    reference, candidate = qdq_pair()
    inputs = {"x": np.random.default_rng(4).uniform(-0.3, 0.3, (1, 1, 6, 6)).astype(np.float32)}
    found = localize(reference, candidate, inputs, 1e-2)
    assert [(layer.node, layer.tensor) for layer in found.layers] == [("relu", "relu"), ("neg", "y")]
    assert found.first_failing is None
    assert 0 < found.layers[0].mean_rel < 1e-2
    # The candidate's pre-quantization 'relu' is the reference's 'conv': comparing it would judge the clamp.
    (pre_quantization,) = ReferenceEvaluator(reference).run(["conv"], inputs)
    assert (pre_quantization < 0).mean() > 0.2


def chain_model(scale: float, amplify: float) -> onnx.ModelProto:
    """x -> Mul(scale) 'mul0' -> Mul(amplify) 'amp' -> Softmax 'softmax' -> y, float32, on (4, 16)."""
    graph = helper.make_graph(
        [
            helper.make_node("Mul", ["x", "a"], ["m"], name="mul0"),
            helper.make_node("Mul", ["m", "b"], ["logits"], name="amp"),
            helper.make_node("Softmax", ["logits"], ["y"], name="softmax", axis=1),
        ],
        "chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 16])],
        initializer=[
            numpy_helper.from_array(np.float32(scale), "a"),
            numpy_helper.from_array(np.float32(amplify), "b"),
        ],
    )
    return model_of(graph)


def chain_inputs() -> dict[str, np.ndarray]:
    return {"x": np.random.default_rng(5).uniform(-1, 1, (4, 16)).astype(np.float32)}


def test_the_summary_names_the_layer_where_the_error_jumps_most_then_the_first_beyond() -> None:
    """mul0 is just beyond the tolerance (its constant 0.15 % off), amp carries the same relative error on, and
    the Softmax over the amplified logits multiplies it: the Softmax is where the error jumps, mul0 the first beyond."""
    found = localize(chain_model(1.0, 5.0), chain_model(1.0015, 5.0), chain_inputs(), 1e-3)
    mul0, amp, softmax = found.layers
    assert found.first_failing is mul0 and found.largest_jump is softmax
    assert mul0.input_error == 0.0  # fed by a graph input and a weight
    assert softmax.input_error == amp.mean_rel and amp.input_error == mul0.mean_rel
    assert softmax.mean_rel > 2 * amp.mean_rel
    assert softmax.jump == pytest.approx(softmax.mean_rel / amp.mean_rel)
    assert found.summary() == (
        f"error jumps most at softmax (Softmax) output 'y': {amp.mean_rel:.3g} → {softmax.mean_rel:.3g}; "
        f"first layer beyond 0.001: mul0 (Mul) output 'm', mean relative error {mul0.mean_rel:.3g}"
    )


def test_a_jump_is_measured_against_the_tolerance_where_the_inputs_error_is_below_it() -> None:
    """mul0 two float32 ulps off (2.4e-7), amp 0.05 % off on top (5e-4: x2000 on its input, but under the 1e-3
    limit), the Softmax then a few times beyond the limit: growth under the tolerance is noise, so the floor makes
    the Softmax the jump, not amp's ratio of 2000."""
    reference = chain_model(1.0, 5.0)
    candidate = chain_model(float(np.nextafter(np.nextafter(np.float32(1), 2), 2)), 5.0 * 1.0005)
    found = localize(reference, candidate, chain_inputs(), 1e-3)
    mul0, amp, softmax = found.layers
    assert mul0.mean_rel < 1e-6 and amp.mean_rel / mul0.mean_rel > 1000 and amp.mean_rel < 1e-3
    assert amp.jump == pytest.approx(amp.mean_rel / 1e-3)
    assert found.first_failing is softmax and found.largest_jump is softmax
    assert softmax.jump == pytest.approx(softmax.mean_rel / 1e-3) and softmax.jump > 1
    assert found.summary() == (
        f"error jumps most at the first layer beyond 0.001: softmax (Softmax) output 'y': {amp.mean_rel:.3g} → "
        f"{softmax.mean_rel:.3g}"
    )


def test_the_zfnet_summary_names_the_jump_first_and_the_first_layer_beyond_second() -> None:
    conv = LayerError("conv1", "Conv", "conv1", 0.113, True, 0, 0.0, 1.13)
    pool = LayerError("pool5", "MaxPool", "pool5", 0.15, True, 0, 0.113, 1.33)
    softmax = LayerError("softmax", "Softmax", "prob", 0.93, True, 0, 0.15, 6.2)
    assert Localization((conv, pool, softmax), conv, 0.1, softmax).summary() == (
        "error jumps most at softmax (Softmax) output 'prob': 0.15 → 0.93; "
        "first layer beyond 0.1: conv1 (Conv) output 'conv1', mean relative error 0.113"
    )


def overflow_model() -> onnx.ModelProto:
    """x -> Mul(20) 'scale0' -> Exp 'exp0' -> Mul(1e-5) 'shrink0' -> y: finite in float32 for x <= 1, but exp(20 x)
    passes float16's 65504 wherever x > 0.555."""
    graph = helper.make_graph(
        [
            helper.make_node("Mul", ["x", "twenty"], ["s"], name="scale0"),
            helper.make_node("Exp", ["s"], ["e"], name="exp0"),
            helper.make_node("Mul", ["e", "small"], ["y"], name="shrink0"),
        ],
        "overflow",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 8])],
        initializer=[
            numpy_helper.from_array(np.float32(20.0), "twenty"),
            numpy_helper.from_array(np.float32(1e-5), "small"),
        ],
    )
    return model_of(graph)


def test_the_first_layer_to_overflow_at_fp16_is_named_with_its_count() -> None:
    """Metrics are over elements finite on both sides, so the Exp's mean relative error says nothing of its Infs;
    the non-finite count does, and the summary names the first layer that produces them."""
    from harness.case import Precision
    from harness.precision.convert import derived_model

    rng = np.random.default_rng(2)
    x = np.where(rng.random((4, 8)) < 0.4, rng.uniform(0.7, 0.9, (4, 8)), rng.uniform(-1, 0.4, (4, 8)))
    inputs = {"x": x.astype(np.float32)}
    overflowing = int((x > 0.6).sum())
    assert overflowing > 0
    reference = overflow_model()
    found = localize(reference, derived_model(reference, Precision.FP16), inputs, 1e-3)
    # (shrink0 may or may not inherit them: ONNX Runtime's CPU provider runs Exp and Mul on float32 behind casts.)
    assert [(layer.node, layer.nonfinite) for layer in found.layers][:2] == [("scale0", 0), ("exp0", overflowing)]
    assert found.first_nonfinite is not None and found.first_nonfinite.node == "exp0"
    assert found.layers[1].mean_rel < 1e-3  # the finite elements are fine
    assert (
        f"first non-finite layer: exp0 (Exp) output 'e': {overflowing} NaN/Inf where the reference is finite"
        in found.summary()
    )


def test_an_engine_failure_the_layer_by_layer_run_does_not_reproduce_is_put_on_the_engines_kernels() -> None:
    """The engine's outputs 1 % off while the same model run layer by layer is exact (a CPU's saturating int8
    kernels): no layer is to blame, and the summary says where the failure is instead."""
    model = chain_model(1.0, 3.0)
    inputs = chain_inputs()
    (expected,) = ReferenceEvaluator(model).run(None, inputs)
    engine = {"y": expected * np.float32(1.01)}
    found = localize(model, chain_model(1.0, 3.0), inputs, 1e-3, engine_outputs=engine, engine="onnxruntime")
    assert found.reproduction is not None and not found.reproduction.reproduced
    assert found.reproduction.localizer_mean_rel == 0.0
    assert found.reproduction.engine_mean_rel == pytest.approx(0.01, rel=1e-3)
    assert found.summary() == (
        "the failure lives in onnxruntime's optimized kernels, not in any layer of the model: the layer-by-layer "
        "run of the same model gives mean relative error 0 at the outputs, the engine 0.01 (output 'y'; the two "
        "differ by 0.0099)"
    )


def test_an_engine_failure_the_layer_by_layer_run_reproduces_is_localized_as_before() -> None:
    reference, candidate, inputs = chain_model(1.0, 5.0), chain_model(1.0015, 5.0), chain_inputs()
    (engine,) = ReferenceEvaluator(candidate).run(None, inputs)
    found = localize(reference, candidate, inputs, 1e-3, engine_outputs={"y": engine})
    assert found.reproduction is not None and found.reproduction.reproduced
    assert found.reproduction.engine_mean_rel > 1e-3 and found.reproduction.between_mean_rel < 1e-5
    assert found.summary().startswith("error jumps most at softmax (Softmax)")
    # Engine outputs that pass need no reproducing, whatever the layer-by-layer run says.
    (exact,) = ReferenceEvaluator(reference).run(None, inputs)
    passing = localize(reference, candidate, inputs, 1e-3, engine_outputs={"y": exact})
    assert passing.reproduction is not None and passing.reproduction.reproduced


def test_an_engine_failure_the_layer_by_layer_run_fails_differently_is_put_on_the_engines_kernels() -> None:
    """Both fail, but the layer-by-layer run's outputs are further from the engine's than the engine's are from
    the reference: its layers say nothing of where the engine breaks. Merely differing a little (each run's own
    rounding) is no such case."""
    reference, candidate, inputs = chain_model(1.0, 5.0), chain_model(1.0015, 5.0), chain_inputs()
    (expected,) = ReferenceEvaluator(reference).run(None, inputs)
    (ours,) = ReferenceEvaluator(candidate).run(None, inputs)
    elsewhere = expected - 2 * (ours - expected)  # twice our error, the other way: 3x ours from ours
    found = localize(reference, candidate, inputs, 1e-3, engine_outputs={"y": elsewhere})
    assert found.reproduction is not None and not found.reproduction.reproduced
    assert found.summary().startswith("the failure lives in ONNX Runtime's optimized kernels")
    assert "; layer by layer, error jumps most at softmax (Softmax)" in found.summary()
    close = ours * np.float32(1.0002)  # fails like ours, a rounding away from it
    found = localize(reference, candidate, inputs, 1e-3, engine_outputs={"y": close})
    assert found.reproduction is not None and found.reproduction.reproduced
