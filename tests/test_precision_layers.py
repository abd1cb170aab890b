"""harness/precision/layers.py on engine inspector JSON of the real shape, without any TensorRT."""

from __future__ import annotations

import json

import pytest

from harness.precision.layers import LayerPrecision, datatype, layer_precisions, precision_problems, summary


def _tensor(name: str, dims: list[int], fmt: str) -> dict[str, object]:
    return {"Name": name, "Location": "Device", "Dimensions": dims, "Format/Datatype": fmt}


# A real-shaped report written from the ground truth, not copied from it:
# - the layers "Reformatting CopyNode ...", "Conv_0 + Relu_1", "MaxPool_2", the NoOp reformat and the last
#   Reformat follow NVIDIA/TensorRT tools/experimental/trt-engine-explorer/examples/pytorch/resnet/A100/fp16/
#   resnet.onnx.engine.graph.json (keys, LayerType, ParameterType, Weights, "Format/Datatype" strings, Bindings);
# - the Int8 convolution, with "Thirty-two wide channel vectorized row major Int8 format." and Weights Int8,
#   follows the kDETAILED getLayerInformation example of TensorRT's developer guide (Engine Inspector);
# - the bare "Half" / "Float" types are the "kgen formats" trex/activations.py knows (Myelin layers);
# - "N/A due to dynamic shapes" is what TensorRT prints for a format that depends on unset input shapes.
REPORT = {
    "Layers": [
        {
            "Name": "Reformatting CopyNode for Input Tensor 0 to Conv_0 + Relu_1",
            "LayerType": "Reformat",
            "Inputs": [_tensor("input.1", [32, 3, 224, 224], "Row major linear FP32")],
            "Outputs": [
                _tensor(
                    "Reformatted Input Tensor 0 to Conv_0 + Relu_1",
                    [32, 3, 224, 224],
                    "Channel major FP16 format where channel % 4 == 0",
                )
            ],
            "ParameterType": "Reformat",
            "Origin": "REFORMAT",
            "TacticValue": "0x0000000000000000",
        },
        {
            "Name": "Conv_0 + Relu_1",
            "LayerType": "CaskConvolution",
            "Inputs": [
                _tensor(
                    "Reformatted Input Tensor 0 to Conv_0 + Relu_1",
                    [32, 3, 224, 224],
                    "Channel major FP16 format where channel % 4 == 0",
                )
            ],
            "Outputs": [
                _tensor("onnx::MaxPool_125", [32, 64, 112, 112], "Channel major FP16 format where channel % 8 == 0")
            ],
            "ParameterType": "Convolution",
            "Weights": {"Type": "Half", "Count": 9408},
            "Bias": {"Type": "Half", "Count": 64},
            "TacticName": "sm80_xmma_fprop_implicit_gemm_f16f16_f16f16_f16_nhwckrsc_nhwc",
            "TacticValue": "0xe2222883a6602489",
        },
        {
            "Name": "MaxPool_2",
            "LayerType": "CudaPooling",
            "Inputs": [
                _tensor("onnx::MaxPool_125", [32, 64, 112, 112], "Channel major FP16 format where channel % 8 == 0")
            ],
            "Outputs": [_tensor("input.8", [32, 64, 56, 56], "Channel major FP16 format where channel % 8 == 0")],
            "ParameterType": "Pooling",
            "TacticValue": "0xfffffffffffffffe",
        },
        {
            "Name": "Reformatting CopyNode for Input Tensor 0 to fc",
            "LayerType": "NoOp",
            "Inputs": [_tensor("input.8", [32, 64, 56, 56], "Channel major FP16 format where channel % 8 == 0")],
            "Outputs": [_tensor("Reformatted Input Tensor 0 to fc", [32, 64, 56, 56], "Row major linear FP16 format")],
            "TacticValue": "0x0000000000000000",
        },
        {
            "Name": "node_of_gpu_0/res4_0_branch2a_1 + node_of_gpu_0/res4_0_branch2a_bn_2",
            "LayerType": "CaskConvolution",
            "Inputs": [
                _tensor(
                    "gpu_0/res3_3_branch2c_bn_3",
                    [16, 512, 28, 28],
                    "Thirty-two wide channel vectorized row major Int8 format.",
                )
            ],
            "Outputs": [_tensor("gpu_0/res4_0_branch2a_bn_2", [16, 256, 28, 28], "Row major linear FP32")],
            "ParameterType": "Convolution",
            "Weights": {"Type": "Int8", "Count": 131072},
            "Bias": {"Type": "Float", "Count": 256},
        },
        {
            "Name": "__myl_MulAdd_myl0_1",
            "LayerType": "kgen",
            "Inputs": [{"Name": "a", "Format/Datatype": "Half"}],
            "Outputs": [{"Name": "b", "Format/Datatype": "Float"}],
            "Metadata": "[ONNX Layer: /head/Mul]\x1e[ONNX Layer: /head/Add]",
        },
        {
            "Name": "TopK_9",
            "LayerType": "TopK",
            "Inputs": [_tensor("scores", [32, 1000], "Row major linear FP16 format")],
            "Outputs": [_tensor("indices", [32, 5], "Row major linear Int32")],
        },
        {
            "Name": "Conv_dynamic",
            "LayerType": "CaskConvolution",
            "Inputs": [_tensor("x", [-1, 8, -1, -1], "N/A due to dynamic shapes")],
            "Outputs": [_tensor("y", [-1, 16, -1, -1], "N/A due to dynamic shapes")],
            "Weights": {"Type": "Half", "Count": 1152},
        },
        {
            "Name": "Reformatting CopyNode for Output Tensor 0 to fc",
            "LayerType": "Reformat",
            "Inputs": [_tensor("fc_out", [32, 1000], "Row major linear FP16 format")],
            "Outputs": [_tensor("191", [32, 1000], "Row major linear FP32")],
            "ParameterType": "Reformat",
        },
    ],
    "Bindings": ["input.1", "191"],
}


