"""Small user models and ONNX test-layout folders for the spec tests, made with onnx.helper."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def linear_model(
    path: Path,
    *,
    input_name: str = "pixels",
    output_name: str = "logits",
    batch: str | int | None = "batch",
    width: int = 16,
    classes: int = 4,
    layers: int = 1,
) -> Path:
    """`layers` x (MatMul, Add) with named nodes, weights from a fixed seed; `batch` a named, fixed or unnamed dim."""
    rng = np.random.default_rng(7)
    nodes, weights, previous = [], [], input_name
    for layer in range(layers):
        out_width = classes if layer == layers - 1 else width
        in_width = width
        weights += [
            numpy_helper.from_array(rng.uniform(0.5, 1.5, (in_width, out_width)).astype(np.float32), f"w{layer}"),
            numpy_helper.from_array(rng.uniform(0.5, 1.5, out_width).astype(np.float32), f"b{layer}"),
        ]
        last = layer == layers - 1
        nodes += [
            helper.make_node("MatMul", [previous, f"w{layer}"], [f"m{layer}"], name=f"matmul{layer}"),
            helper.make_node(
                "Add", [f"m{layer}", f"b{layer}"], [output_name if last else f"a{layer}"], name=f"add{layer}"
            ),
        ]
        previous = f"a{layer}"
    first = batch if batch is not None else None
    graph = helper.make_graph(
        nodes,
        "linear",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [first, width])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, [first, classes])],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def run_model(path: Path, inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return [np.asarray(output) for output in session.run(None, dict(inputs))]


def onnx_test_layout(folder: Path, batches: Sequence[int] = (2, 2), *, corrupt_output: bool = False) -> Path:
    """ONNX's test layout: folder/model.onnx and test_data_set_N/{input_0,output_0}.pb, outputs from ONNX Runtime."""
    folder.mkdir(parents=True, exist_ok=True)
    model = linear_model(folder / "model.onnx", input_name="x", output_name="y")
    rng = np.random.default_rng(3)
    for index, batch in enumerate(batches):
        data = folder / f"test_data_set_{index}"
        data.mkdir()
        x = rng.uniform(0, 1, (batch, 16)).astype(np.float32)
        (y,) = run_model(model, {"x": x})
        if corrupt_output:
            y = y + 1.0
        (data / "input_0.pb").write_bytes(numpy_helper.from_array(x, "x").SerializeToString())
        (data / "output_0.pb").write_bytes(numpy_helper.from_array(y, "y").SerializeToString())
    return folder
