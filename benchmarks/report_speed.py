"""Speed and size of the HTML report (harness/results/html.py) of the default matrix, on the machine this runs on.

The results document is real: the main job on ONNX Runtime (three cases, every precision, every corner,
`--hypothesis-profile harness-ci`) run twice, the first recording baselines and the second compared with
them, so that the report draws every figure (heat map, latency per case, baseline ratios). The two runs are
cached under .harness/bench/report-speed/ (--fresh runs them again).

  1. writing the report of that document takes <= 3 s: a fresh interpreter imports the renderer, types the
     document, renders and writes it, matplotlib's first import included (what a session pays at its end); the median of 3 runs
  2. the report is <= 5 MB
  3. it is reproducible: every write gives the same bytes

Usage: python benchmarks/report_speed.py [--fresh] [--json OUT]   (from the repository root); exits 1 on a
missed target.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from foundation import missed_targets  # the foundation's verdict: print what was missed, exit 1

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".harness" / "bench" / "report-speed"
WRITE_LIMIT_S = 3.0
SIZE_LIMIT_BYTES = 5_000_000
REPEATS = 3
# A fresh interpreter: import the renderer (matplotlib with it, lazily), type the document as the session does
# (results_document.from_session), render and write; seconds on stdout.
TIMED_WRITE = """
import json, sys, time
from pathlib import Path
contents = json.loads(Path(sys.argv[1]).read_text())
start = time.perf_counter()
from harness.results import html, document as results_document
html.write(Path(sys.argv[2]), results_document.from_session(contents, sys.argv[1]))
print(time.perf_counter() - start)
"""


def results_document(fresh: bool) -> Path:
    """The main job's results, compared with baselines it recorded the run before (cached)."""
    results = CACHE / "results.json"
    if results.is_file() and not fresh:
        return results
    shutil.rmtree(CACHE, ignore_errors=True)
    main_job = [sys.executable, "-m", "pytest", "cases", "-q", "-p", "no:cacheprovider"]
    main_job += ["--hypothesis-profile", "harness-ci", "--baselines", str(CACHE / "baselines"), "--harness-html=off"]
    subprocess.run([*main_job, "--results", str(CACHE / "baseline.json"), "--update-baselines"], cwd=REPO, check=False)
    # A latency test may regress against the baseline on a busy machine: the run still makes the document.
    subprocess.run([*main_job, "--results", str(results)], cwd=REPO, check=False)
    if not results.is_file():
        raise SystemExit(f"the main job wrote no {results}: run it by hand to see why")
    return results


def timed_write(document: Path, report: Path) -> float:
    done = subprocess.run(
        [sys.executable, "-c", TIMED_WRITE, str(document), str(report)],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    )
    return float(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fresh", action="store_true", help="run the main job again instead of using the cache")
    parser.add_argument("--json", type=Path, help="also write the numbers to this file")
    args = parser.parse_args()
    document = results_document(args.fresh)
    tests = len(json.loads(document.read_text())["tests"])
    with tempfile.TemporaryDirectory(prefix="harness-report-bench-") as folder:
        reports = [Path(folder) / f"report-{index}.html" for index in range(REPEATS)]
        seconds = [timed_write(document, report) for report in reports]
        contents = [report.read_bytes() for report in reports]
    write_s, size = statistics.median(seconds), len(contents[0])
    numbers = {
        "tests": tests,
        "write_s_median": round(write_s, 3),
        "write_s": [round(s, 3) for s in seconds],
        "bytes": size,
        "svg_figures": contents[0].count(b"<svg"),
        "reproducible": len(set(contents)) == 1,
    }
    print(json.dumps(numbers, indent=1))
    if args.json:
        args.json.write_text(json.dumps(numbers, indent=1))
    return missed_targets(
        (write_s > WRITE_LIMIT_S, f"writing the report took {write_s:.2f} s > {WRITE_LIMIT_S} s (median of {REPEATS})"),
        (size > SIZE_LIMIT_BYTES, f"the report is {size / 1e6:.2f} MB > {SIZE_LIMIT_BYTES / 1e6:g} MB"),
        (len(set(contents)) != 1, "two writes of the same document gave different bytes"),
    )


if __name__ == "__main__":
    sys.exit(main())
