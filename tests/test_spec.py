"""Cases from spec files (harness/spec/), without pytest sessions: loading, skeleton(), references, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import numpy_helper

from harness.case import Precision, ReferenceKind, check_shapes_in_profile
from harness.errors import ShapeOutsideProfileError
from harness.precision.derive import calibration_fingerprint
from harness.spec import SpecError, load_spec, load_specs, skeleton
from harness.spec.reference import REFERENCES_DIR
from tests.spec_support import linear_model, onnx_test_layout, run_model

SPEC = """
[[case]]
name = "classifier"
model = "classifier.onnx"
precisions = ["fp32", "fp16"]
latency_threshold = 0.2

[case.inputs.pixels]
uniform = [0.0, 1.0]

[[case.profile]]
batch = [1, 4, 16]

[[case.profile]]
batch = [32, 32, 64]

[case.tolerance.fp16]
logits = { mean_rel = 2e-3, justification = "measured: worst 1.1e-3" }
"""


def write(folder: Path, spec: str, name: str = "models.toml") -> Path:
    path = folder / name
    path.write_text(spec)
    return path


def spec_error(path: Path) -> str:
    with pytest.raises(SpecError) as error:
        load_spec(path)
    return str(error.value)


def test_spec_entry_becomes_a_case(tmp_path: Path) -> None:
    linear_model(tmp_path / "classifier.onnx")
    (case,) = load_spec(write(tmp_path, SPEC))
    assert case.name == "classifier" and case.precisions == (Precision.FP32, Precision.FP16)
    assert case.inputs[0].shape == ("batch", 16) and case.outputs[0].name == "logits"
    assert [profile.max["pixels"] for profile in case.profiles] == [(16, 16), (64, 16)]
    assert case.latency_threshold == 0.2 and case.reference_kind is ReferenceKind.ONNXRUNTIME_FP32
    assert case.tolerance(Precision.FP16, "logits").mean_rel == 2e-3
    inputs = case.make_inputs({"pixels": (3, 16)}, np.random.default_rng(0))
    assert inputs["pixels"].dtype == np.float32 and 0 <= inputs["pixels"].min() <= inputs["pixels"].max() <= 1
    reference = case.reference_outputs(inputs)["logits"]
    (expected,) = run_model(tmp_path / "classifier.onnx", inputs)
    assert reference.dtype == np.float64 and np.array_equal(reference, expected.astype(np.float64))


def test_reference_is_cached_on_disk_by_model_and_inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    linear_model(tmp_path / "classifier.onnx")
    spec = write(tmp_path, SPEC)
    cache = tmp_path / "engines"
    (case,) = load_spec(spec, cache)
    inputs = case.make_inputs({"pixels": (2, 16)}, np.random.default_rng(1))
    first = case.reference_outputs(inputs)
    assert len(list((cache / REFERENCES_DIR).glob("*.npz"))) == 1
    (again,) = load_spec(spec, cache)
    with monkeypatch.context() as patched:  # a new session reads the cache, never recomputes
        patched.setattr("harness.precision.localize.run_on_onnxruntime", None)
        assert np.array_equal(again.reference_outputs(inputs)["logits"], first["logits"])
    other = case.make_inputs({"pixels": (2, 16)}, np.random.default_rng(2))
    assert not np.array_equal(again.reference_outputs(other)["logits"], first["logits"])
    assert len(list((cache / REFERENCES_DIR).glob("*.npz"))) == 2


def test_pyproject_table_and_default_name(tmp_path: Path) -> None:
    linear_model(tmp_path / "my model.onnx")
    pyproject = write(
        tmp_path,
        '[project]\nname = "x"\n[[tool.trt-harness.case]]\nmodel = "my model.onnx"\n'
        "[[tool.trt-harness.case.profile]]\nbatch = [1, 2, 4]\n",
        "pyproject.toml",
    )
    (case,) = load_spec(pyproject)
    assert case.name == "my_model" and case.precisions == tuple(Precision)


def test_outputs_select_what_is_checked_and_the_model_keeps_only_those(tmp_path: Path) -> None:
    import onnx
    from onnx import helper

    path = linear_model(tmp_path / "two.onnx", output_name="logits")
    model = onnx.load(path)
    model.graph.node.append(helper.make_node("Relu", ["logits"], ["relu"], name="relu"))
    model.graph.output.append(helper.make_tensor_value_info("relu", onnx.TensorProto.FLOAT, ["batch", 4]))
    onnx.save(model, path)
    spec = 'case = [{ model = "two.onnx", outputs = ["relu"], profile = [{ batch = [1, 1, 2] }] }]'
    (case,) = load_spec(write(tmp_path, spec))
    assert [spec.name for spec in case.outputs] == ["relu"]
    assert [output.name for output in case.model().graph.output] == ["relu"]
    inputs = case.make_inputs({"pixels": (1, 16)}, np.random.default_rng(0))
    assert set(case.reference_outputs(inputs)) == {"relu"}


def test_skeleton_parses_back_into_a_valid_case(tmp_path: Path) -> None:
    linear_model(tmp_path / "net.onnx", batch=None)  # an unnamed dynamic batch gets a made-up name
    text = skeleton(tmp_path / "net.onnx")
    assert "pixels_dim0" in text and "made up" in text and "GUESS" in text
    (case,) = load_spec(write(tmp_path, text))
    assert case.name == "net" and case.inputs[0].shape == ("pixels_dim0", 16)
    assert case.profiles[0].min["pixels"] == (1, 16) and case.profiles[0].max["pixels"] == (8, 16)
    assert case.precisions == tuple(Precision)
    inputs = case.make_inputs(case.profiles[0].opt, np.random.default_rng(0))
    assert case.reference_outputs(inputs)["logits"].shape == (1, 4)


def test_skeleton_names_integer_inputs_and_refuses_a_file_that_is_not_onnx(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Cast", ["ids"], ["y"], to=TensorProto.FLOAT, name="cast")],
        "ids",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "sequence"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "sequence"])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "ids.onnx")
    text = skeleton(tmp_path / "ids.onnx")
    assert "integers = [0, 9]" in text and "sequence = [1, 32, 128]" in text and "batch = [1, 1, 8]" in text
    (case,) = load_spec(write(tmp_path, text))
    assert case.make_inputs({"ids": (2, 3)}, np.random.default_rng(0))["ids"].dtype == np.int64
    (tmp_path / "junk.onnx").write_text("not a model")
    with pytest.raises(SpecError, match=r"junk.onnx.*not a valid ONNX model.*onnx.checker"):
        skeleton(tmp_path / "junk.onnx")


def test_int8_calibration_fingerprint_follows_the_generator_parameters(tmp_path: Path) -> None:
    linear_model(tmp_path / "classifier.onnx")
    (case,) = load_spec(write(tmp_path, SPEC))
    (wider,) = load_spec(write(tmp_path, SPEC.replace("uniform = [0.0, 1.0]", "uniform = [0.0, 2.0]"), "b.toml"))
    assert calibration_fingerprint(case) != calibration_fingerprint(wider)
    (same,) = load_spec(write(tmp_path, SPEC, "c.toml"))
    assert calibration_fingerprint(case) == calibration_fingerprint(same)
    np.save(tmp_path / "x.npy", np.ones((4, 16), np.float32))
    from_file = SPEC.replace("uniform = [0.0, 1.0]", 'file = "x.npy"').replace("[1, 4, 16]", "[4, 4, 4]")
    from_file = from_file.split("[[case.profile]]\nbatch = [32")[0]
    (before,) = load_spec(write(tmp_path, from_file, "d.toml"))
    np.save(tmp_path / "x.npy", np.full((4, 16), 2, np.float32))
    (after,) = load_spec(write(tmp_path, from_file, "d.toml"))
    assert calibration_fingerprint(before) != calibration_fingerprint(after)


def test_file_input_fixes_its_dims(tmp_path: Path) -> None:
    linear_model(tmp_path / "classifier.onnx")
    np.savez(tmp_path / "data.npz", images=np.full((5, 16), 0.5, np.float32))
    spec = 'case = [{ model = "classifier.onnx", inputs = { pixels = { file = "data.npz", key = "images" } } }]'
    (case,) = load_spec(write(tmp_path, spec))
    assert case.profiles[0].min["pixels"] == case.profiles[0].max["pixels"] == (5, 16)
    assert np.all(case.make_inputs({"pixels": (5, 16)}, np.random.default_rng(0))["pixels"] == 0.5)
    wrong = spec.replace("}] }", "}] }").replace("} } }]", "} }, profile = [{ batch = [1, 2, 8] }] }]")
    assert "fixes 'batch' at 5" in spec_error(write(tmp_path, wrong, "wrong.toml"))


def test_test_layout_folder_is_a_case_with_stored_outputs(tmp_path: Path) -> None:
    folder = onnx_test_layout(tmp_path / "resnet-tiny", batches=(2, 2, 3))
    (case,) = load_spec(folder)
    assert case.name == "resnet-tiny" and case.reference_kind is ReferenceKind.STORED
    assert [profile.opt["x"] for profile in case.profiles] == [(2, 16), (3, 16)]  # one per distinct shapes
    assert all(profile.min == profile.opt == profile.max for profile in case.profiles)
    seen = set()
    for seed in range(20):  # the seed picks among the data sets of the shapes asked for
        inputs = case.make_inputs({"x": (2, 16)}, np.random.default_rng(seed))
        expected = numpy_helper.to_array(_tensor(folder, inputs))
        np.testing.assert_array_equal(case.reference_outputs(inputs)["y"], expected.astype(np.float64))
        seen.add(inputs["x"].tobytes())
    assert len(seen) == 2
    with pytest.raises(ShapeOutsideProfileError):
        check_shapes_in_profile(case, 0, {"x": (3, 16)})


def _tensor(folder: Path, inputs: dict[str, np.ndarray]) -> object:
    import onnx

    for data in sorted(folder.glob("test_data_set_*")):
        stored = onnx.TensorProto()
        stored.ParseFromString((data / "input_0.pb").read_bytes())
        if numpy_helper.to_array(stored).tobytes() == inputs["x"].tobytes():
            output = onnx.TensorProto()
            output.ParseFromString((data / "output_0.pb").read_bytes())
            return output
    raise AssertionError("inputs not among the stored data sets")


def test_spec_entry_with_test_data(tmp_path: Path) -> None:
    onnx_test_layout(tmp_path / "data")
    spec = 'case = [{ name = "stored", model = "data/model.onnx", test_data = "data", precisions = ["fp16"] }]'
    (case,) = load_spec(write(tmp_path, spec))
    assert case.reference_kind is ReferenceKind.STORED and case.precisions == (Precision.FP16,)


def test_test_data_alone_means_the_folder_s_model_onnx_named_after_the_folder(tmp_path: Path) -> None:
    """docs/spec.md's "ONNX's test layout": `test_data = "folder"` in a [[case]] table is enough."""
    onnx_test_layout(tmp_path / "test_Linear")
    (case,) = load_spec(write(tmp_path, '[[case]]\ntest_data = "test_Linear"\n'))
    assert case.name == "test_Linear" and case.reference_kind is ReferenceKind.STORED
    assert [spec.name for spec in case.inputs] == ["x"]
    (tmp_path / "empty").mkdir()
    message = spec_error(write(tmp_path, '[[case]]\ntest_data = "empty"\n'))
    assert "models.toml: case[0].model: missing ('empty' holds no model.onnx); give the model's path" in message
    assert 'test_data = "folder" naming an ONNX test-layout folder with model.onnx in it' in message


