"""Precision owned by the harness, end to end in throw-away sessions: the proof of precision, --keep-fp32,
localization, int8's recorded calibration, and a model the fp16 conversion cannot type."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

import harness.suite as harness_suite
from tests.test_plugin import FAST, make_project, results_of

ACCURACY = "from harness.suite import test_accuracy\n"
MNIST = "from cases.mnist import CASE as MNIST\n"


def engine_outputs_changed(*statements: str) -> str:
    """Conftest source that runs `statements` on every engine's outputs (a dict named `outputs`) before the suite
    judges them, as a faulty engine would give them, and restores the suite's run_engine when the session ends."""
    body = "".join(f"    {statement}\n" for statement in statements)
    return (
        "import harness.suite as suite\n"
        "real_run_engine = suite.run_engine\n"
        "def changed(*args, **kwargs):\n"
        "    outputs = dict(real_run_engine(*args, **kwargs))\n"
        f"{body}"
        "    return outputs\n"
        "suite.run_engine = changed\n"
        "def pytest_unconfigure(config):\n"
        "    suite.run_engine = real_run_engine\n"
    )


def accuracy_project(pytester: pytest.Pytester, cases_source: str) -> None:
    make_project(pytester, cases_source)
    pytester.makepyfile(test_matrix=ACCURACY)


def record(pytester: pytest.Pytester, test_id: str) -> dict[str, object]:
    tests = results_of(pytester, "r.json")["tests"]
    return next(test for test in tests if test["id"] == test_id)  # type: ignore[attr-defined, no-any-return]


def test_a_model_labelled_fp16_whose_layers_compute_float32_fails(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bug this exists for: an "fp16" point that really ran the float32 model passed with fp32's errors."""
    monkeypatch.setattr("harness.precision.derive.derived_model", lambda model, precision, kept=(): model)
    accuracy_project(pytester, "CASES = [IDENTITY]")
    result = pytester.runpytest(*FAST, "--precision", "fp32,fp16", "--results", "r.json")
    result.assert_outcomes(passed=3, failed=3)
    result.stdout.fnmatch_lines(
        [
            (
                "*identity-fp16-min-ort is labelled fp16 but its layers say otherwise (the ONNX model's declared types): "
                "layer 'identity' (Identity) computes in Float, not Half*"
            )
        ]
    )


def test_a_failed_proof_also_says_the_outputs_failures(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The proof's failure must not hide the outputs' own accuracy results."""
    monkeypatch.setattr("harness.precision.derive.derived_model", lambda model, precision, kept=(): model)
    real_run_engine = harness_suite.run_engine
    monkeypatch.setattr(
        harness_suite, "run_engine", lambda *a, **k: {n: v + 1 for n, v in real_run_engine(*a, **k).items()}
    )
    accuracy_project(pytester, "CASES = [IDENTITY]")
    result = pytester.runpytest(*FAST, "--precision", "fp16", "-k", "opt")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            (
                "*identity-fp16-opt-ort is labelled fp16 but its layers say otherwise*computes in Float, not Half. "
                "Its outputs against the * fail too: output 'y': *(worst element *"
            )
        ]
    )


SOFTMAX_ARGMAX = """
from onnx import TensorProto, helper, numpy_helper
from harness.case import Case, TensorSpec

W = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)

def softmax_argmax_model():
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["z"], name="fc"),
         helper.make_node("Softmax", ["z"], ["p"], name="softmax0", axis=1),
         helper.make_node("ArgMax", ["p"], ["label"], name="argmax0", axis=1, keepdims=0)],
        "softmax_argmax",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("p", TensorProto.FLOAT, ["N", 3]),
         helper.make_tensor_value_info("label", TensorProto.INT64, ["N"])],
        initializer=[numpy_helper.from_array(W, "w")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])

def softmax_argmax_reference(inputs):
    z = inputs["x"].astype(np.float64) @ W
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return {"p": p, "label": p.argmax(axis=1)}

