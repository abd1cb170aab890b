"""The int8 recipe real models survive (issue 17): where Q/DQ goes, what is never quantized, what keep_fp32 and
old opsets do, bad calibration data refused, and one real architecture end to end."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from cases import ALL_CASES
from harness.case import Case, Precision, Profile, TensorSpec, Tolerance
from harness.compare import output_errors
from harness.errors import CaseDefinitionError
from harness.precision.derive import PrecisionOptions, derive
from harness.precision.proof import prove
from harness.precision.quantize import quantize_int8

CASES = {case.name: case for case in ALL_CASES}
QDQ = ("QuantizeLinear", "DequantizeLinear")


def dequantized(graph: onnx.GraphProto) -> set[str]:
    return {node.output[0] for node in graph.node if node.op_type == "DequantizeLinear"}


def int8_graph(case: Case, **options: object) -> onnx.GraphProto:
    derived = derive(case, Precision.INT8, dataclasses.replace(PrecisionOptions(), **options))  # type: ignore[arg-type]
    return onnx.load_from_string(derived.model_bytes).graph


@pytest.mark.parametrize("case_name", ["conv_add_relu", "mnist"])
def test_qdq_sits_on_the_inputs_of_conv_and_gemm_and_nowhere_else(case_name: str) -> None:
    graph = int8_graph(CASES[case_name])
    read_dq = dequantized(graph)
    computes = [node for node in graph.node if node.op_type in ("Conv", "Gemm")]
    assert computes
    for node in computes:  # the activation and the weight both come through a DequantizeLinear
        assert node.input[0] in read_dq and node.input[1] in read_dq, node.name
    others = [node.name for node in graph.node if node.op_type not in (*QDQ, "Conv", "Gemm")]
    assert [
        name for name in others if any(i in read_dq for i in next(n for n in graph.node if n.name == name).input)
    ] == []
    quantized = {node.input[0] for node in graph.node if node.op_type == "QuantizeLinear"}
    outputs = {value.name for value in graph.output}
    assert not outputs & (quantized | read_dq), "a graph output went through Q/DQ"


def test_softmax_is_never_quantized() -> None:
    """Softmax's output at 1/127 made every probability under 0.004 a 0 (errors 0.93-1.0 on real classifiers)."""
    graph = int8_graph(CASES["mnist"])
    (softmax,) = [node for node in graph.node if node.op_type == "Softmax"]
    quantized = {node.input[0] for node in graph.node if node.op_type == "QuantizeLinear"}
    assert softmax.input[0] not in dequantized(graph) and softmax.output[0] not in quantized