# Bad input: each names the file, the field and the fix.


def test_not_onnx_and_checker_failures_name_the_file_and_field(tmp_path: Path) -> None:
    (tmp_path / "model.onnx").write_bytes(b"\x00\x01garbage")
    spec = write(tmp_path, 'case = [{ name = "bad", model = "model.onnx" }]')
    assert all(part in spec_error(spec) for part in ("models.toml", "case[0].model", "not a valid ONNX model"))
    import onnx

    model = onnx.load(linear_model(tmp_path / "model.onnx"))
    model.graph.node[0].input[1] = "nowhere"  # a dangling edge: onnx.checker refuses it
    onnx.save(model, tmp_path / "model.onnx")
    assert "not a valid ONNX model" in spec_error(spec) and "nowhere" in spec_error(spec)
    assert "no model file" in spec_error(write(tmp_path, 'case = [{ model = "gone.onnx" }]'))


def test_unknown_input_dynamic_dim_without_profile_and_typos(tmp_path: Path) -> None:
    linear_model(tmp_path / "classifier.onnx")
    unknown_input = spec_error(write(tmp_path, SPEC.replace("case.inputs.pixels", "case.inputs.pixel")))
    assert "case[0] ('classifier').inputs.pixel" in unknown_input and "did you mean 'pixels'" in unknown_input
    no_profile = 'case = [{ model = "classifier.onnx" }]'
    message = spec_error(write(tmp_path, no_profile))
    assert "case[0] ('classifier').profile" in message and "'batch'" in message and "batch = [1, 1, 8]" in message
    typo = spec_error(write(tmp_path, SPEC.replace("latency_threshold", "latency_treshold")))
    assert "latency_treshold" in typo and "did you mean 'latency_threshold'" in typo
    dim_typo = spec_error(write(tmp_path, SPEC.replace("batch = [1, 4, 16]", "bach = [1, 4, 16]")))
    assert "profile[0].bach" in dim_typo and "did you mean 'batch'" in dim_typo
    assert "unknown key 'cases'" in spec_error(write(tmp_path, SPEC.replace("[[case]]", "[[cases]]")))
    assert "not valid TOML" in spec_error(write(tmp_path, "[[case]\n"))


