"""Speed of shape fuzzing, on the machine this runs on.

  1. identity on ONNX Runtime: >= 200 examples/s  (the inside-profile property run directly, 1000 examples,
     engine built beforehand: what a fuzz test spends per drawn shape)
  2. every case's fuzz tests under the CI profile: <= 60 s  (wall time of the pytest command)

Usage: python benchmarks/fuzz_speed.py [--json OUT]   (from the repository root); exits 1 on a missed target.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

EXAMPLES = 1000
EXAMPLES_PER_S_TARGET = 200.0
CI_PROFILE_TARGET_S = 60.0


def identity_examples_per_second() -> float:
    from hypothesis import settings

    from cases.identity import CASE
    from harness import fuzz
    from harness.backends import BackendOptions, BuildRequest
    from harness.backends.ort import OnnxRuntimeBackend
    from harness.case import Precision
    from harness.compare import compare_outputs
    from harness.precision.derive import DerivedModel
    from harness.run import run_engine

    backend = OnnxRuntimeBackend(BackendOptions())
    request = BuildRequest(CASE, Precision.FP32, 0, DerivedModel(Precision.FP32, CASE.onnx_model().SerializeToString()))
    engine = backend.load(backend.build(request).data, request)
    calls = 0

    def matches(shapes: dict[str, tuple[int, ...]]) -> None:
        nonlocal calls
        calls += 1
        inputs = CASE.generate_inputs(shapes, np.random.default_rng(calls))
        errors = compare_outputs(CASE, Precision.FP32, run_engine(CASE, 0, engine, inputs), CASE.reference(inputs))
        assert not [e for e in errors if e.failure]

    fuzz.register_profiles()  # the plugin does this on import; this script does not load it
    config = settings(fuzz.fuzz_settings("harness-ci", EXAMPLES), database=None)
    start = time.perf_counter()
    fuzz.run_property(fuzz.shapes_inside(CASE, 0), matches, config, examples=fuzz.corners(CASE, 0))
    return calls / (time.perf_counter() - start)


def ci_profile_wall_s() -> float:
    """Cold: no engine cache, so the builds are part of the time, as in a fresh CI checkout."""
    with tempfile.TemporaryDirectory(prefix="harness-fuzz-") as scratch:
        command = [
            *(sys.executable, "-m", "pytest", "cases", "-q", "-p", "no:cacheprovider", "-k", "fuzz"),
            *("--hypothesis-profile", "harness-ci", "--engine-cache", "off"),
            *("--results", str(Path(scratch) / "results.json")),
        ]
        start = time.perf_counter()
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"the fuzz tests failed ({done.returncode}):\n{done.stdout[-3000:]}")
    return wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, help="also write the numbers to this file")
    args = parser.parse_args()
    rate = identity_examples_per_second()
    wall = ci_profile_wall_s()
    numbers = {"identity_ort_examples_per_s": round(rate, 1), "all_cases_ci_profile_wall_s": round(wall, 2)}
    print(json.dumps(numbers, indent=1))
    if args.json:
        args.json.write_text(json.dumps(numbers, indent=1))
    missed = []
    if rate < EXAMPLES_PER_S_TARGET:
        missed.append(f"identity fuzzing ran {rate:.0f} examples/s < {EXAMPLES_PER_S_TARGET:.0f}")
    if wall > CI_PROFILE_TARGET_S:
        missed.append(f"the fuzz tests under harness-ci took {wall:.1f} s > {CI_PROFILE_TARGET_S:.0f} s")
    for message in missed:
        print(f"MISSED: {message}", file=sys.stderr)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