SOFTMAX_ARGMAX_CASE = Case(
    name="softmax_argmax", inputs=(TensorSpec("x", "float32", ("N", 4)),),
    outputs=(TensorSpec("p", "float32", ("N", 3)), TensorSpec("label", "int64", ("N",))),
    profiles=(Profile(min={"x": (1, 4)}, opt={"x": (8, 4)}, max={"x": (8, 4)}),),
    onnx_model=softmax_argmax_model, reference=softmax_argmax_reference,
    generate_inputs=lambda shapes, rng: {"x": rng.standard_normal(shapes["x"]).astype(np.float32)},
    precisions=(Precision.FP32, Precision.FP16),
)
"""


def test_a_model_stamped_with_an_ir_version_newer_than_onnxruntime_reads_runs(pytester: pytest.Pytester) -> None:
    """onnx.helper.make_model stamps the newest IR its onnx knows; an older onnxruntime refuses it (the H200's onnx
    1.23 and onnxruntime 1.30: IR 14 against 13). Played here one IR version past what this onnxruntime reads: the
    derivation, the labels' scores and the localizer all run the model at the IR version onnxruntime reads."""
    newer = (
        "import dataclasses, onnx\n"
        "def newer_ir_model():\n"
        "    model = softmax_argmax_model()\n"
        "    model.ir_version = onnx.IR_VERSION + 1\n"
        "    return model\n"
        "CASES = [dataclasses.replace(SOFTMAX_ARGMAX_CASE, onnx_model=newer_ir_model)]\n"
    )
    accuracy_project(pytester, SOFTMAX_ARGMAX + newer)
    result = pytester.runpytest(*FAST, "--precision", "fp32,fp16", "-k", "opt", "--localize", "yes")
    result.assert_outcomes(passed=2)


def test_an_argmax_label_output_passes_the_fp16_proof_it_has_no_precision_to_prove(
    pytester: pytest.Pytester,
) -> None:
    """The fp16 converter keeps ArgMax in float32 (it reads the float32 cast of output 'p' here): an index-choosing
    layer compares, computes nothing, and is never held to the label; the Softmax before it still is."""
    accuracy_project(pytester, SOFTMAX_ARGMAX + "CASES = [SOFTMAX_ARGMAX_CASE]")
    result = pytester.runpytest(*FAST, "--precision", "fp16", "-k", "opt", "--results", "r.json")
    result.assert_outcomes(passed=1)
    summary = record(pytester, "test_accuracy[softmax_argmax-fp16-opt-ort]")["layers"]["summary"]  # type: ignore[index]
    assert "softmax0 Half" in summary and "argmax0 Float" in summary


def test_index_choosing_layers_are_exempt_and_a_float_layer_is_not() -> None:
    from harness.case import Precision
    from harness.precision.layers import LayerPrecision
    from harness.precision.proof import problems

    layers = [LayerPrecision(n, t, "Float") for n, t in (("a", "ArgMax"), ("b", "ArgMin"), ("t", "TopK"))]
    assert problems(layers, Precision.FP16, ()) == []
    assert problems(layers, Precision.BF16, ()) == []
    softmax = LayerPrecision("softmax0", "Softmax", "Float")
    assert problems([*layers, softmax], Precision.FP16, ()) == [
        "layer 'softmax0' (Softmax) computes in Float, not Half"
    ]


def test_int8_on_a_model_with_nothing_to_quantize_is_a_refusal_naming_the_fix(pytester: pytest.Pytester) -> None:
    """A lone Identity has no Conv/ConvTranspose/Gemm/MatMul: int8 would be float32 under an int8 label. Each int8
    point is skipped saying so and how to fix the case (it failed every point, naming no fix, before)."""
    make_project(pytester, "CASES = [dataclasses.replace(IDENTITY, precisions=(Precision.FP32, Precision.INT8))]")
    pytester.makepyfile(test_matrix="from harness.suite import test_build, test_accuracy\n")
    result = pytester.runpytest(*FAST, "--precision", "int8", "-k", "build or opt", "-rs")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(
        [
            (
                "*onnxruntime cannot run identity at int8: case 'identity': identity has no layer int8 quantizes (Conv, "
                "ConvTranspose, Gemm, MatMul: harness.precision.quantize.QUANTIZED_OPS); int8 would run it in "
                "float32: drop int8 from the case's precisions*"
            )
        ]
    )
    assert "nothing to put Q/DQ around" not in result.stdout.str()


def test_int8_with_every_compute_layer_kept_float32_is_refused_saying_so(pytester: pytest.Pytester) -> None:
    accuracy_project(pytester, MNIST + "CASES = [MNIST]")
    kept = "conv1,conv2,fc1,fc2"
    result = pytester.runpytest(*FAST, "--precision", "int8", "-k", "opt", "--keep-fp32", kept, "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*mnist has no layer int8 quantizes (*) (its * kept float32); int8 would run it*"])