def test_generator_dtype_must_match_the_model(tmp_path: Path) -> None:
    linear_model(tmp_path / "classifier.onnx")
    ints = spec_error(write(tmp_path, SPEC.replace("uniform = [0.0, 1.0]", "integers = [0, 5]")))
    assert "inputs.pixels.integers" in ints and "float32" in ints and "uniform = [low, high]" in ints
    np.save(tmp_path / "x.npy", np.ones((4, 16)))  # float64
    wrong_file = spec_error(write(tmp_path, SPEC.replace("uniform = [0.0, 1.0]", 'file = "x.npy"')))
    assert "x.npy holds float64" in wrong_file and "astype(numpy.float32)" in wrong_file
    np.save(tmp_path / "x.npy", np.ones((4, 8), np.float32))  # the model fixes dim 1 at 16
    wrong_shape = spec_error(write(tmp_path, SPEC.replace("uniform = [0.0, 1.0]", 'file = "x.npy"')))
    assert "inputs.pixels.file: x.npy holds shape [4, 8]" in wrong_shape and "['?', 16]" in wrong_shape


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_file_input_holding_nan_or_inf_is_refused_at_load_naming_the_file_field_and_fix(
    tmp_path: Path, bad: float
) -> None:
    linear_model(tmp_path / "classifier.onnx")
    array = np.ones((4, 16), np.float32)
    array[2, 3] = bad
    np.save(tmp_path / "x.npy", array)
    message = spec_error(write(tmp_path, SPEC.replace("uniform = [0.0, 1.0]", 'file = "x.npy"')))
    kind = "NaN" if np.isnan(bad) else "Inf"
    assert f"models.toml: case[0] ('classifier').inputs.pixels.file: x.npy holds {kind} (1 of 64 values, " in message
    assert "the first at index (2, 3)" in message and "save the array with finite values" in message