def test_the_real_shaped_report_gives_each_layer_its_compute_precision() -> None:
    layers = layer_precisions(json.dumps(REPORT))
    assert [(layer.layer_type, layer.precision, layer.converts) for layer in layers] == [
        ("Reformat", "Half", True),
        ("CaskConvolution", "Half", False),
        ("CudaPooling", "Half", False),
        ("NoOp", "Half", True),
        ("CaskConvolution", "Int8", False),  # reads Int8, dequantizes its output: an int8 kernel
        ("kgen", "Float", False),
        ("TopK", "Half", False),  # indices out: the comparison ran on the fp16 scores
        ("CaskConvolution", "Half", False),  # format not shown at dynamic shapes: the weights' type
        ("Reformat", "Float", True),
    ]
    assert layers[1] == LayerPrecision("Conv_0 + Relu_1", "CaskConvolution", "Half")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Row major linear FP32", "Float"),
        ("Channel major FP16 format where channel % 16 == 0", "Half"),
        ("Row major linear BFloat16 format", "BFloat16"),
        ("Channel major BFloat16 format where channel % 8 == 0", "BFloat16"),
        ("Row major Int8 format", "Int8"),
        ("Channel major INT8 format where channel % 16 == 0", "Int8"),
        ("Row major linear Int32", "Int32"),
        ("Row major linear Int64 format", "Int64"),
        ("Row major linear BOOL", "Bool"),
        ("Row major linear FP8 format", "FP8"),
        ("Half", "Half"),
        ("N/A due to dynamic shapes", "Unknown"),
        ("Unknown format", "Unknown"),
    ],
)
def test_format_strings_name_their_type(text: str, expected: str) -> None:
    assert datatype(text) == expected


def test_an_engine_built_without_detailed_verbosity_has_layers_of_unknown_precision() -> None:
    layers = layer_precisions(json.dumps({"Layers": ["conv1 + relu1", "fc1"], "Bindings": ["x", "y"]}))
    assert layers == (
        LayerPrecision("conv1 + relu1", "Unknown", "Unknown"),
        LayerPrecision("fc1", "Unknown", "Unknown"),
    )
    (problem,) = precision_problems(layers, "Half")
    assert "2 layer(s) is not shown (conv1 + relu1, fc1)" in problem and "ProfilingVerbosity.DETAILED" in problem
    assert precision_problems((), "Half") == [
        "the engine inspector listed no layers: build with ProfilingVerbosity.DETAILED"
    ]


@pytest.mark.parametrize("text", ["not json", "[]", '{"Bindings": []}', '{"Layers": [3]}'])
def test_text_that_is_not_an_inspector_report_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="engine inspector"):
        layer_precisions(text)


def test_problems_are_float_layers_leaving_out_conversions_indices_and_kept_nodes() -> None:
    layers = (
        LayerPrecision("cast_in", "Cast", "Float"),
        LayerPrecision("conv1 + relu1", "CaskConvolution", "Half"),
        LayerPrecision("pool1", "CudaPooling", "Float"),
        LayerPrecision("shape_of_x", "Shape", "Int64"),
        LayerPrecision("fc1", "MatrixMultiply", "Float"),
        LayerPrecision("Reformatting CopyNode for Output Tensor 0 to fc1", "Reformat", "Float"),
    )
    assert precision_problems(layers, "Half") == [
        "layer 'pool1' (CudaPooling) computes in Float, not Half",
        "layer 'fc1' (MatrixMultiply) computes in Float, not Half",
    ]
    assert precision_problems(layers, "Half", kept=("fc1", "pool1")) == []
    assert summary(layers, kept=("fc1",)) == (
        "cast_in Float (cast), conv1 + relu1 Half, pool1 Float, shape_of_x Int64, fc1 Float (kept), "
        "Reformatting CopyNode for Output Tensor 0 to fc1 Float (reformat)"
    )
    with pytest.raises(ValueError, match="'fp16' is not one of Half, BFloat16, Int8"):
        precision_problems(layers, "fp16")