def test_each_point_records_what_its_layers_compute_in(pytester: pytest.Pytester) -> None:
    accuracy_project(pytester, MNIST + "CASES = [MNIST]")
    pytester.runpytest(*FAST, "--precision", "fp16,int8", "-k", "opt", "--results", "r.json").assert_outcomes(passed=2)
    fp16 = record(pytester, "test_accuracy[mnist-fp16-opt-ort]")
    assert fp16["layers"]["source"] == "the ONNX model's declared types"  # type: ignore[index]
    assert "conv1 Half, relu1 Half, pool1 Half" in fp16["layers"]["summary"]  # type: ignore[index]
    int8 = record(pytester, "test_accuracy[mnist-int8-opt-ort]")
    assert "conv1 Int8" in int8["layers"]["summary"] and "fc2 Int8" in int8["layers"]["summary"]  # type: ignore[index]
    derivation = int8["derivation"]
    assert derivation["calibrator"] == "max" and derivation["scales"]["x"] > 0  # type: ignore[index]
    assert len(derivation["scales"]["conv1.weight"]) == 32  # type: ignore[index]  # one per output channel


def test_keep_fp32_keeps_the_named_layer_in_float32(pytester: pytest.Pytester) -> None:
    accuracy_project(pytester, MNIST + "CASES = [MNIST]")
    result = pytester.runpytest(
        *FAST, "--precision", "fp16", "-k", "opt", "--keep-fp32", "fc1,fc2", "--results", "r.json"
    )
    result.assert_outcomes(passed=1)
    point = record(pytester, "test_accuracy[mnist-fp16-opt-ort]")
    summary = point["layers"]["summary"]  # type: ignore[index]
    assert "conv1 Half" in summary and "fc1 Float (kept)" in summary and "fc2 Float (kept)" in summary
    assert point["derivation"]["kept_fp32"] == ["fc1", "fc2"]  # type: ignore[index]


def test_keep_fp32_with_a_name_no_case_has_lists_the_close_names(pytester: pytest.Pytester) -> None:
    accuracy_project(pytester, MNIST + "CASES = [MNIST]")
    result = pytester.runpytest(*FAST, "--precision", "fp16", "-k", "opt", "--keep-fp32", "fc_1")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*case 'mnist': --keep-fp32: 'fc_1' is not a node name (close: 'fc1'*"])


def test_a_failing_point_is_localized_to_its_first_layer_beyond_tolerance(pytester: pytest.Pytester) -> None:
    tight = (
        "CASES = [dataclasses.replace(MNIST, name='tight', tolerances={(Precision.FP16, 'probabilities'): "
        "Tolerance(mean_rel=1e-6)})]"
    )
    accuracy_project(pytester, MNIST + tight)
    result = pytester.runpytest(*FAST, "--precision", "fp16", "-k", "opt", "--results", "r.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            (
                "*Localized on onnxruntime, unoptimized: error jumps most at the first layer beyond 1e-06: "
                "conv1 (Conv) output 'conv1': 0 → 0.000*(try --keep-fp32 with that node, or a looser limit with a "
                "justification: [[]case.tolerance.fp16[]] in a spec, Tolerance(mean_rel=…, justification=…) in a "
                "Python case)*"
            )
        ]
    )
    localization = record(pytester, "test_accuracy[tight-fp16-opt-ort]")["localization"]
    assert localization["first_failing"]["node"] == "conv1"  # type: ignore[index]


def test_localize_records_every_derived_point_and_skips_float32(pytester: pytest.Pytester) -> None:
    accuracy_project(pytester, MNIST + "CASES = [MNIST]")
    pytester.runpytest(
        *FAST, "--precision", "fp32,fp16", "-k", "opt", "--localize", "--results", "r.json"
    ).assert_outcomes(passed=2)
    assert record(pytester, "test_accuracy[mnist-fp32-opt-ort]")["localization"] is None
    fp16 = record(pytester, "test_accuracy[mnist-fp16-opt-ort]")["localization"]
    # Every layer's error is recorded; inner layers may exceed the output's tolerance while the point passes
    # (conv2 at ~1.2e-3 on these inputs), which is what --localize is for: to see where the error grows.
    names = [layer["node"] for layer in fp16["layers"]]  # type: ignore[index]
    assert names[:3] == ["conv1", "relu1", "pool1"] and fp16["tolerance"] == 1e-3  # type: ignore[index]
    assert fp16["summary"]  # type: ignore[index]