def test_keep_fp32_names_nodes_of_the_model_when_the_spec_loads(tmp_path: Path) -> None:
    linear_model(tmp_path / "classifier.onnx")
    (case,) = load_spec(write(tmp_path, SPEC.replace("latency_threshold", 'keep_fp32 = ["add0"]\nlatency_threshold')))
    assert case.keep_fp32 == ("add0",)
    message = spec_error(write(tmp_path, SPEC.replace("latency_threshold", 'keep_fp32 = ["add"]\nlatency_threshold')))
    assert "models.toml: case[0] ('classifier').keep_fp32: 'add' is not a node name (close: 'add0')" in message


def test_test_data_that_disagrees_with_the_model(tmp_path: Path) -> None:
    folder = onnx_test_layout(tmp_path / "layout")
    (folder / "test_data_set_0" / "input_0.pb").write_bytes(
        numpy_helper.from_array(np.ones((2, 15), np.float32), "x").SerializeToString()
    )
    message = spec_error(folder)
    assert "input_0.pb" in message and "[2, 15]" in message and "test_data" in message
    (folder / "test_data_set_0" / "input_0.pb").write_bytes(
        numpy_helper.from_array(np.ones((2, 16), np.float64), "x").SerializeToString()
    )
    assert "float64 but the model declares float32" in spec_error(folder)


