"""A pytest plugin for benchmarks/profile_cost.py: appends the wall time of every ONNX Runtime profile_layers call (the
whole profiled session: creating it, its runs, reading its trace) as a JSON line to $PROFILE_CLOCK_LOG, so that the
profiles' own cost is measured apart from the noise between two sessions on a shared machine.

Use: PYTHONPATH=benchmarks PROFILE_CLOCK_LOG=profiles.jsonl pytest -p profile_clock ..."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping

import numpy as np
import pytest

from harness.profile import LayerProfile


def pytest_configure(config: pytest.Config) -> None:
    from harness.backends.ort import OnnxRuntimeEngine  # onnxruntime is imported by the benchmark's sessions only

    profile_layers = OnnxRuntimeEngine.profile_layers

    def timed(self: OnnxRuntimeEngine, inputs: Mapping[str, np.ndarray], runs: int) -> LayerProfile:
        start = time.perf_counter()
        try:
            return profile_layers(self, inputs, runs)
        finally:
            with open(os.environ["PROFILE_CLOCK_LOG"], "a") as log:
                log.write(json.dumps({"profile_s": time.perf_counter() - start}) + "\n")

    OnnxRuntimeEngine.profile_layers = timed  # type: ignore[method-assign]
