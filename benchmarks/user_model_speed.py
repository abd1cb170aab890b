"""Speed of a new user's first run (issue 11): `init` + the first matrix run of a 100-layer model of their own.

  A generated user model (100 layers of MatMul -> Add -> Relu with named nodes, width 64, a dynamic batch) in an
  empty folder; harness.spec.skeleton() made into models.toml beside it; then the first `pytest --harness-spec
  models.toml` on ONNX Runtime at fp32 and fp16 (a subprocess with a fresh engine cache, --hypothesis-profile
  harness-ci): the whole, from the model file to the summary, takes <= 30 s.

Usage: python benchmarks/user_model_speed.py [--json OUT]   (from the repository root); exits 1 on a missed target.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from foundation import missed_targets  # the foundation's verdict: print what was missed, exit 1

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

LIMIT_S = 30.0
LAYERS = 100
WIDTH = 64


def user_model(path: Path) -> None:
    """LAYERS x (MatMul, Add, Relu), He-scaled weights from a fixed seed, input x [batch, WIDTH], output y."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes, weights, previous = [], [], "x"
    for layer in range(LAYERS):
        weight = rng.standard_normal((WIDTH, WIDTH)) * np.sqrt(2.0 / WIDTH)
        weights += [
            numpy_helper.from_array(weight.astype(np.float32), f"w{layer}"),
            numpy_helper.from_array(np.full(WIDTH, 0.01, np.float32), f"b{layer}"),
        ]
        output = "y" if layer == LAYERS - 1 else f"relu{layer}"
        nodes += [
            helper.make_node("MatMul", [previous, f"w{layer}"], [f"matmul{layer}"], name=f"matmul{layer}"),
            helper.make_node("Add", [f"matmul{layer}", f"b{layer}"], [f"add{layer}"], name=f"add{layer}"),
            helper.make_node("Relu", [f"add{layer}"], [output], name=f"relu{layer}"),
        ]
        previous = output
    graph = helper.make_graph(
        nodes,
        "user_model",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", WIDTH])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", WIDTH])],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)


def first_run(folder: Path) -> tuple[dict[str, float], subprocess.CompletedProcess[str]]:
    """Seconds of each step, from the model file to the end of the first pytest session, and that session."""
    from harness.spec import skeleton

    start = time.perf_counter()
    text = skeleton(folder / "user_model.onnx")
    (folder / "models.toml").write_text(text)
    init_s = time.perf_counter() - start
    command = [
        sys.executable,
        "-m",
        "pytest",
        "--harness-spec",
        "models.toml",
        "--backend",
        "ort",
        "--precision",
        "fp32,fp16",
        "--hypothesis-profile",
        "harness-ci",
        "--engine-cache",
        ".harness/engines",  # fresh: the folder is new
        "-p",
        "no:cacheprovider",
        "-q",
    ]
    start = time.perf_counter()
    session = subprocess.run(command, cwd=folder, capture_output=True, text=True, check=False)
    return {"init_s": init_s, "first_run_s": time.perf_counter() - start}, session


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, help="also write the numbers to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="harness-user-model-") as scratch:
        folder = Path(scratch)
        user_model(folder / "user_model.onnx")
        seconds, session = first_run(folder)
    total_s = seconds["init_s"] + seconds["first_run_s"]
    summary = session.stdout.strip().splitlines()[-1] if session.stdout.strip() else session.stderr[-500:]
    numbers = {
        "layers": LAYERS,
        "init_s": round(seconds["init_s"], 3),
        "first_run_s": round(seconds["first_run_s"], 2),
        "total_s": round(total_s, 2),
        "pytest_exit_status": session.returncode,
        "pytest_summary": summary,
    }
    print(json.dumps(numbers, indent=1))
    if args.json:
        args.json.write_text(json.dumps(numbers, indent=1))
    # Accuracy verdicts of a random-weight model are not this benchmark's subject; a session that could not run
    # (a usage error, an internal error, nothing collected) is.
    ran = session.returncode in (0, 1) and "passed" in summary
    return missed_targets(
        (total_s > LIMIT_S, f"init + the first run took {total_s:.1f} s > {LIMIT_S} s"),
        (not ran, f"the pytest session did not run (status {session.returncode}): {summary}"),
    )


if __name__ == "__main__":
    sys.exit(main())
