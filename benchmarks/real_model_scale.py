"""Scale of a real model (issue 17): a ResNet-50 (25.5 M weights, 1x3x224x224) through the whole matrix on ONNX
Runtime at fp32, fp16 and int8, as a user runs it: a spec file, one pytest session, a fresh engine cache.

  The model is ONNX's own light_resnet50 (IR 3, opset 9) with seeded random weights (benchmarks/real_models.py);
  its input is an image batch, uniform in [0, 1). The session builds, calibrates int8 (8 batches), checks accuracy
  against ONNX Runtime at float32, fuzzes (the harness-ci profile) and times every point. Targets on the 2-core CI
  machine: <= 90 s of wall time and <= 2.5 GB peak resident memory (the pytest process, measured by the kernel:
  getrusage's ru_maxrss of the child).

Usage: python benchmarks/real_model_scale.py [--json OUT]   (from the repository root); exits 1 on a missed target.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from foundation import missed_targets  # the foundation's verdict: print what was missed, exit 1
from real_models import float32_model, input_shape

LIMIT_S = 90.0
LIMIT_RSS_GB = 2.5
PRECISIONS = ("fp32", "fp16", "int8")


def write_spec(folder: Path) -> int:
    """resnet50.onnx and models.toml in `folder`; the model's weight count."""
    import onnx

    model = float32_model("resnet50")
    onnx.save(model, folder / "resnet50.onnx")
    name, _ = input_shape(model)
    (folder / "models.toml").write_text(
        "[[case]]\n"
        'name = "resnet50"\n'
        'model = "resnet50.onnx"\n'
        f"precisions = {json.dumps(list(PRECISIONS))}\n"
        f"[case.inputs.{json.dumps(name)}]\n"
        "uniform = [0.0, 1.0]\n"
    )
    return sum(int(onnx.numpy_helper.to_array(tensor).size) for tensor in model.graph.initializer)


def run_matrix(folder: Path) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """Wall seconds, peak RSS in GB and the pytest session of the whole matrix."""
    command = [
        sys.executable,
        "-m",
        "pytest",
        "--harness-spec",
        "models.toml",
        "--backend",
        "ort",
        "--precision",
        ",".join(PRECISIONS),
        "--hypothesis-profile",
        "harness-ci",
        "--engine-cache",
        ".harness/engines",  # fresh: the folder is new
        "--results",
        "results.json",
        "-p",
        "no:cacheprovider",
        "-q",
    ]
    start = time.perf_counter()
    session = subprocess.run(command, cwd=folder, capture_output=True, text=True, check=False)
    wall_s = time.perf_counter() - start
    peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2  # Linux: kilobytes
    return wall_s, peak_gb, session


def verdicts(results: Path) -> dict[str, str]:
    """Each test's verdict, from the session's results file."""
    if not results.is_file():
        return {}
    return {test["id"]: test["verdict"] for test in json.loads(results.read_text())["tests"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, help="also write the numbers to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="harness-real-model-") as scratch:
        folder = Path(scratch)
        weights = write_spec(folder)
        wall_s, peak_gb, session = run_matrix(folder)
        found = verdicts(folder / "results.json")
    summary = session.stdout.strip().splitlines()[-1] if session.stdout.strip() else session.stderr[-500:]
    numbers = {
        "model": "light_resnet50 with seeded weights",
        "weights": weights,
        "precisions": list(PRECISIONS),
        "wall_s": round(wall_s, 1),
        "peak_rss_gb": round(peak_gb, 2),
        "pytest_exit_status": session.returncode,
        "pytest_summary": summary,
        "verdicts": found,
    }
    print(json.dumps(numbers, indent=1))
    if args.json:
        args.json.write_text(json.dumps(numbers, indent=1))
    # The verdicts are reported, not targets (a random-weight model's int8 error is its own matter); a session
    # that could not run or that errored is a miss.
    ran = session.returncode in (0, 1) and "passed" in summary and "error" not in found.values()
    return missed_targets(
        (wall_s > LIMIT_S, f"the matrix took {wall_s:.1f} s > {LIMIT_S} s"),
        (peak_gb > LIMIT_RSS_GB, f"peak RSS {peak_gb:.2f} GB > {LIMIT_RSS_GB} GB"),
        (not ran, f"the pytest session did not run cleanly (status {session.returncode}): {summary}"),
    )


if __name__ == "__main__":
    sys.exit(main())