def test_a_model_the_fp16_conversion_cannot_type_fails_that_point_naming_the_op(pytester: pytest.Pytester) -> None:
    """Celu has no float16 in ONNX: the fp16 point fails naming the node and the fix, fp32 goes on."""
    celu = (
        "from onnx import helper\n"
        "def celu_model():\n"
        "    model = IDENTITY.onnx_model()\n"
        "    model.graph.node[0].op_type = 'Celu'\n"
        "    model.opset_import[0].version = 17\n"
        "    return model\n"
        "CASES = [dataclasses.replace(IDENTITY, name='celu', onnx_model=celu_model,\n"
        "    reference=lambda inputs: {'y': np.maximum(inputs['x'], 0) + np.minimum(0, np.expm1(inputs['x']))})]\n"
    )
    accuracy_project(pytester, celu)
    result = pytester.runpytest(*FAST, "--precision", "fp32,fp16", "-k", "opt", "--results", "r.json")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*case 'celu': the fp16 model does not type-check at node 'identity' (Celu):*--keep-fp32 identity,*"]
    )
    pytester.runpytest(
        *FAST, "--precision", "fp16", "-k", "opt", "--keep-fp32", "identity", "--results", "r.json"
    ).assert_outcomes(passed=1)


def test_bf16_is_skipped_with_the_reason_where_the_backend_lacks_it(pytester: pytest.Pytester) -> None:
    accuracy_project(pytester, "CASES = [IDENTITY]")
    result = pytester.runpytest(*FAST, "--precision", "bf16", "-k", "opt", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*no bfloat16 kernels for most operators (Conv, Gemm, MatMul among them)*"])


def test_the_bf16_model_is_valid_onnx_at_opset_22() -> None:
    from cases import mnist
    from harness.build import EngineStore
    from harness.case import Precision

    model = onnx.load_from_string(EngineStore(None).model_bytes(mnist.CASE, Precision.BF16))
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version >= 22
    types = {value.type.tensor_type.elem_type for value in model.graph.value_info}
    assert onnx.TensorProto.BFLOAT16 in types and onnx.TensorProto.FLOAT16 not in types


def test_a_warm_int8_derivation_neither_generates_nor_calibrates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The calibration cache is keyed by the recipe (generator source, shapes, seeds): a second session finds
    the int8 model without generating mnist's calibration images or calling ONNX Runtime's calibration."""
    import onnxruntime.quantization

    from cases import mnist
    from harness.case import Precision
    from harness.precision import derive

    options = derive.PrecisionOptions(cache_dir=tmp_path)
    cold = derive.derive(mnist.CASE, Precision.INT8, options)

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("a warm derivation generated or calibrated")

    monkeypatch.setattr(derive, "calibration_inputs", forbidden)
    monkeypatch.setattr(onnxruntime.quantization, "quantize_static", forbidden)
    warm = derive.derive(mnist.CASE, Precision.INT8, options)
    assert (warm.model_bytes, warm.scales) == (cold.model_bytes, cold.scales)


def test_a_kept_node_that_produces_an_output_still_hands_callers_float32() -> None:
    """onnxconverter-common casts a kept output node's result to float16; the harness casts it to float32."""
    from cases import conv_add_relu
    from harness.case import Precision
    from harness.precision.convert import derived_model, named_nodes

    for precision in (Precision.FP16, Precision.BF16):
        model = derived_model(named_nodes(conv_add_relu.CASE.model()), precision, ["relu"])
        assert [value.type.tensor_type.elem_type for value in model.graph.output] == [onnx.TensorProto.FLOAT]
        onnx.checker.check_model(model, full_check=True)


def test_a_layer_carries_a_node_by_name_not_by_substring() -> None:
    from harness.precision.layers import names_node

    assert names_node("conv1", "conv1") and names_node("Conv_0 + conv1", "conv1") and names_node("fc1.matmul", "fc1")
    assert not names_node("conv10", "conv1") and not names_node("(Unnamed Layer* 6) [Constant]", "a")


def test_one_misspelled_keep_fp32_name_is_one_error_item(pytester: pytest.Pytester) -> None:
    accuracy_project(pytester, MNIST + "CASES = [IDENTITY, MNIST]")
    result = pytester.runpytest(*FAST, "--precision", "fp16", "-k", "opt", "--keep-fp32", "conv_1")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*no selected case has a node named 'conv_1'*(close: 'conv1', 'conv2')*"])


def test_a_bad_name_in_the_cases_keep_fp32_names_the_field_and_spares_other_precisions(
    pytester: pytest.Pytester,
) -> None:
    accuracy_project(pytester, "CASES = [dataclasses.replace(IDENTITY, name='badkeep', keep_fp32=('identty',))]")
    result = pytester.runpytest(*FAST, "--precision", "fp32,fp16", "-k", "opt")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*case 'badkeep': keep_fp32 (the case's field): 'identty' is not a node name*"])


def test_a_failure_only_the_engines_kernels_make_is_said_so_not_put_on_a_layer(pytester: pytest.Pytester) -> None:
    """The engine's probabilities 1 % off (as a CPU's saturating int8 kernels made them) while the same model run
    layer by layer is within 1e-3: the message and the record say the failure is the engine's, with both errors.
    (The session's conftest patches the suite's run_engine, and restores it when the session ends.)"""
    off_by_one_percent = engine_outputs_changed(
        "outputs['probabilities'] = outputs['probabilities'] * np.float32(1.01)"
    )
    accuracy_project(pytester, MNIST + off_by_one_percent + "CASES = [MNIST]")
    result = pytester.runpytest(*FAST, "--precision", "fp16", "-k", "opt", "--results", "r.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            (
                "*Localized on onnxruntime, unoptimized: the failure lives in onnxruntime's optimized kernels, not "
                "in any layer of the model: the layer-by-layer run of the same model gives mean relative error "
                "0.000* at the outputs, the engine 0.0099*"
            )
        ]
    )
    localization = record(pytester, "test_accuracy[mnist-fp16-opt-ort]")["localization"]
    assert "try --keep-fp32" not in result.stdout.str()  # no layer to keep
    reproduction = localization["reproduction"]  # type: ignore[index]
    assert reproduction["reproduced"] is False and reproduction["output"] == "probabilities"
    assert reproduction["localizer_mean_rel"] < 1e-3 < reproduction["engine_mean_rel"]


