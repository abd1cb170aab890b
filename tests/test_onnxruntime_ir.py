"""A model's IR version against what the installed ONNX Runtime reads (harness/precision/opset.py,
within_onnxruntime_ir): lowered where only the stamp is newer, kept where the model's opsets need the newer IR."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper

from harness.precision import opset
from harness.precision.localize import run_on_onnxruntime


def relu_model(ir_version: int, opset_version: int = 17) -> onnx.ModelProto:
    tensors = [helper.make_tensor_value_info(name, TensorProto.FLOAT, [2]) for name in ("x", "y")]
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "relu", tensors[:1], tensors[1:])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset_version)])
    model.ir_version = ir_version
    return model


def test_onnxruntime_is_asked_which_ir_it_reads() -> None:
    limit = opset.onnxruntime_ir_limit(onnx.IR_VERSION + 1)
    assert limit is not None and limit <= onnx.IR_VERSION  # no onnxruntime reads an IR its onnx does not know
    assert opset.onnxruntime_ir_limit(limit) is None
    with pytest.raises(Exception, match=f"max supported IR version: {limit}"):  # what the harness spares its users
        onnxruntime.InferenceSession(relu_model(limit + 1).SerializeToString(), providers=["CPUExecutionProvider"])


def test_a_stamp_newer_than_onnxruntime_reads_is_lowered_to_what_it_reads() -> None:
    newer = relu_model(onnx.IR_VERSION + 1)
    fitted = opset.within_onnxruntime_ir(newer)
    assert fitted.ir_version == opset.onnxruntime_ir_limit(onnx.IR_VERSION + 1)
    assert newer.ir_version == onnx.IR_VERSION + 1  # the caller's model is not changed
    ran = run_on_onnxruntime(newer, {"x": np.array([-1.0, 2.0], np.float32)}, ["y"])
    np.testing.assert_array_equal(ran["y"], [0.0, 2.0])


def test_a_model_onnxruntime_reads_is_returned_as_it_is() -> None:
    model = relu_model(8)
    assert opset.within_onnxruntime_ir(model) is model


def test_a_model_whose_opsets_need_the_newer_ir_is_left_for_onnxruntime_to_refuse(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Opset 17 needs IR 8: an onnxruntime that read only IR 7 could not run it at any IR it reads."""
    monkeypatch.setattr(opset, "onnxruntime_ir_limit", lambda ir_version: 7)
    model = relu_model(onnx.IR_VERSION + 1)
    assert opset.within_onnxruntime_ir(model) is model
