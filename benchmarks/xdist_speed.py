"""Speed target of pytest-xdist on the default matrix: the accuracy and fuzz tests (the part that
spreads over workers; latency tests hold their device alone) with 2 workers against serial.

  1. with `-n 2 --dist loadgroup` the accuracy and fuzz part runs >= 1.6x faster than serial: the test phase, from the
     first test's start to the last one's end (benchmarks/phase_clock.py), so that the workers' start-up
     is reported apart (the whole command's wall time is shown too)
  2. the results are identical in content: the same test ids with the same verdicts

Usage: python benchmarks/xdist_speed.py [--json OUT]   (from the repository root; needs pytest-xdist)
Exits non-zero when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from foundation import REPO, missed_targets

SPEEDUP_TARGET = 1.6
SELECTION = ("-k", "accuracy or fuzz")  # the default Hypothesis profile, as a plain `pytest cases` runs


def session(scratch: Path, name: str, *extra: str) -> dict[str, object]:
    """One pytest session over the cases: its wall time, test-phase time and verdicts by test id."""
    log, results = scratch / f"{name}.jsonl", scratch / f"{name}.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "benchmarks"), os.environ.get("PYTHONPATH", "")])}
    env["PHASE_CLOCK_LOG"] = str(log)
    command = [sys.executable, "-m", "pytest", "cases", "-q", "-p", "no:cacheprovider", "-p", "phase_clock"]
    command += [*SELECTION, "--engine-cache", str(scratch / f"{name}-engines"), "--results", str(results), *extra]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"pytest failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    phases = [json.loads(line) for line in log.read_text().splitlines()]
    tests = json.loads(results.read_text())["tests"]
    return {
        "wall_s": wall,
        "tests_s": max(p["end"] for p in phases) - min(p["start"] for p in phases),
        "verdicts": {test["id"]: test["verdict"] for test in tests},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, help="also write the numbers to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="harness-xdist-bench-") as folder:
        scratch = Path(folder)
        serial = session(scratch, "serial")
        parallel = session(scratch, "parallel", "-n", "2", "--dist", "loadgroup")  # an engine's tests on one worker
    speedup = float(serial["tests_s"]) / float(parallel["tests_s"])  # type: ignore[arg-type]
    same = serial["verdicts"] == parallel["verdicts"]
    numbers = {
        "tests": len(serial["verdicts"]),  # type: ignore[arg-type]
        "serial_tests_s": round(float(serial["tests_s"]), 2),  # type: ignore[arg-type]
        "parallel_tests_s": round(float(parallel["tests_s"]), 2),  # type: ignore[arg-type]
        "speedup_tests": round(speedup, 2),
        "serial_wall_s": round(float(serial["wall_s"]), 2),  # type: ignore[arg-type]
        "parallel_wall_s": round(float(parallel["wall_s"]), 2),  # type: ignore[arg-type]
        "same_ids_and_verdicts": same,
    }
    print(json.dumps(numbers, indent=1))
    if args.json:
        args.json.write_text(json.dumps(numbers, indent=1))
    return missed_targets(
        (
            speedup < SPEEDUP_TARGET,
            f"2 workers ran the tests {speedup:.2f}x faster than serial, target {SPEEDUP_TARGET}x",
        ),
        (not same, "the parallel run's test ids or verdicts differ from the serial run's"),
    )


if __name__ == "__main__":
    sys.exit(main())