def test_one_bad_entry_leaves_the_others_and_names_stay_unique(tmp_path: Path) -> None:
    linear_model(tmp_path / "classifier.onnx")
    spec = write(tmp_path, SPEC + SPEC.replace('classifier"', 'second"') + SPEC.replace("uniform", "unifrom"))
    loaded = load_specs([spec, tmp_path / "missing.toml"], taken=["second"])
    assert [case.name for case in loaded.cases] == ["classifier"]
    assert any("'second' is already the name of a case of the pytest_harness_cases hook" in e for e in loaded.errors)
    twice = load_specs([spec, spec])  # the second file's classifier names where the first one is
    assert f"case[0].name: 'classifier' is already the name of {spec}'s case[0]; give" in twice.errors[1]
    assert any("did you mean 'uniform'" in error for error in loaded.errors)
    assert any("missing.toml" in error and "no such spec file" in error for error in loaded.errors)


def test_profile_order_and_unjustified_tolerances_are_said_in_the_spec_s_terms(tmp_path: Path) -> None:
    linear_model(tmp_path / "classifier.onnx")
    reversed_range = spec_error(write(tmp_path, SPEC.replace("batch = [1, 4, 16]", "batch = [16, 4, 1]")))
    assert "case[0] ('classifier').profile[0].batch: expected 1 <= min <= opt <= max, got [16, 4, 1]" in reversed_range
    assert "batch = [1, 4, 16]" in reversed_range
    unjustified = spec_error(write(tmp_path, SPEC.replace(', justification = "measured: worst 1.1e-3"', "")))
    assert "tolerance.fp16.logits.justification: missing: mean_rel = 0.002 is looser than the default 0.001" in (
        unjustified
    )
    assert 'justification = "measured:' in unjustified


def test_skeleton_warns_that_an_integer_output_is_checked_exactly(tmp_path: Path) -> None:
    from onnx import TensorProto, helper, save

    graph = helper.make_graph(
        [helper.make_node("ArgMax", ["scores"], ["label"], name="argmax", axis=1, keepdims=0)],
        "classify",
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", 10])],
        [helper.make_tensor_value_info("label", TensorProto.INT64, ["batch"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    save(model, tmp_path / "argmax.onnx")
    text = skeleton(tmp_path / "argmax.onnx")
    assert "# label: integer, so it must match exactly; an argmax/topk label at fp16/bf16/int8 may" in text
    assert "keep it in outputs" in text and "drop it" not in text
    assert "must match exactly" not in skeleton(linear_model(tmp_path / "linear.onnx"))
