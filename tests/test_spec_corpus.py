"""Models as ONNX's own backend test data has them: IR version 3 (weights listed as graph inputs), opset 6, external
data files, and the inputs, outputs and operators the harness refuses with a reason (strings, sequences, training
operators, empty data, shape tensors, operators a backend lacks). Loading, then whole pytest sessions (pytester)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from harness.case import ReferenceKind
from harness.spec import SpecError, load_spec
from harness.spec import model as spec_model
from tests.spec_support import linear_model, run_model

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(onnx.__file__).resolve().parent / "backend" / "test" / "data"
FAST = ("--latency-budget", "0.02", "-p", "no:cacheprovider", "-p", "no:randomly", "--results", "results.json")
HAS_RTX = importlib.util.find_spec("tensorrt_rtx") is not None


def corpus_folder(name: str, into: Path) -> Path:
    """A copy of one of ONNX's backend test folders (section/name), so that a test may change it."""
    return Path(shutil.copytree(CORPUS / name, into / Path(name).name))


def spec_error(path: Path) -> str:
    with pytest.raises(SpecError) as error:
        load_spec(path)
    return str(error.value)


def recorded(pytester: pytest.Pytester) -> dict[str, dict[str, object]]:
    document = json.loads((pytester.path / "results.json").read_text())
    return {test["id"]: test for test in document["tests"]}


def gemm_opset6(path: Path) -> Path:
    """The shape of pytorch-converted/test_Linear: IR 3, opset 6, Gemm with `broadcast`, weights also graph inputs."""
    rng = np.random.default_rng(5)
    weights = [
        numpy_helper.from_array(rng.uniform(-1, 1, (4, 8)).astype(np.float32), "w"),
        numpy_helper.from_array(rng.uniform(-1, 1, 4).astype(np.float32), "b"),
    ]
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w", "b"], ["y"], broadcast=1, transB=1)],
        "linear6",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8]),
            helper.make_tensor_value_info("w", TensorProto.FLOAT, [4, 8]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, [4]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 6)])
    model.ir_version = 3
    onnx.save(model, path)
    return path


# ---------------------------------------------------------------------------------------------------
# Any IR version, old opsets


def test_ir3_weights_listed_as_inputs_are_weights_in_the_case_and_its_model(tmp_path: Path) -> None:
    folder = corpus_folder("pytorch-converted/test_Linear", tmp_path)
    original = onnx.load(folder / "model.onnx")
    assert original.ir_version == 3 and len(original.graph.input) == 3  # the input and both weights
    (case,) = load_spec(folder)
    assert [tensor.name for tensor in case.inputs] == ["0"]  # only the real input: no generator asked for weights
    model = case.model()
    assert [value.name for value in model.graph.input] == ["0"] and model.ir_version >= 4
    assert {tensor.name for tensor in model.graph.initializer} == {"1", "2"}  # the weights stay, as weights


def test_an_opset_6_model_gets_a_reference_upgraded_for_onnx_runtime_and_says_so(tmp_path: Path) -> None:
    gemm_opset6(tmp_path / "linear6.onnx")
    (tmp_path / "models.toml").write_text('[[case]]\nmodel = "linear6.onnx"\nprecisions = ["fp32"]\n')
    (case,) = load_spec(tmp_path / "models.toml")
    assert case.reference_kind is ReferenceKind.ONNXRUNTIME_FP32
    assert str(case.reference.opset_conversion) == "converted from opset 6 to 7"  # type: ignore[attr-defined]
    x = np.random.default_rng(0).uniform(-1, 1, (2, 8)).astype(np.float32)
    model = onnx.load(tmp_path / "linear6.onnx")
    weights = {tensor.name: numpy_helper.to_array(tensor) for tensor in model.graph.initializer}
    expected = x.astype(np.float64) @ weights["w"].T.astype(np.float64) + weights["b"]
    np.testing.assert_allclose(case.reference_outputs({"x": x})["y"], expected, rtol=1e-5)


def test_a_model_the_converter_cannot_lift_is_refused_naming_model_opsets_and_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from onnx import version_converter

    def no_adapter(model: onnx.ModelProto, target: int) -> onnx.ModelProto:
        raise RuntimeError("No Adapter For Gemm from opset 6 to 7")

    monkeypatch.setattr(version_converter, "convert_version", no_adapter)
    model = gemm_opset6(tmp_path / "linear6.onnx")
    (tmp_path / "models.toml").write_text('[[case]]\nmodel = "linear6.onnx"\n')
    message = spec_error(tmp_path / "models.toml")
    assert f"case[0] ('linear6').model: {model}: the model is at opset 6, ONNX Runtime" in message
    assert "needs opset 7 or above" in message and "No Adapter For Gemm" in message
    assert "export the model again at opset 7 or newer" in message


