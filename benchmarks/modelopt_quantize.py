"""NVIDIA ModelOpt's ONNX int8 quantizer on the nine real architectures, for comparison with the harness's recipe.

Not a dependency of the harness: ModelOpt needs torch (>= 2.8), onnxruntime-gpu, cupy-cuda12x, polygraphy,
onnx-graphsurgeon and a pinned onnx (~= 1.21), ~2 GB installed; run it in a venv of its own:

    python3 -m venv /tmp/mo && /tmp/mo/bin/pip install torch==2.13.0 'nvidia-modelopt[onnx]'
    python benchmarks/real_architectures.py --dump /tmp/mo_in        # float32 opset-13 models + calibration data
    /tmp/mo/bin/python benchmarks/modelopt_quantize.py /tmp/mo_in     # writes <name>.mo.onnx, prints the times
    python benchmarks/real_architectures.py --modelopt /tmp/mo_in      # the same accuracy, proof and RTX build

Calibration is ModelOpt's "max" on the CPU execution provider, with the same 8 calibration images the harness
uses; the rest of the network stays float32 (high_precision_dtype="fp32"; ModelOpt's default converts it to fp16).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np


def main() -> int:
    from modelopt.onnx.quantization import quantize

    folder = Path(sys.argv[1])
    for model in sorted(folder.glob("*.onnx")):
        if model.name.endswith(".mo.onnx"):
            continue
        name = model.stem
        data = dict(np.load(folder / f"{name}.npz"))
        start = time.perf_counter()
        try:
            quantize(
                str(model),
                quantize_mode="int8",
                calibration_data=data,
                calibration_method="max",
                calibration_eps=["cpu"],
                high_precision_dtype="fp32",
                output_path=str(folder / f"{name}.mo.onnx"),
                log_level="WARNING",
            )
            result = "ok"
        except Exception as error:  # noqa: BLE001  # report each model's outcome, go on with the next
            result = f"{type(error).__name__}: {error}"
        print(json.dumps({"model": name, "result": result[:500], "seconds": round(time.perf_counter() - start, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