def small_model(opset: int, *, dropout: bool = True) -> onnx.ModelProto:
    """x -> conv1 -> Dropout -> Relu -> conv2 -> y: two quantizable layers and an inference no-op between them."""
    rng = np.random.default_rng(3)
    weights = {
        "w1": (rng.standard_normal((4, 3, 3, 3)) * 0.3).astype(np.float32),
        "w2": (rng.standard_normal((2, 4, 1, 1)) * 0.5).astype(np.float32),
    }
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1])]
    if dropout:
        nodes.append(
            helper.make_node("Dropout", ["c1"], ["d1"], name="drop", ratio=0.5)
            if opset < 12
            else helper.make_node("Dropout", ["c1"], ["d1"], name="drop")
        )
    nodes += [
        helper.make_node("Relu", ["d1" if dropout else "c1"], ["r1"], name="relu"),
        helper.make_node("Conv", ["r1", "w2"], ["y"], name="conv2"),
    ]
    graph = helper.make_graph(
        nodes,
        "small",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 8, 8])],
        initializer=[numpy_helper.from_array(value, name) for name, value in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 4 if opset < 13 else 8
    return model


def small_case(opset: int, **fields: object) -> Case:
    def run(feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        session = ort.InferenceSession(small_model(opset).SerializeToString(), providers=["CPUExecutionProvider"])
        return {"y": session.run(None, dict(feed))[0].astype(np.float64)}

    shape = {"x": (1, 3, 8, 8)}
    return Case(
        name=f"small{opset}",
        inputs=(TensorSpec("x", "float32", (1, 3, 8, 8)),),
        outputs=(TensorSpec("y", "float32", (1, 2, 8, 8)),),
        profiles=(Profile(shape, shape, shape),),
        onnx_model=lambda: small_model(opset),
        reference=run,
        generate_inputs=lambda shapes, rng: {"x": rng.standard_normal(shapes["x"]).astype(np.float32)},
        **fields,  # type: ignore[arg-type]
    )


def test_dropout_is_removed_and_no_longer_fails_the_proof() -> None:
    derived = derive(small_case(13), Precision.INT8, PrecisionOptions())
    graph = onnx.load_from_string(derived.model_bytes).graph
    assert "Dropout" not in {node.op_type for node in graph.node}
    proof = prove(derived, None)
    assert proof.problems == (), proof.problems
    assert "conv1 Int8" in proof.summary and "conv2 Int8" in proof.summary


def test_keep_fp32_excludes_a_node_from_int8_and_is_recorded() -> None:
    derived = derive(small_case(13, keep_fp32=("conv2",)), Precision.INT8, PrecisionOptions())
    graph = onnx.load_from_string(derived.model_bytes).graph
    conv2 = next(node for node in graph.node if node.name == "conv2")
    assert not set(conv2.input) & dequantized(graph), "the kept conv2 still reads dequantized tensors"
    assert next(node for node in graph.node if node.name == "conv1").input[0] in dequantized(graph)
    assert derived.to_json()["kept_fp32"] == ["conv2"]
    assert prove(derived, None).problems == ()


def test_keep_fp32_on_the_command_line_excludes_mnists_fc2() -> None:
    graph = int8_graph(CASES["mnist"], keep_fp32=("fc2",))
    fc2 = next(node for node in graph.node if node.name == "fc2")
    assert not set(fc2.input) & dequantized(graph)


def test_a_model_below_opset_13_is_upgraded_quantized_per_channel_and_the_conversion_recorded() -> None:
    """'Unrecognized attribute: axis for operator DequantizeLinear' below opset 13: the upgrade fixes it."""
    case = small_case(9)
    derived = derive(case, Precision.INT8, PrecisionOptions())
    assert derived.to_json()["opset"] == "converted from opset 9 to 13"
    model = onnx.load_from_string(derived.model_bytes)
    onnx.checker.check_model(model)
    axes = [
        a.i
        for node in model.graph.node
        if node.op_type == "DequantizeLinear"
        for a in node.attribute
        if a.name == "axis"
    ]
    assert axes, "no per-channel weight scale"
    feed = case.make_inputs(case.profiles[0].opt, np.random.default_rng(0))
    (y,) = ort.InferenceSession(derived.model_bytes, providers=["CPUExecutionProvider"]).run(None, feed)
    expected = case.reference_outputs(feed)["y"]
    assert output_errors("y", y, expected, Tolerance(mean_rel=0.1)).mean_rel < 0.05
    assert prove(derived, None).problems == ()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_calibration_data_with_nan_or_inf_is_refused_naming_case_input_sample_and_fix(bad: float) -> None:
    """ONNX Runtime's own failure was a bare 'AssertionError: scale issue'."""
    case = CASES["conv_add_relu"]
    data = [case.make_inputs(case.profiles[0].opt, np.random.default_rng(seed)) for seed in range(3)]
    data[1]["residual"].flat[5] = bad
    with pytest.raises(CaseDefinitionError) as raised:
        quantize_int8(case.model(), data, "max", case_name="conv_add_relu")
    message = str(raised.value)
    kind = "NaN" if np.isnan(bad) else "Inf"
    assert "case 'conv_add_relu': calibration sample 1, input 'residual': holds " + kind in message
    assert "give finite values (fix the input's generator or file)" in message


def test_a_real_architecture_survives_int8() -> None:
    """SqueezeNet (opset 9, Dropout, Concat, Softmax) with seeded weights: proven int8, error well under 0.1."""
    from benchmarks.real_models import case as real_case

    squeezenet = real_case("squeezenet")
    derived = derive(squeezenet, Precision.INT8, PrecisionOptions())
    assert derived.to_json()["opset"] == "converted from opset 9 to 13"
    assert prove(derived, None).problems == ()
    feed = squeezenet.make_inputs(squeezenet.profiles[0].opt, np.random.default_rng(100))
    options = ort.SessionOptions()
    options.add_session_config_entry("session.disable_quant_qdq", "1")  # the same numbers on every CPU
    (actual,) = ort.InferenceSession(derived.model_bytes, options, providers=["CPUExecutionProvider"]).run(None, feed)
    expected = squeezenet.reference_outputs(feed)[squeezenet.outputs[0].name]
    name = squeezenet.outputs[0].name
    assert output_errors(name, actual, expected, Tolerance(mean_rel=0.1)).mean_rel < 0.05


def test_the_proof_never_holds_a_dropout_to_int8() -> None:
    """A Q/DQ model made elsewhere may keep its Dropout behind a DequantizeLinear: a copy, not an int8 layer."""
    from harness.precision.proof import quantized_nodes

    scale, zero = numpy_helper.from_array(np.float32(0.1), "s"), numpy_helper.from_array(np.int8(0), "z")
    graph = helper.make_graph(
        [
            helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], name="q"),
            helper.make_node("DequantizeLinear", ["q", "s", "z"], ["dq"], name="dq"),
            helper.make_node("Dropout", ["dq"], ["y"], name="drop"),
        ],
        "dropout",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
        initializer=[scale, zero],
    )
    assert quantized_nodes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])) == set()
