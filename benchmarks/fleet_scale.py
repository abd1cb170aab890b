"""Fleet scale: the report and the comparison of a results file of 100,000 tests (many CI shards merged).

The file is built from a real run's results file (`pytest cases --results X`): its records replicated under new
case names (copy k of case `mnist` is `mnist~k`, its ids, node ids, points and engine keys renamed with it) up to
--tests records, written as the session writes a results file. Then, each in a fresh process on this machine:

  1. `python -m harness report FILE` takes <= 60 s and <= 1 GB peak RSS, and its HTML is <= 20 MB
  2. `python -m harness compare FILE FILE` takes <= 30 s and <= 1 GB peak RSS (skipped with --no-compare)

Peak RSS is the child's own (os.wait4's rusage, what resource.getrusage(RUSAGE_CHILDREN) reports of it); its CPU
seconds are printed beside the wall seconds (on a shared machine the wall time includes waiting for a core). Only
the targets measured decide the exit status: 1 when one is missed.

Usage: python benchmarks/fleet_scale.py [--source RESULTS.json] [--tests N] [--no-compare] [--keep DIR]
(from the repository root). Without --source, the main job (`pytest cases`) runs once and its results file
is cached under .harness/bench/fleet-scale/.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from foundation import missed_targets  # the foundation's verdict: print what was missed, exit 1

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".harness" / "bench" / "fleet-scale"
REPORT_LIMIT_S = 60.0
COMPARE_LIMIT_S = 30.0
RSS_LIMIT_BYTES = 1_000_000_000
HTML_LIMIT_BYTES = 20_000_000


def real_run(source: Path | None) -> Path:
    """A real run's results file: the one given, else the main job's, run once and cached."""
    if source is not None:
        return source
    results = CACHE / "source.json"
    if not results.is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "pytest", "cases", "-q", "-p", "no:cacheprovider", "--harness-html=off"]
        subprocess.run([*command, "--results", str(results)], cwd=REPO, check=False)  # failing tests still write it
        if not results.is_file():
            raise SystemExit(f"the main job wrote no {results}: run it by hand to see why")
    return results


def renamed(record: Mapping[str, object], copy: int) -> dict[str, object]:
    """One record as the test of copy `copy` of its case: every field that names the case or its engine renamed."""
    case = str(record.get("case"))
    new = f"{case}~{copy}"
    out = dict(record)
    out["case"] = new
    for key in ("id", "nodeid"):  # test_accuracy[mnist-fp16-opt-ort]
        out[key] = str(record.get(key)).replace(f"[{case}-", f"[{new}-", 1)
    point = str(record.get("point"))
    out["point"] = new + point.removeprefix(case) if point.startswith(case) else point
    build = record.get("build")
    if isinstance(build, Mapping) and build.get("key"):  # each copy its own engine
        out["build"] = {**build, "key": f"{build['key']}~{copy}"}
    return out


def replicated(records: list[Mapping[str, object]], count: int) -> Iterator[dict[str, object]]:
    for index in range(count):
        yield renamed(records[index % len(records)], index // len(records))


def build_file(source: Path, count: int, target: Path) -> dict[str, int]:
    """Write the fleet's results file: the source document with `count` replicated tests, as results_document.write writes
    it (indent 1), one record at a time."""
    document = json.loads(source.read_text())
    records = document["tests"]
    if not records:
        raise SystemExit(f"{source} holds no test: pass the results file of a run that ran some")
    head = {key: value for key, value in document.items() if key != "tests"}
    head["merged_from"] = [f"shard-{index}.json" for index in range(max(1, count // 1000))]
    with target.open("w", encoding="utf-8") as out:
        out.write(json.dumps(head, indent=1)[:-2] + ',\n "tests": [\n')
        for index, record in enumerate(replicated(records, count)):
            # Each record at the depth results_document.write puts it (indent 1, inside "tests"): the very bytes it writes.
            out.write((",\n" if index else "") + textwrap.indent(json.dumps(record, indent=1, allow_nan=False), "  "))
        out.write("\n ]\n}\n")
    cases = {str(record.get("case")) for record in records}
    return {"source_tests": len(records), "tests": count, "cases": len(cases) * -(-count // len(records))}


def measured(command: list[str]) -> dict[str, object]:
    """Wall seconds, peak RSS and exit status of one command in a fresh process."""
    with tempfile.TemporaryFile() as stderr:  # a file, not a pipe: a long traceback cannot block the child
        start = time.perf_counter()
        child = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=stderr)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)  # so that Popen does not wait for it again
        stderr.seek(0)
        errors = stderr.read().decode(errors="replace")
    return {
        "seconds": round(seconds, 2),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),  # what a busy machine's wall time hides
        "peak_rss_bytes": usage.ru_maxrss * 1024,  # kilobytes on Linux
        "rc": child.returncode,
        "stderr": errors[-2000:],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, help="a real run's results file (default: run the main job once)")
    parser.add_argument("--tests", type=int, default=100_000, help="tests in the fleet's file (default 100000)")
    parser.add_argument("--no-compare", action="store_true", help="measure the report only")
    parser.add_argument("--keep", type=Path, help="write the fleet's file and report into this folder and keep them")
    parser.add_argument("--json", type=Path, help="also write the numbers to this file")
    args = parser.parse_args()
    source = real_run(args.source)
    with tempfile.TemporaryDirectory(prefix="harness-fleet-") as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        fleet, report = folder / "fleet.json", folder / "fleet.html"
        numbers: dict[str, object] = build_file(source, args.tests, fleet)
        numbers["results_bytes"] = fleet.stat().st_size
        python = [sys.executable, "-m", "harness"]
        shown = numbers["report"] = measured([*python, "report", str(fleet), "-o", str(report)])
        numbers["html_bytes"] = report.stat().st_size if report.is_file() else None
        compared = None if args.no_compare else measured([*python, "compare", str(fleet), str(fleet)])
        numbers["compare"] = compared
    print(json.dumps(numbers, indent=1))
    if args.json:
        args.json.write_text(json.dumps(numbers, indent=1))
    return missed_targets(*_report_targets(shown, numbers["html_bytes"]), *_compare_targets(compared))


def _report_targets(shown: Mapping[str, object], html_bytes: object) -> list[tuple[bool, str]]:
    seconds, rss = float(str(shown["seconds"])), int(str(shown["peak_rss_bytes"]))
    size = int(str(html_bytes)) if html_bytes is not None else None
    return [
        (shown["rc"] != 0, f"report exited {shown['rc']}: {shown['stderr']}"),
        (seconds > REPORT_LIMIT_S, f"report took {seconds:.1f} s > {REPORT_LIMIT_S:g} s"),
        (rss > RSS_LIMIT_BYTES, f"report peaked at {rss / 1e9:.2f} GB RSS > {RSS_LIMIT_BYTES / 1e9:g} GB"),
        (size is None or size > HTML_LIMIT_BYTES, f"the HTML report is {size} bytes > {HTML_LIMIT_BYTES:,}"),
    ]


def _compare_targets(compared: Mapping[str, object] | None) -> list[tuple[bool, str]]:
    """compare's exit status 0 or 1 is its verdict on the run; 2 or a crash means it could not compare."""
    if compared is None:
        return []
    seconds, rss = float(str(compared["seconds"])), int(str(compared["peak_rss_bytes"]))
    return [
        (compared["rc"] not in (0, 1), f"compare exited {compared['rc']}: {compared['stderr']}"),
        (seconds > COMPARE_LIMIT_S, f"compare took {seconds:.1f} s > {COMPARE_LIMIT_S:g} s"),
        (rss > RSS_LIMIT_BYTES, f"compare peaked at {rss / 1e9:.2f} GB RSS > {RSS_LIMIT_BYTES / 1e9:g} GB"),
    ]


if __name__ == "__main__":
    sys.exit(main())
