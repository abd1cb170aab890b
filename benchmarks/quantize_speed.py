"""Speed of int8 derivation (harness/precision/derive.py + quantize.py), on the machine this runs on.

  1. cold: deriving the int8 model of every built-in case that has int8, with both calibrators, takes <= 10 s
     (what the engine store does: the float32 model, the calibration batches from the case's generator,
     ONNX Runtime's calibration and quantization into an empty cache, its first import included)
  2. warm: the same on the filled cache calibrates nothing (quantize_static is never called) and takes
     <= 0.5 s in all (the model and the calibration batches are made again to find the key: hashed, then
     the cached model read back)

Usage: python benchmarks/quantize_speed.py [--json OUT]   (from the repository root); exits 1 on a missed target.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from foundation import missed_targets  # the foundation's verdict: print what was missed, exit 1

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

COLD_LIMIT_S = 10.0
WARM_LIMIT_S = 0.5


def quantize_all(cache_dir: Path) -> dict[str, float]:
    """Seconds per case and calibrator of deriving the int8 model with its cache in `cache_dir`."""
    from cases import ALL_CASES
    from harness.case import Precision
    from harness.precision.derive import PrecisionOptions, derive
    from harness.precision.quantize import CALIBRATORS

    seconds = {}
    for case in ALL_CASES:
        if Precision.INT8 not in case.precisions:
            continue
        for calibrator in CALIBRATORS:
            start = time.perf_counter()
            derive(case, Precision.INT8, PrecisionOptions(calibrator=calibrator, cache_dir=cache_dir))
            seconds[f"{case.name}/{calibrator}"] = time.perf_counter() - start
    return seconds


def counting_calls(module: object, name: str) -> list[None]:
    """Replace module.name by a wrapper that records each call: the warm run's proof that nothing calibrated."""
    calls: list[None] = []
    original: Callable[..., object] = getattr(module, name)

    def counted(*args: object, **kwargs: object) -> object:
        calls.append(None)
        return original(*args, **kwargs)

    setattr(module, name, counted)
    return calls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, help="also write the numbers to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="harness-quantize-bench-") as cache:
        cold = quantize_all(Path(cache))
        import onnxruntime.quantization

        warm_calls = counting_calls(onnxruntime.quantization, "quantize_static")
        warm = quantize_all(Path(cache))
    cold_s, warm_s = sum(cold.values()), sum(warm.values())
    numbers = {
        "cold_s": round(cold_s, 3),
        "warm_s": round(warm_s, 4),
        "warm_quantize_static_calls": len(warm_calls),
        "cold_per_point_s": {point: round(s, 3) for point, s in cold.items()},
        "warm_per_point_s": {point: round(s, 4) for point, s in warm.items()},
    }
    print(json.dumps(numbers, indent=1))
    if args.json:
        args.json.write_text(json.dumps(numbers, indent=1))
    return missed_targets(
        (cold_s > COLD_LIMIT_S, f"the cold quantization took {cold_s:.2f} s > {COLD_LIMIT_S} s"),
        (bool(warm_calls), f"the warm run called quantize_static {len(warm_calls)} times, expected 0"),
        (warm_s > WARM_LIMIT_S, f"the warm run took {warm_s:.3f} s > {WARM_LIMIT_S} s"),
    )


if __name__ == "__main__":
    sys.exit(main())
