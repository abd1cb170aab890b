"""int8 verdicts do not depend on the CPU: the harness's ONNX Runtime engine of a Q/DQ model (built with the Q/DQ
fusion off) computes what TensorRT computes (int8 products, 32-bit accumulation, the model's scales) on any x86-64
CPU, while ONNX Runtime's default session of the same model, which fuses it into ONNX Runtime's int8 kernels,
saturates on a CPU without VNNI: why the harness turns the fusion off.

Other CPUs are real processors' instruction sets under qemu-x86_64's emulation (Debian's qemu-user): AMD EPYC
Milan (Zen 3: AVX2, no AVX-512, no VNNI) and Intel Nehalem (SSE4.2), whatever CPU runs the tests. Skipped without
qemu-x86_64 unless HARNESS_REQUIRE_QEMU=1, as in CI (.ci/run installs it).
"""

from __future__ import annotations

import functools
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper

from harness.environment import int8_features
from tests.int8_probe import OUTPUT_SCALE, engine_of, exact_int32, model_bytes, sessions

REPO = Path(__file__).resolve().parents[1]
# The features with which the fused int8 kernels accumulate products in 32 bits (no 16-bit pair sums).
WIDE_ACCUMULATION = {"avx512_vnni", "avx_vnni", "amx_int8", "asimddp"}


def test_the_harness_engine_computes_the_exact_int32_result_on_this_cpu() -> None:
    np.testing.assert_array_equal(sessions()["harness"], exact_int32())


def test_onnxruntime_default_session_is_exact_here_where_this_cpu_accumulates_int8_in_32_bits() -> None:
    if not WIDE_ACCUMULATION & set(int8_features()):
        pytest.skip(f"this CPU ({', '.join(int8_features()) or 'no int8 features'}) may saturate: the emulated tests")
    np.testing.assert_array_equal(sessions()["onnxruntime_default"], exact_int32())


def test_the_results_say_what_an_int8_engine_computes_and_a_float_engine_says_nothing_of_it() -> None:
    """Both placements (an output QuantizeLinear after the Conv, which ONNX Runtime would fuse, and TensorRT's, the
    harness recipe's, without one) say the Q/DQ fusion is off; a float engine has no such entry."""
    for model in (model_bytes(), model_bytes(output_quantized=False)):
        said = engine_of(model).facts()["int8"]
        assert isinstance(said, str) and "disable_quant_qdq = 1), for accuracy and latency alike" in said
    relu = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "float",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    float_model = helper.make_model(relu, opset_imports=[helper.make_opsetid("", 13)])
    float_model.ir_version = 8  # built here without the derivation, which fits the IR to what onnxruntime reads
    assert "int8" not in engine_of(float_model.SerializeToString()).facts()


def test_the_probe_saturates_16_bit_pair_sums() -> None:
    """The probe's model is a real test of saturation: some u8 x s8 pair sums exceed int16 (what AVX2 holds)."""
    from tests.int8_probe import INPUT_SCALE, inputs, weights

    activations_u8 = np.round(inputs() / INPUT_SCALE).astype(np.int64)[0, :, 0, 0] + 128  # x86 kernels shift to u8
    products = activations_u8 * weights()[0, :, 0, 0].astype(np.int64)
    pair_sums = products[0::2] + products[1::2]
    assert np.abs(pair_sums).max() > np.iinfo(np.int16).max


def _qemu() -> str:
    qemu = shutil.which("qemu-x86_64")
    if platform.machine() != "x86_64":
        pytest.skip("the emulated CPUs are x86-64 ones; this machine is " + platform.machine())
    if qemu is None:
        if os.environ.get("HARNESS_REQUIRE_QEMU") == "1":
            pytest.fail("HARNESS_REQUIRE_QEMU=1 but qemu-x86_64 is missing: apt-get install qemu-user")
        pytest.skip("qemu-x86_64 is missing: apt-get install qemu-user")
    return qemu


@functools.cache  # one emulated run per CPU (about 10 s each)
def _run_on(cpu: str) -> dict[str, np.ndarray]:
    """The probe's sessions on the emulated `cpu`: the same interpreter and packages, run under qemu-x86_64."""
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, sys.path)])}
    interpreter = str(Path(sys.executable).resolve())  # qemu runs the binary itself; PYTHONPATH brings the venv
    done = subprocess.run(
        [_qemu(), "-cpu", cpu, interpreter, "-m", "tests.int8_probe"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=environment,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    return {name: np.array(found[name]) for name in ("harness", "onnxruntime_default")}


@pytest.mark.parametrize("cpu", ["EPYC-Milan", "Nehalem"])
def test_the_harness_engine_is_exact_on_other_cpus(cpu: str) -> None:
    np.testing.assert_array_equal(_run_on(cpu)["harness"], exact_int32())


def test_on_zen3_onnxruntime_default_session_saturates() -> None:
    """Why the harness turns the Q/DQ fusion off: on AVX2 without VNNI ONNX Runtime's default session of the same
    model is far from the int32 result."""
    found = _run_on("EPYC-Milan")
    error = np.abs(found["onnxruntime_default"] - exact_int32()).max()
    assert error >= 8 * OUTPUT_SCALE, f"the fused kernels were expected to saturate on Zen 3, max error {error}"
