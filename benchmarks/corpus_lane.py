"""The model-corpus lane: every model folder of ONNX's own backend test data, through the harness.

The installed `onnx` package ships `onnx/backend/test/data/{pytorch-converted,pytorch-operator,simple}`: 140
folders in ONNX's test layout (model.onnx beside test_data_set_N/ with stored inputs and outputs), old IR
versions and opsets, strings, sequences, training operators among them. (The node tests, one operator each,
are left out.) Each folder is a spec path (`--harness-spec FOLDER`); two pytest sessions run them all:

  1. ONNX Runtime at fp32: `test_build` and `test_accuracy` against the stored outputs. Latency and fuzz tests
     are deselected: the lane checks that every model loads, runs and matches its stored outputs, and timing
     140 tiny models on a shared CPU would only add minutes of noise (the fuzz tests of a stored-data case only
     re-check the stored sets, which test_accuracy already does).
  2. TensorRT for RTX, `--backend rtx --build-only` at fp32: every model parsed and built by a real NVIDIA
     builder (no GPU needed).

Every model ends as one of: pass; refused, with the harness's reason (a spec error such as a string input or a
training-only operator, or a skipped build such as an operator the backend lacks); or failed (any failing or
erroring test, a traceback among them). The script prints a row per model, the counts per lane and the
refusals grouped by cause, and exits 1 when any model failed (2 when a session could not run at all).

Usage: python benchmarks/corpus_lane.py [--json OUT] [--keep DIR]   (from the repository root)
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SECTIONS = ("pytorch-converted", "pytorch-operator", "simple")
LANES = {
    "ort fp32": ("--backend", "ort", "-k", "test_build or test_accuracy"),
    "rtx build": ("--backend", "rtx", "--build-only"),
}
# What a model's pass must include in each lane: a comparison with the stored outputs, a built engine.
REQUIRED = {"ort fp32": "test_accuracy[", "rtx build": "test_build["}
COMMON = ("--precision", "fp32", "--harness-html=off", "-p", "no:cacheprovider", "-q", "--no-header")

# What a refusal's message says, in words a reader groups by: (pattern, cause).
CAUSES = (
    (r"is a string tensor", "string inputs or outputs (the harness compares numeric tensors)"),
    (r"is a (sequence|map|optional|sparse_tensor) \(not a tensor\)", "sequence/map inputs or outputs"),
    (r"training-only domain", "training-only operators (ai.onnx.preview.training)"),
    (r"zero-size inputs are not supported", "zero-size stored inputs (profiles need every dim >= 1)"),
    (r"has no importer for operator", "operators the backend's parser lacks"),
    (r"ONNX parser does not support what the model uses", "an attribute value or type the parser does not support"),
    (r"is a shape tensor", "shape-tensor inputs (profiles give shapes, not values)"),
    (r"onnx\.version_converter could not convert", "an opset the converter cannot reach"),
)


@dataclass
class Outcome:
    verdict: str  # "pass", "refused" or "failed"
    reason: str = ""


def corpus_root() -> Path:
    import onnx

    return Path(onnx.__file__).resolve().parent / "backend" / "test" / "data"


def model_folders(root: Path) -> list[Path]:
    return sorted(folder for section in SECTIONS for folder in (root / section).iterdir() if folder.is_dir())


def link_corpus(folders: Sequence[Path], into: Path) -> list[str]:
    """The folders as spec paths under `into`, where pytest runs (a spec path must lie under what it collects):
    symbolic links, section/name, relative to `into`."""
    paths = []
    for folder in folders:
        link = into / folder.parent.name / folder.name
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            link.symlink_to(folder, target_is_directory=True)
        paths.append(f"{folder.parent.name}/{folder.name}")
    return paths


def run_lane(name: str, spec_paths: Sequence[str], work: Path) -> tuple[dict[str, object], float, str]:
    """One pytest session over every folder: the results document, the wall time, pytest's output tail."""
    results = work / f"{name.replace(' ', '-')}.json"
    command = [
        sys.executable,
        "-m",
        "pytest",
        "--harness-spec",
        ",".join(spec_paths),
        *LANES[name],
        *COMMON,
        "--results",
        str(results),
        "--engine-cache",
        str(work / "engines"),
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    start = time.perf_counter()
    done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    tail = (done.stdout + done.stderr)[-4000:]
    if not results.is_file():
        sys.stderr.write(f"corpus lane '{name}': pytest exited {done.returncode} without a results file:\n{tail}\n")
        sys.exit(2)
    return json.loads(results.read_text()), wall, tail


def outcomes(document: Mapping[str, object], folders: Sequence[Path], required: str = "test_") -> dict[str, Outcome]:
    """One outcome per model folder, from a session's results file; a pass needs a passing test whose id starts
    with `required`."""
    by_name: dict[str, Outcome] = {}
    tests = document["tests"]
    errors = document["input_errors"]
    assert isinstance(tests, list) and isinstance(errors, list)
    for folder in folders:
        name = folder.name
        spec_errors = [e["message"] for e in errors if f"/{folder.parent.name}/{name}/" in e["message"] + "/"]
        mine = [t for t in tests if t["case"] == name]
        failing = [t for t in mine if t["verdict"] in ("fail", "error")]
        builds = [t for t in mine if t["id"].startswith("test_build[")]
        if failing:
            by_name[name] = Outcome("failed", first_line(failing[0]["message"]))
        elif spec_errors:
            by_name[name] = Outcome("refused", refusal_text(spec_errors[0]))
        elif not mine:
            by_name[name] = Outcome("failed", "no test ran and no spec error says why")
        elif builds and all(t["verdict"] == "skip" and " cannot run " in (t["message"] or "") for t in builds):
            by_name[name] = Outcome("refused", refusal_text(builds[0]["message"] or ""))
        elif all(
            t["verdict"] == "pass" or t["verdict"] == "skip" and "build-only" in (t["message"] or "") for t in mine
        ) and any(t["verdict"] == "pass" and t["id"].startswith(required) for t in mine):
            by_name[name] = Outcome("pass")
        else:
            skipped = next((t for t in mine if t["verdict"] == "skip" and " cannot run " in (t["message"] or "")), None)
            if skipped is not None:  # a backend's refusal of a point ("… cannot run CASE at fp32: …")
                by_name[name] = Outcome("refused", refusal_text(skipped["message"] or ""))
            else:  # skipped without a refusal, or nothing that the lane is for passed
                by_name[name] = Outcome("failed", f"no {required.rstrip('[')} passed and no refusal says why")
    return by_name


def first_line(message: str | None) -> str:
    return (message or "").strip().splitlines()[0] if (message or "").strip() else "(no message)"


def refusal_text(message: str) -> str:
    """The refusal's reason without the repeated prefixes (the spec path, pytest's 'Skipped: ')."""
    text = first_line(message).removeprefix("Skipped: ")
    text = re.sub(r"^\S+/model\.onnx: folder .*?: ", "", text)  # a spec error's file and field
    text = re.sub(r"^\S+/(model\.onnx|test_data_set_\d+): ", "", text)  # the file the message names
    text = re.sub(r"^\S+/model\.onnx ", "the model ", text)
    return re.sub(r"^\S+ cannot run \S+ at \w+: case '[^']+': ", "", text)  # a skip's backend, model, precision


def cause(reason: str) -> str:
    for pattern, label in CAUSES:
        if re.search(pattern, reason):
            return label
    return "other: " + reason[:100]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, help="also write every model's outcome and the counts here")
    parser.add_argument("--keep", type=Path, help="run in this folder and keep it (results files, engines)")
    args = parser.parse_args()
    if importlib.util.find_spec("tensorrt_rtx") is None:
        print("TensorRT for RTX is not installed: pip install 'trt-harness[rtx]'", file=sys.stderr)
        return 2
    started = time.perf_counter()
    folders = model_folders(corpus_root())
    with tempfile.TemporaryDirectory(prefix="harness-corpus-") as scratch:
        work = args.keep.resolve() if args.keep else Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        spec_paths = link_corpus(folders, work)
        lanes: dict[str, dict[str, Outcome]] = {}
        walls: dict[str, float] = {}
        for name in LANES:
            document, walls[name], tail = run_lane(name, spec_paths, work)
            lanes[name] = outcomes(document, folders, REQUIRED[name])
            if any(outcome.verdict == "failed" for outcome in lanes[name].values()):
                print(f"--- pytest's output of the '{name}' session (tail) ---\n{tail}")
    total = time.perf_counter() - started
    print_table(folders, lanes)
    counts = {name: dict(Counter(o.verdict for o in results.values())) for name, results in lanes.items()}
    print()
    for name, results in lanes.items():
        tally = Counter(o.verdict for o in results.values())
        print(
            f"{name:<10} {len(results)} models: {tally['pass']} pass, {tally['refused']} refused with a reason, "
            f"{tally['failed']} failed  ({walls[name]:.1f} s)"
        )
        for label, count in sorted(
            Counter(cause(o.reason) for o in results.values() if o.verdict == "refused").items()
        ):
            print(f"             refused {count:>3}: {label}")
    print(f"corpus lane: {len(folders)} models, {total:.1f} s in all")
    if args.json:
        report = {
            "models": len(folders),
            "wall_s": round(total, 1),
            "lane_wall_s": {name: round(wall, 1) for name, wall in walls.items()},
            "counts": counts,
            "outcomes": {
                name: {model: {"verdict": o.verdict, "reason": o.reason} for model, o in results.items()}
                for name, results in lanes.items()
            },
        }
        args.json.write_text(json.dumps(report, indent=1))
    failed = sum(o.verdict == "failed" for results in lanes.values() for o in results.values())
    if failed:
        print(f"corpus lane: {failed} model run(s) failed (not a pass, not a refusal with a reason)", file=sys.stderr)
    return 1 if failed else 0


def print_table(folders: Sequence[Path], lanes: Mapping[str, Mapping[str, Outcome]]) -> None:
    names = list(lanes)
    width = max(len(f"{folder.parent.name}/{folder.name}") for folder in folders)
    print(f"{'model':<{width}}  " + "  ".join(f"{name:<9}" for name in names) + "  reason")
    for folder in folders:
        row = [lanes[name][folder.name] for name in names]
        reasons = dict.fromkeys(o.reason for o in row if o.reason)
        shown = " | ".join(reason[:160] for reason in reasons)
        label = f"{folder.parent.name}/{folder.name}"
        print(f"{label:<{width}}  " + "  ".join(f"{o.verdict:<9}" for o in row) + f"  {shown}")


if __name__ == "__main__":
    sys.exit(main())
