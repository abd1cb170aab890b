"""Speed targets of the real-builder lane: TensorRT for RTX building the default matrix, no GPU.

  1. a cold build-only run (empty engine cache) of --backend rtx,rtx-net takes <= 60 s
  2. a warm one (every engine found in the cache, 0 builds, counted in its results file) takes <= 8 s

Times are the wall time of the whole pytest command, as CI sees it. Needs the `rtx` extra
(pip install 'trt-harness[rtx]'); without it the benchmark says so and exits 2.

Usage: python benchmarks/rtx_build_lane.py [--json OUT]   (from the repository root)
Exits non-zero when a target is missed, so CI can run it as a check.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
from pathlib import Path

from foundation import builds_in, missed_targets, run  # the foundation's session runner, counter, verdict

COLD_LIMIT_S = 60.0
# Was 5 s, set on the 2-core AMD EPYC VM (4.1-4.3 s there). The CPU of CI's machine varies: on the 2-core Intel
# Xeon VM the unchanged code of 2026-12-02 takes 6.2-6.6 s warm (10-11 s cold), interpreter, imports and the
# derivations that find the cache keys. 8 s holds the overhead on either and still fails a run that rebuilds
# (the cold run takes longer); that nothing is rebuilt is counted exactly (warm_run_builds must be 0).
WARM_LIMIT_S = 8.0
LANE = ("--backend", "rtx,rtx-net", "--build-only")


def engines_in(results: Path) -> int:
    """Build tests that built (or found) an engine: a point the backend cannot do is skipped, not an engine."""
    tests = json.loads(results.read_text())["tests"]
    return sum(1 for test in tests if test["id"].startswith("test_build[") and test["verdict"] != "skip")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, help="also write the numbers to this file")
    args = parser.parse_args()
    if importlib.util.find_spec("tensorrt_rtx") is None:
        print("TensorRT for RTX is not installed: pip install 'trt-harness[rtx]'", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="harness-rtx-bench-") as scratch:
        cache, cold, warm = Path(scratch) / "engines", Path(scratch) / "cold.json", Path(scratch) / "warm.json"
        cold_s = run(*LANE, "--engine-cache", str(cache), "--results", str(cold))
        warm_s = run(*LANE, "--engine-cache", str(cache), "--results", str(warm))
        numbers = {
            "engines": engines_in(cold),
            "cold_run_wall_s": round(cold_s, 2),
            "cold_run_builds": builds_in(cold),
            "warm_run_wall_s": round(warm_s, 2),
            "warm_run_builds": builds_in(warm),
        }
    print(json.dumps(numbers, indent=1))
    if args.json:
        args.json.write_text(json.dumps(numbers, indent=1))
    cold_builds, warm_builds, engines = numbers["cold_run_builds"], numbers["warm_run_builds"], numbers["engines"]
    return missed_targets(
        (cold_builds != engines, f"the cold run built {cold_builds} of {engines} engines: the cache was not cold"),
        (warm_builds != 0, f"the warm run built {warm_builds} engines, expected 0"),
        (cold_s > COLD_LIMIT_S, f"the cold run took {cold_s:.1f} s > {COLD_LIMIT_S} s"),
        (warm_s > WARM_LIMIT_S, f"the warm run took {warm_s:.1f} s > {WARM_LIMIT_S} s"),
    )


if __name__ == "__main__":
    sys.exit(main())
