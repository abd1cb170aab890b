"""Tests of harness/precision/convert.py's failures: every one names the node to keep in float32."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from harness.case import Precision
from harness.precision import convert
from harness.precision.convert import ConversionError, derived_model


def weights_as_inputs_model() -> onnx.ModelProto:
    """Relu -> Add(w) at IR version 3, where every weight is also a graph input (DenseNet from the model zoo)."""
    graph = helper.make_graph(
        [
            helper.make_node("Relu", ["x"], ["r"], name="relu0"),
            helper.make_node("Add", ["r", "w"], ["y"], name="add0"),
        ],
        "old",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3]),
            helper.make_tensor_value_info("w", TensorProto.FLOAT, [3]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
        initializer=[numpy_helper.from_array(np.arange(3, dtype=np.float32), "w")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=3)


def test_a_type_error_onnx_reports_without_a_node_is_put_on_the_node_that_reads_the_tensor() -> None:
    """DenseNet's: the converter makes a weight float16 while the IR-3 model also declares it a float32 graph input;
    ONNX's message, "[TypeInferenceError] Inferred elem type differs from existing elem type: (10) vs (1)", names no
    node. The harness's names the original node reading it and the fix."""
    model = weights_as_inputs_model()
    converted = convert._float16(model, ())  # what derived_model converted before it took weights off the inputs
    with pytest.raises(onnx.shape_inference.InferenceError) as onnx_error:
        onnx.shape_inference.infer_shapes(converted, check_type=True, strict_mode=True)
    assert "node name" not in str(onnx_error.value) and "(10) vs (1)" in str(onnx_error.value)
    with pytest.raises(ConversionError) as error:
        convert._type_check(converted, Precision.FP16, model)
    message = str(error.value)
    assert message.startswith("the fp16 model does not type-check at node 'add0' (Add)")
    assert "(10) vs (1)" in message and message.endswith("(--keep-fp32 add0, or the case's keep_fp32)")


def test_weights_listed_as_inputs_are_converted_as_weights() -> None:
    """The cause itself is gone: the weight is taken off the graph inputs before the conversion, so the model
    converts; kept in float32, its node keeps its weight float32 too."""
    model = weights_as_inputs_model()
    converted = derived_model(model, Precision.FP16)
    assert [value.name for value in converted.graph.input] == ["x"]
    assert converted.graph.initializer[0].data_type == TensorProto.FLOAT16
    kept = derived_model(model, Precision.FP16, {"add0"})
    assert kept.graph.initializer[0].data_type == TensorProto.FLOAT
    assert [value.name for value in model.graph.input] == ["x", "w"]  # the caller's model is unchanged


def celu_chain(name: str) -> onnx.ModelProto:
    """Relu -> Celu -> Relu -> Relu at opset 17, whose Celu has no float16."""
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="relu0"),
        helper.make_node("Celu", ["a"], ["b"], name=name),
        helper.make_node("Relu", ["b"], ["c"], name="relu1"),
        helper.make_node("Relu", ["c"], ["y"], name="relu2"),
    ]
    graph = helper.make_graph(
        nodes,
        "celu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_an_op_without_a_float16_form_is_named_with_the_fix_and_the_fix_works() -> None:
    model = celu_chain("celu0")
    with pytest.raises(ConversionError) as error:
        derived_model(model, Precision.FP16)
    assert str(error.value).startswith("the fp16 model does not type-check at node 'celu0' (Celu): ")
    assert "--keep-fp32 celu0" in str(error.value)
    derived_model(model, Precision.FP16, {"celu0"})  # and keeping it converts


def test_the_failing_node_is_found_by_bisection_where_the_message_names_none() -> None:
    """The fallback for a message without a node: the shortest failing prefix of the nodes ends with it."""
    converted = convert._float16(celu_chain(""), ())
    celu = convert._failing_node(converted)
    assert celu is not None and celu.op_type == "Celu"
    assert convert._failing_node(convert._float16(celu_chain("celu0"), {"celu0"})) is None  # nothing fails
