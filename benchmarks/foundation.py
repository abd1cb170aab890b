"""Speed targets of the foundation, measured on the machine this runs on.

  1. collecting the full matrix takes <= 1 s            (pytest_collection start to finish, median of 5
                                                         fresh processes; the process's wall time is shown too)
  2. a second session with a warm disk cache builds nothing  (counted in its results file)
  3. a cold run of the default matrix takes <= 60 s     (wall time of the whole pytest command)

Usage: python benchmarks/foundation.py [--json OUT]   (from the repository root)
Exits non-zero when a target is missed, so CI can run it as a check.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
COLLECT_LIMIT_S = 1.0
COLD_RUN_LIMIT_S = 60.0


def pytest_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "cases", "-q", "-p", "no:cacheprovider", *args]


def run(*args: str) -> float:
    """Wall time of one whole pytest session over the cases."""
    start = time.perf_counter()
    done = subprocess.run(pytest_command(*args), cwd=REPO, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"pytest failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return wall


class CollectionTimer:
    """A pytest plugin that times the collection phase alone, from its first hook to its last."""

    def __init__(self) -> None:
        self.start = self.end = 0.0

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self) -> None:
        self.start = time.perf_counter()

    def pytest_collection_finish(self) -> None:
        self.end = time.perf_counter()


def time_collection_here() -> None:
    """Child-process side: collect once and print {collect_s, tests}."""
    timer = CollectionTimer()
    collected: list[int] = []

    class Count:
        def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
            collected.append(len(items))

    code = pytest.main(["cases", "--collect-only", "-q", "-p", "no:cacheprovider"], plugins=[timer, Count()])
    print(json.dumps({"collect_s": timer.end - timer.start, "tests": collected[-1], "exit": int(code)}))


def collection_seconds() -> tuple[float, float, int]:
    """Median over 5 fresh processes of the collection phase and of the whole process's wall time."""
    phases, walls, count = [], [], 0
    for _ in range(5):
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, __file__, "--time-collection"], cwd=REPO, capture_output=True, text=True, check=True
        )
        walls.append(time.perf_counter() - start)
        numbers = json.loads(done.stdout.strip().splitlines()[-1])
        phases.append(numbers["collect_s"])
        count = numbers["tests"]
    return statistics.median(phases), statistics.median(walls), count


def builds_in(results: Path) -> int:
    """Engines built (not loaded from the disk cache); tests sharing an engine share its build record."""
    tests = json.loads(results.read_text())["tests"]
    return len({test["build"]["key"] for test in tests if test["build"] is not None and not test["build"]["cached"]})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, help="also write the numbers to this file")
    parser.add_argument("--time-collection", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.time_collection:
        time_collection_here()
        return 0
    with tempfile.TemporaryDirectory(prefix="harness-bench-") as scratch:
        cache = Path(scratch) / "engines"
        collect_s, collect_process_s, count = collection_seconds()
        cold_s = run("--engine-cache", str(cache), "--results", str(Path(scratch) / "cold.json"))
        warm_s = run("--engine-cache", str(cache), "--results", str(Path(scratch) / "warm.json"))
        cold_builds = builds_in(Path(scratch) / "cold.json")
        warm_builds = builds_in(Path(scratch) / "warm.json")
    numbers = {
        "tests_collected": count,
        "collect_s_median_of_5": round(collect_s, 4),
        "collect_process_wall_s_median_of_5": round(collect_process_s, 2),
        "cold_run_wall_s": round(cold_s, 2),
        "cold_run_builds": cold_builds,
        "warm_run_wall_s": round(warm_s, 2),
        "warm_run_builds": warm_builds,
    }
    print(json.dumps(numbers, indent=1))
    if args.json:
        args.json.write_text(json.dumps(numbers, indent=1))
    return missed_targets(
        (collect_s > COLLECT_LIMIT_S, f"collection took {collect_s:.2f} s > {COLLECT_LIMIT_S} s"),
        (warm_builds != 0, f"the warm run built {warm_builds} engines, expected 0"),
        (cold_builds == 0, "the cold run built nothing: the cache was not cold"),
        (cold_s > COLD_RUN_LIMIT_S, f"the cold run took {cold_s:.1f} s > {COLD_RUN_LIMIT_S} s"),
    )


def missed_targets(*checks: tuple[bool, str]) -> int:
    """Print each missed target (a check whose first item is True); the exit status: 1 if any was missed."""
    missed = [message for failed, message in checks if failed]
    for message in missed:
        print(f"MISSED: {message}", file=sys.stderr)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