def test_an_opset_6_corpus_model_runs_against_its_stored_outputs_and_the_conversion_is_shown(
    pytester: pytest.Pytester,
) -> None:
    corpus_folder("pytorch-converted/test_Linear", pytester.path)
    result = pytester.runpytest(
        "--harness-spec", "test_Linear", "--precision", "fp32", "-k", "build or accuracy", "-v", *FAST
    )
    result.assert_outcomes(passed=1 + 1)  # the build, then the one point of its data set's shapes (min = opt = max)
    result.stdout.fnmatch_lines(["opset: test_Linear converted from opset 6 to 7 (fp32 on ort)"])
    tests = recorded(pytester)
    build = tests["test_build[test_Linear-fp32-build-ort]"]
    assert build["derivation"]["opset"] == "converted from opset 6 to 7"  # type: ignore[index]
    accuracy = tests["test_accuracy[test_Linear-fp32-opt-ort]"]
    assert accuracy["compared_with"] == "stored outputs" and accuracy["verdict"] == "pass"
    assert accuracy["derivation"]["opset"] == "converted from opset 6 to 7"  # type: ignore[index]


def test_prelu_slopes_stay_per_channel_across_the_opset_7_change(pytester: pytest.Pytester) -> None:
    """onnx.version_converter keeps a [C] slope that opset 6 applied per channel; from 7 it would broadcast from
    the last axis (ONNX Runtime refuses it). The stored outputs, made at opset 6, say what is right."""
    corpus_folder("pytorch-converted/test_PReLU_2d_multiparam", pytester.path)
    result = pytester.runpytest(
        "--harness-spec", "test_PReLU_2d_multiparam", "--precision", "fp32", "-k", "accuracy", *FAST
    )
    result.assert_outcomes(passed=1)


