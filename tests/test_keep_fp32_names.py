"""Tests of harness/precision/names.py: the node names given to --keep-fp32, checked against the model."""

from __future__ import annotations

import onnx
import pytest
from onnx import TensorProto, helper

from cases import mnist
from harness.errors import CaseDefinitionError
from harness.precision.names import check_node_names


def named_model(*names: str) -> onnx.ModelProto:
    """A chain of Relu nodes with the given names; node i outputs tensor 't<i>'."""
    nodes = [
        helper.make_node("Relu", [f"t{index - 1}" if index else "x"], [f"t{index}"], name=name)
        for index, name in enumerate(names)
    ]
    graph = helper.make_graph(
        nodes,
        "chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info(f"t{len(names) - 1}", TensorProto.FLOAT, [1])],
    )
    return helper.make_model(graph)


LAYERS = ("conv1", "relu1", "conv2", "relu2", "fc1", "fc2", "softmax")


def test_node_names_of_the_model_pass() -> None:
    check_node_names(named_model(*LAYERS), ["conv2", "fc1"], case_name="small")
    check_node_names(named_model(*LAYERS), [], case_name="small")


def test_a_misspelt_name_gets_the_close_node_names() -> None:
    with pytest.raises(CaseDefinitionError) as raised:
        check_node_names(named_model(*LAYERS), ["conv_2"], case_name="small")
    assert str(raised.value) == (
        "case 'small': --keep-fp32: 'conv_2' is not a node name (close: 'conv2', 'conv1'); --keep-fp32 takes node "
        "names (NodeProto.name) of the case's float32 model, e.g. 'conv1', 'relu1', 'conv2', 'relu2', 'fc1'"
    )
    assert raised.value.case == "small"


def test_a_name_far_from_every_node_gets_the_first_node_names() -> None:
    with pytest.raises(CaseDefinitionError, match=r"'attention' is not a node name; --keep-fp32 takes node names "):
        check_node_names(named_model(*LAYERS), ["attention"], case_name="small")


def test_every_wrong_name_is_reported_at_once() -> None:
    with pytest.raises(CaseDefinitionError) as raised:
        check_node_names(named_model(*LAYERS), ["fc_1", "conv2", "pool"], case_name="small")
    message = str(raised.value)
    assert "'fc_1' is not a node name (close: 'fc1'); " in message
    assert "'pool' is not a node name;" in message
    assert "'conv2' is" not in message


def test_a_tensor_name_is_told_apart_from_a_node_name() -> None:
    """The likely mistake: passing a layer's output tensor (how localization names a layer) for its node."""
    with pytest.raises(CaseDefinitionError, match=r"'t2' is the output tensor of node 'conv2' \(Relu\), not a node"):
        check_node_names(named_model(*LAYERS), ["t2"], case_name="small")


def test_a_model_without_node_names_says_so_and_how_to_name_them() -> None:
    """A model built with helper.make_node and no names (mnist's, names stripped): nothing can be kept in float32
    until its nodes have names, and the message says so instead of listing names that do not exist."""
    model = mnist.CASE.model()
    for node in model.graph.node:
        node.name = ""
    with pytest.raises(CaseDefinitionError) as raised:
        check_node_names(model, ["conv2"], case_name="mnist")
    assert str(raised.value) == (
        "case 'mnist': --keep-fp32: 'conv2' is the output tensor of an unnamed node (Conv), not a node name; "
        "--keep-fp32 takes node names (NodeProto.name) of the case's float32 model, and none of its "
        f"{len(model.graph.node)} nodes has a name: name them in the case's onnx_model "
        "(onnx.helper.make_node(..., name=...))"
    )


def test_the_empty_name_of_unnamed_nodes_is_not_a_node_name() -> None:
    with pytest.raises(CaseDefinitionError, match=r"'' is not a node name"):
        check_node_names(named_model("", "relu"), [""], case_name="small")