TIES = """
from onnx import TensorProto, helper, numpy_helper
from harness.case import Case, TensorSpec

WEIGHTS = np.array([1, 1.0002, 1, 1], np.float32)  # float16 rounds 1.0002 to 1: a score tie where x0 == x1

def ties_model():
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "w"], ["scores"], name="scale"),
         helper.make_node("ArgMax", ["scores"], ["label"], name="argmax", axis=1, keepdims=0)],
        "ties",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("label", TensorProto.INT64, ["N"])],
        initializer=[numpy_helper.from_array(WEIGHTS, "w")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])

def ties_inputs(shapes, rng):
    x = rng.uniform(-1, 1, shapes["x"])
    x[np.arange(len(x)), rng.integers(0, 4, len(x))] = 2.5
    x[::4] = [1.0, 1.0, 0.0, -1.0]  # every fourth row a near tie: label 1 in float32, 0 in float16
    return {"x": x.astype(np.float32)}

def ties_reference(inputs):
    return {"label": (inputs["x"].astype(np.float64) * WEIGHTS).argmax(axis=1)}

TIES_CASE = Case(
    name="ties", inputs=(TensorSpec("x", "float32", ("N", 4)),), outputs=(TensorSpec("label", "int64", ("N",)),),
    profiles=(Profile(min={"x": (1, 4)}, opt={"x": (16, 4)}, max={"x": (16, 4)}),),
    onnx_model=ties_model, reference=ties_reference, generate_inputs=ties_inputs,
    precisions=(Precision.FP32, Precision.FP16),
)
"""