def test_a_point_whose_model_cannot_be_converted_is_skipped_with_the_reason(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    from onnx import version_converter

    def no_adapter(model: onnx.ModelProto, target: int) -> onnx.ModelProto:
        raise RuntimeError("No Adapter For Gemm")

    monkeypatch.setattr(version_converter, "convert_version", no_adapter)
    corpus_folder("pytorch-converted/test_Linear", pytester.path)
    result = pytester.runpytest("--harness-spec", "test_Linear", "--precision", "fp32", "-k", "build", *FAST)
    result.assert_outcomes(skipped=1)  # a refusal with its reason, not a failure or a traceback
    message = str(recorded(pytester)["test_build[test_Linear-fp32-build-ort]"]["message"])
    assert "onnxruntime cannot run test_Linear at fp32: case 'test_Linear': the model is at opset 6" in message
    assert "needs opset 7 or above" in message and "export the model again at opset 7" in message


# ---------------------------------------------------------------------------------------------------
# External data


def external_data_model(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = linear_model(folder / "model.onnx", batch=2, width=64, classes=32)
    model = onnx.load(path)
    onnx.save(
        model, path, save_as_external_data=True, all_tensors_to_one_file=True, location="weights.bin", size_threshold=0
    )
    assert (folder / "weights.bin").stat().st_size > 64 * 32 * 4
    return path


def test_an_external_data_model_loads_from_its_own_folder_whatever_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = external_data_model(tmp_path / "model")
    (tmp_path / "model" / "models.toml").write_text(
        '[[case]]\nmodel = "model.onnx"\nprecisions = ["fp32"]\n[case.inputs.pixels]\nuniform = [0.0, 1.0]\n'
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # where ONNX Runtime would look for weights.bin, were the model not embedded
    (case,) = load_spec(tmp_path / "model" / "models.toml")
    model = case.model()
    assert not any(tensor.external_data for tensor in model.graph.initializer)  # the data is in the bytes
    x = np.random.default_rng(1).uniform(0, 1, (2, 64)).astype(np.float32)
    monkeypatch.chdir(tmp_path / "model")
    (expected,) = run_model(path, {"pixels": x})
    monkeypatch.chdir(elsewhere)
    np.testing.assert_allclose(case.reference_outputs({"pixels": x})["logits"], expected, rtol=1e-6)


def test_an_external_data_model_runs_in_a_session_started_elsewhere(pytester: pytest.Pytester) -> None:
    external_data_model(pytester.path / "models" / "net")
    (pytester.path / "models" / "net" / "net.toml").write_text(
        '[[case]]\nname = "net"\nmodel = "model.onnx"\nprecisions = ["fp32", "fp16"]\n'
        "[case.inputs.pixels]\nuniform = [0.0, 1.0]\n"
    )
    result = pytester.runpytest("--harness-spec", "models/net/net.toml", "-k", "build or accuracy", *FAST)
    result.assert_outcomes(
        passed=2 + 1, skipped=1
    )  # builds, fp16 accuracy at its one point; fp32 accuracy tautological


def test_a_missing_external_data_file_is_a_spec_error_naming_it(tmp_path: Path) -> None:
    path = external_data_model(tmp_path / "model")
    (tmp_path / "model" / "weights.bin").unlink()
    (tmp_path / "model" / "models.toml").write_text('[[case]]\nmodel = "model.onnx"\n')
    message = spec_error(tmp_path / "model" / "models.toml")
    assert f"{path} keeps tensor 'w0' in the external data file {tmp_path / 'model' / 'weights.bin'}" in message
    assert "which does not exist; copy the data file beside the model" in message


def test_a_model_over_2_gb_with_its_external_data_is_refused_up_front(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = external_data_model(tmp_path / "model")
    monkeypatch.setattr(spec_model, "PROTOBUF_LIMIT", 1024)  # 2 GB of test data would be a slow test
    (tmp_path / "model" / "models.toml").write_text('[[case]]\nmodel = "model.onnx"\n')
    message = spec_error(tmp_path / "model" / "models.toml")
    assert f"{path} with its external data is" in message
    assert "cannot reach 2 GB: models over 2 GB are not supported yet" in message


# ---------------------------------------------------------------------------------------------------
# Refused up front, with the reason


def test_string_inputs_are_refused_naming_the_model_and_the_dtype(tmp_path: Path) -> None:
    folder = corpus_folder("simple/test_strnorm_model_monday_casesensintive_lower", tmp_path)
    message = spec_error(folder)
    assert f"{folder / 'model.onnx'}: input 'x' is a string tensor" in message
    assert "compares numeric tensors only" in message


def test_a_sequence_output_is_refused_naming_it(tmp_path: Path) -> None:
    graph = helper.make_graph(
        [helper.make_node("SequenceConstruct", ["x"], ["seq"])],
        "seq",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_sequence_value_info("seq", TensorProto.FLOAT, [2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, tmp_path / "seq.onnx")
    (tmp_path / "models.toml").write_text('[[case]]\nmodel = "seq.onnx"\n')
    assert "seq.onnx: output 'seq' is a sequence (not a tensor)" in spec_error(tmp_path / "models.toml")


def test_a_training_only_operator_is_refused_naming_its_domain(tmp_path: Path) -> None:
    folder = corpus_folder("simple/test_gradient_of_add", tmp_path)
    message = spec_error(folder)
    assert "uses Gradient (ai.onnx.preview.training): operators of a training-only domain" in message
    assert "export the inference graph" in message


def test_empty_stored_inputs_are_refused_naming_the_data_set(tmp_path: Path) -> None:
    folder = corpus_folder("simple/test_sequence_model8", tmp_path)
    message = spec_error(folder)
    assert (
        f"{folder / 'test_data_set_0'}: input 'X' is empty (shape [0]); zero-size inputs are not supported" in message
    )


def test_a_bool_input_needs_a_file_or_stored_data(tmp_path: Path) -> None:
    graph = helper.make_graph(
        [helper.make_node("Not", ["mask"], ["inverse"])],
        "not",
        [helper.make_tensor_value_info("mask", TensorProto.BOOL, [4])],
        [helper.make_tensor_value_info("inverse", TensorProto.BOOL, [4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, tmp_path / "not.onnx")
    (tmp_path / "models.toml").write_text('[[case]]\nmodel = "not.onnx"\n[case.inputs.mask]\nintegers = [0, 1]\n')
    message = spec_error(tmp_path / "models.toml")
    assert "input 'mask' is bool, and the harness has no generator for bool inputs" in message
    np.save(tmp_path / "mask.npy", np.array([True, False, True, False]))
    (tmp_path / "models.toml").write_text('[[case]]\nmodel = "not.onnx"\n[case.inputs.mask]\nfile = "mask.npy"\n')
    (case,) = load_spec(tmp_path / "models.toml")
    inputs = case.make_inputs({"mask": (4,)}, np.random.default_rng(0))
    assert case.reference_outputs(inputs)["inverse"].tolist() == [False, True, False, True]


# ---------------------------------------------------------------------------------------------------
# TensorRT for RTX: what its parser lacks is a refusal, not a failure


@pytest.mark.skipif(not HAS_RTX, reason="TensorRT for RTX is not installed: pip install 'trt-harness[rtx]'")
def test_rtx_refuses_what_its_parser_lacks_with_the_reason_and_builds_the_rest(pytester: pytest.Pytester) -> None:
    for name in (
        "simple/test_sequence_model1",
        "simple/test_expand_shape_model1",
        "pytorch-converted/test_MaxPool1d_stride_padding_dilation",
        "pytorch-converted/test_Linear",
    ):
        corpus_folder(name, pytester.path)
    result = pytester.runpytest(
        "--harness-spec",
        "test_sequence_model1,test_expand_shape_model1,test_MaxPool1d_stride_padding_dilation,test_Linear",
        "--backend",
        "rtx",
        "--build-only",
        "--precision",
        "fp32",
        "-k",
        "build",
        *FAST,
    )
    result.assert_outcomes(passed=1, skipped=3)
    tests = recorded(pytester)
    why = {
        name: str(tests[f"test_build[{name}-fp32-build-rtx]"]["message"])
        for name in ("test_sequence_model1", "test_expand_shape_model1", "test_MaxPool1d_stride_padding_dilation")
    }
    assert (
        "ONNX parser has no importer for operators SequenceAt, SequenceEmpty, SequenceInsert"
        in why["test_sequence_model1"]
    )
    assert "input 'shape' is a shape tensor" in why["test_expand_shape_model1"]
    assert "does not support what the model uses (UNSUPPORTED_NODE)" in why["test_MaxPool1d_stride_padding_dilation"]
    assert "dilations" in why["test_MaxPool1d_stride_padding_dilation"]
    linear = tests["test_build[test_Linear-fp32-build-rtx]"]
    assert linear["derivation"]["opset"] == "converted from opset 6 to 9"  # type: ignore[index]


# ---------------------------------------------------------------------------------------------------
# The lane's verdicts


def test_the_corpus_lane_tells_pass_refusal_and_failure_apart(tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import corpus_lane
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    folders = [tmp_path / "simple" / name for name in ("good", "strings", "lacking", "broken")]
    document = {
        "input_errors": [
            {
                "message": f"{folders[1]}/model.onnx: folder strings.model: {folders[1]}/model.onnx: input 'x' is a "
                "string tensor; ..."
            }
        ],
        "tests": [
            {"case": "good", "id": "test_build[good-fp32-build-rtx]", "verdict": "pass", "message": None},
            {
                "case": "lacking",
                "id": "test_build[lacking-fp32-build-rtx]",
                "verdict": "skip",
                "message": "Skipped: tensorrt_rtx cannot run lacking at fp32: case 'lacking': tensorrt_rtx 1.7's ONNX "
                "parser has no importer for operator SequenceAt; ...",
            },
            {"case": "broken", "id": "test_build[broken-fp32-build-rtx]", "verdict": "pass", "message": None},
            {
                "case": "broken",
                "id": "test_accuracy[broken-fp32-opt-rtx]",
                "verdict": "fail",
                "message": "ValueError: could not convert string to float\nTraceback ...",
            },
        ],
    }
    outcomes = corpus_lane.outcomes(document, folders, "test_build[")
    assert {name: o.verdict for name, o in outcomes.items()} == {
        "good": "pass",
        "strings": "refused",
        "lacking": "refused",
        "broken": "failed",
    }
    assert outcomes["strings"].reason == "input 'x' is a string tensor; ..."
    assert corpus_lane.cause(outcomes["lacking"].reason) == "operators the backend's parser lacks"
    assert outcomes["broken"].reason == "ValueError: could not convert string to float"
    # A pass must include what the lane is for: without a passing accuracy test, a model has not passed.
    assert corpus_lane.outcomes(document, folders, "test_accuracy[")["good"].verdict == "failed"


def test_the_reference_s_conversion_is_in_the_results_and_the_summary(pytester: pytest.Pytester) -> None:
    gemm_opset6(pytester.path / "linear6.onnx")
    (pytester.path / "models.toml").write_text('[[case]]\nmodel = "linear6.onnx"\nprecisions = ["fp16"]\n')
    result = pytester.runpytest("--harness-spec", "models.toml", "-k", "build or accuracy", *FAST)
    result.assert_outcomes(passed=1 + 1)  # a fixed-shape model: one point
    result.stdout.fnmatch_lines(
        [
            "opset: linear6 converted from opset 6 to 7 (fp16 on ort)",
            "opset: linear6 converted from opset 6 to 7 for its ONNX Runtime reference (on ort)",
        ]
    )
    derivation = recorded(pytester)["test_accuracy[linear6-fp16-opt-ort]"]["derivation"]
    assert derivation["opset"] == derivation["reference_opset"] == "converted from opset 6 to 7"  # type: ignore[index]
