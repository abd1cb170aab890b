"""`python -m harness compare` at fleet scale: a results file of 100,000 tests (many CI shards merged) must compare
in <= 30 s and <= 1 GB peak RSS on the 2-core CI machine (issue 18, row 18: it was killed at 900 s and 2.3 GB).

The file is built from a real run's results file (`pytest cases --results R.json`): its records are replicated with
new ids (each copy's case renamed `<case>_<copy>`), samples and all, until it holds --tests tests; it is then
compared with itself by `python -m harness compare` in a fresh interpreter, which this script times and whose peak
RSS it reads from the kernel (wait4). A comparison of a file with itself judges every test like any other (rank
test, CIs, accuracy), so it costs what a real comparison costs. The report side has its own benchmark
(benchmarks/fleet_scale.py).

Usage, from the repository root:
    python benchmarks/compare_scale.py [--source R.json] [--tests N] [--keep DIR]
Prints the file's size, seconds and peak RSS, and exits 1 when a target is missed (2 when the source is unusable).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

TARGET_S = 30.0
TARGET_RSS_BYTES = 1_000_000_000


def build(source: Path, tests: int, out: Path) -> int:
    """Write a results file of `tests` tests replicated from `source`, one record at a time, byte for byte as
    the harness writes one (schema.write, `harness merge`: json.dumps with indent=1); returns its size."""
    document = json.loads(source.read_text(encoding="utf-8"))
    records: list[Mapping[str, object]] = document.pop("tests")
    if not records:
        raise SystemExit(f"{source} holds no tests: pass a results file of a real run (pytest cases --results R.json)")
    head = json.dumps(document, indent=1)[: -len("\n}")]  # "tests" follows the other fields, as in schema.document
    with out.open("w", encoding="utf-8") as handle:
        handle.write(head + ',\n "tests": [\n')
        for index in range(tests):
            copy, record = divmod(index, len(records))
            nested = json.dumps(_renamed(records[record], copy), indent=1).replace("\n", "\n  ")  # depth 2
            handle.write((",\n  " if index else "  ") + nested)
        handle.write("\n ]\n}")
    return out.stat().st_size


def _renamed(record: Mapping[str, object], copy: int) -> dict[str, object]:
    """The record as copy `copy` of its case: every id that names the case names `<case>_<copy>`."""
    case = str(record["case"])
    renamed = f"{case}_{copy}"
    return {
        **record,
        "case": renamed,
        "id": str(record["id"]).replace(f"[{case}-", f"[{renamed}-", 1),
        "nodeid": str(record.get("nodeid", "")).replace(f"[{case}-", f"[{renamed}-", 1),
        "point": str(record.get("point", "")).replace(f"{case}-", f"{renamed}-", 1),
    }


def run_compare(path: Path) -> tuple[float, float, int, int]:
    """(seconds, CPU seconds, peak RSS in bytes, exit status) of `python -m harness compare PATH PATH`, its output
    discarded. The CPU seconds say what the wall time would be on an idle machine (compare runs on one core)."""
    started = time.perf_counter()
    environment = {**os.environ, "GITHUB_STEP_SUMMARY": ""}
    process = subprocess.Popen(
        [sys.executable, "-m", "harness", "compare", str(path), str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=environment,
    )
    assert process.stderr is not None
    errors = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if process.returncode not in (0, 1):
        sys.stderr.write(errors.decode(errors="replace"))
    cpu = usage.ru_utime + usage.ru_stime
    return seconds, cpu, usage.ru_maxrss * 1024, process.returncode  # ru_maxrss is in KiB on Linux


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=Path("/tmp/real-run.json"), help="a real run's results file")
    parser.add_argument("--tests", type=int, default=100_000, help="tests in the built file (100000)")
    parser.add_argument("--keep", type=Path, help="write the built file into this folder and keep it")
    args = parser.parse_args()
    if not args.source.is_file():
        print(f"no results file {args.source}: run `pytest cases --results {args.source}` first", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"compare-scale-{args.tests}.json"
        size = build(args.source, args.tests, path)
        seconds, cpu, rss, status = run_compare(path)
    print(f"compare of a {args.tests:,}-test results file ({size / 1e6:.0f} MB) with itself: exit {status}")
    print(f"  time     {seconds:8.1f} s   (target <= {TARGET_S:.0f} s); CPU time {cpu:.1f} s")
    print(f"  peak RSS {rss / 1e6:8.0f} MB  (target <= {TARGET_RSS_BYTES / 1e6:.0f} MB)")
    missed = [
        what
        for what, bad in (
            ("time", seconds > TARGET_S),
            ("memory", rss > TARGET_RSS_BYTES),
            ("exit status", status not in (0, 1)),
        )
        if bad
    ]
    print("targets met" if not missed else f"MISSED: {', '.join(missed)}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