def test_a_label_that_flips_at_a_near_tie_passes_at_fp16_saying_so_and_fp32_stays_exact(
    pytester: pytest.Pytester,
) -> None:
    """A real fp16 flip: the float16 weight makes rows with x0 == x1 a tie, so fp16's label is 0 where float32's
    is 1. Those labels are exempt (the verdict's record counts them); fp32 matches exactly; a wrong label elsewhere
    would still fail (tests/test_labels.py)."""
    accuracy_project(pytester, TIES + "CASES = [TIES_CASE]")
    result = pytester.runpytest(*FAST, "--precision", "fp32,fp16", "-k", "opt", "--results", "r.json")
    result.assert_outcomes(passed=2)
    (label,) = record(pytester, "test_accuracy[ties-fp16-opt-ort]")["accuracy"]  # type: ignore[misc]
    assert label["failure"] is None
    assert (label["exemption"]["differ"], label["exemption"]["exempt"], label["exemption"]["total"]) == (4, 4, 16)
    assert label["exemption"]["note"].startswith(
        "4 of 16 labels differ, all where the reference's top-1/top-2 margin on 'scores' < bound"
    )
    (exact,) = record(pytester, "test_accuracy[ties-fp32-opt-ort]")["accuracy"]  # type: ignore[misc]
    assert exact["failure"] is None and exact["exemption"] is None


def test_exempt_labels_are_said_in_the_terminal_summary_and_the_html_verdict_row(pytester: pytest.Pytester) -> None:
    """A `pass` that holds differing labels says so to a person: one note line per such test in the terminal
    summary, and the same words in that test's row of the HTML report's verdicts; fp32 (no exemption) says nothing."""
    accuracy_project(pytester, TIES + "CASES = [TIES_CASE]")
    result = pytester.runpytest(*FAST, "--precision", "fp32,fp16", "-k", "opt", "--results", "r.json")
    result.assert_outcomes(passed=2)
    note = "'label': 4 of 16 differ, all inside the scores' error bound * exempt"
    result.stdout.fnmatch_lines([f"labels: test_accuracy[[]ties-fp16-opt-ort[]] {note}"])
    assert [line for line in result.outlines if line.startswith("labels:")] == [
        line for line in result.outlines if "ties-fp16-opt-ort] 'label'" in line
    ]
    page = (pytester.path / "r.html").read_text()
    verdicts = page[page.index('<section id="verdicts">') :]
    row = next(r for r in verdicts.split("<tr>") if "<code>test_accuracy[ties-fp16-opt-ort]</code>" in r)
    assert "labels: &#x27;label&#x27;: 4 of 16 differ, all inside the scores&#x27; error bound" in row
    fp32_row = next(r for r in verdicts.split("<tr>") if "<code>test_accuracy[ties-fp32-opt-ort]</code>" in r)
    assert "labels:" not in fp32_row


def test_the_fuzz_tests_exempt_near_tie_labels_as_the_accuracy_test_does(pytester: pytest.Pytester) -> None:
    make_project(pytester, TIES + "CASES = [TIES_CASE]")
    pytester.makepyfile(test_matrix="from harness.suite import test_fuzz_inside_profile\n")
    result = pytester.runpytest(
        *FAST, "--precision", "fp16", "--hypothesis-profile", "harness-ci", "--fuzz-examples", "5"
    )
    result.assert_outcomes(passed=1)


def test_a_label_wrong_where_the_margin_is_wide_fails_saying_which_differ_and_is_localized(
    pytester: pytest.Pytester,
) -> None:
    """An engine that gets one clear label wrong (patched in by the session's conftest) fails, the verdict counting
    the exempt near ties apart; a case with no float output is localized at the precision's own limit (it raised
    "min() arg is an empty sequence" before)."""
    wrong_label = engine_outputs_changed(
        "outputs['label'] = outputs['label'].copy()",
        "outputs['label'][1] = (outputs['label'][1] + 1) % 4",
    )
    accuracy_project(pytester, TIES + wrong_label + "CASES = [TIES_CASE]")
    result = pytester.runpytest(*FAST, "--precision", "fp16", "-k", "opt", "--results", "r.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            (
                "*output 'label': 5 of 16 labels differ: 4 where the reference's top-1/top-2 margin on 'scores' < "
                "bound*1 elsewhere, which must match*Localized on onnxruntime, unoptimized: *"
            )
        ]
    )
    (label,) = record(pytester, "test_accuracy[ties-fp16-opt-ort]")["accuracy"]  # type: ignore[misc]
    assert (label["exemption"]["differ"], label["exemption"]["exempt"]) == (5, 4)
