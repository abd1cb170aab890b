"""Baseline size per real model (issue 18 row 27: three real models' baselines took 5.1 MB, not reviewable in a pull
request). A real architecture (benchmarks/real_models.py, seeded weights) runs its whole matrix on ONNX Runtime at
fp32, fp16 and int8 with --update-baselines, as a user records baselines; the baseline file's size is the number.
Then the gate is checked against what was stored: a second session of the same model compares with the baseline, and
every latency test recorded in it must be judged against its entry (not "new": no baseline). full_records_kb is the size
the same passing records take whole, as a baseline held them before. Target: <= 50 kB per model.

Usage: python benchmarks/baseline_size.py [MODEL ...] [--json OUT]   (from the repository root; default squeezenet)
exits 1 on a missed target.
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
from real_models import NAMES, float32_model, input_shape

LIMIT_KB = 50.0
PRECISIONS = ("fp32", "fp16", "int8")


def write_spec(folder: Path, name: str) -> None:
    import onnx

    model = float32_model(name)
    onnx.save(model, folder / f"{name}.onnx")
    input_name, _ = input_shape(model)
    (folder / "models.toml").write_text(
        f'[[case]]\nname = "{name}"\nmodel = "{name}.onnx"\nprecisions = {json.dumps(list(PRECISIONS))}\n'
        f"[case.inputs.{json.dumps(input_name)}]\nuniform = [0.0, 1.0]\n"
    )


def session(folder: Path, results: str, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "pytest",
        "--harness-spec=models.toml",
        "--backend=ort",
        f"--precision={','.join(PRECISIONS)}",
        "--hypothesis-profile=harness-ci",
        "--engine-cache=engines",
        f"--results={results}",
        "--harness-html=off",
        "--baselines=baselines",
        "-p",
        "no:cacheprovider",
        "-q",
        *extra,
    ]
    return subprocess.run(command, cwd=folder, capture_output=True, text=True, check=False)


def _full_records_bytes(results: Path) -> int:
    """The size the passing tests' records take whole (every field and sample), as the baseline file wrote them."""
    if not results.is_file():
        return 0
    from harness.results.document import is_build_record

    tests = json.loads(results.read_text())["tests"]
    kept = {test["id"]: test for test in tests if test.get("verdict") == "pass" and not is_build_record(test)}
    return len(json.dumps(kept, indent=1))


def measure(name: str) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="harness-baseline-size-") as scratch:
        folder = Path(scratch)
        write_spec(folder, name)
        start = time.perf_counter()
        recorded = session(folder, "recorded.json", "--update-baselines")
        files = list((folder / "baselines").rglob("*.json"))
        size = sum(path.stat().st_size for path in files)
        stored = {test_id for path in files for test_id in json.loads(path.read_text())["entries"]}
        full = _full_records_bytes(folder / "recorded.json")
        gated = session(folder, "gated.json")
        wall_s = time.perf_counter() - start
        tests = json.loads((folder / "gated.json").read_text())["tests"] if (folder / "gated.json").is_file() else []
    # The latency tests that passed when recorded (the others are not written) must find their baseline entry and be
    # judged against it (an inconclusive verdict, too few samples of the new run on a busy machine, is not the
    # baseline's matter).
    latency = [test for test in tests if test.get("latency") and test["id"] in stored]
    judged = [test for test in latency if (test.get("gate") or {}).get("latency")]
    ungated = [
        f"{test['id']}: {test.get('verdict')}, {(test.get('gate') or {}).get('reason') or test.get('message')}"
        for test in latency
        if (test.get("gate") or {}).get("verdict") in (None, "new")  # the baseline entry was not found or not read
    ]
    return {
        "model": name,
        "baseline_bytes": size,
        "baseline_kb": round(size / 1000, 1),
        "entries": len(stored),
        "full_records_kb": round(full / 1000, 1),  # the same passing records whole, as a baseline held them before
        "latency_tests_gated": len(latency) - len(ungated),
        "latency_tests_compared": len(judged),  # of those, compared with the baseline's samples (not inconclusive)
        "latency_tests_not_gated": ungated,
        "record_status": recorded.returncode,
        "gate_status": gated.returncode,
        "wall_s": round(wall_s, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", default=["squeezenet"], choices=NAMES, metavar="MODEL")
    parser.add_argument("--json", type=Path, help="also write the numbers to this file")
    args = parser.parse_args()
    numbers = [measure(name) for name in args.models]
    print(json.dumps(numbers, indent=1))
    if args.json:
        args.json.write_text(json.dumps(numbers, indent=1))
    return missed_targets(
        *(
            (
                float(str(row["baseline_kb"])) > LIMIT_KB,
                f"{row['model']}: baseline {row['baseline_kb']} kB > {LIMIT_KB}",
            )
            for row in numbers
        ),
        *((not row["entries"], f"{row['model']}: no baseline entry was written") for row in numbers),
        *((bool(row["latency_tests_not_gated"]), f"{row['model']}: latency tests not gated") for row in numbers),
    )


if __name__ == "__main__":
    sys.exit(main())
