"""A backend with a synthetic clock, so gating tests control latency exactly.

It is ONNX Runtime for everything (build, outputs, accuracy) except the timer, which draws samples
of a 100 µs workload with a little noise, scaled by HARNESS_TEST_SLOWDOWN (default 1.0), stalled for the
first HARNESS_TEST_STALL_S seconds. Its
version is HARNESS_TEST_ORT_VERSION when set, to play a backend upgrade; its engines report HARNESS_TEST_DEVICE_MEMORY
bytes of device memory when set.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import time
from collections.abc import Mapping

import numpy as np

from harness.backends import BUILTIN_BACKENDS, BackendOptions, BuildRequest
from harness.backends.ort import OnnxRuntimeBackend, OnnxRuntimeEngine
from harness.measure import Timer

_streams = itertools.count()


class SyntheticClockEngine(OnnxRuntimeEngine):
    def timer(self, inputs: Mapping[str, np.ndarray]) -> Timer:
        slowdown = float(os.environ.get("HARNESS_TEST_SLOWDOWN", "1.0"))
        rng = np.random.default_rng(next(_streams))
        # HARNESS_TEST_STALL_S: for this long after the timer is made, every run also holds the host for
        # 20 ms (a machine under load at the start of a session), which eats the latency budget; the
        # synthetic duration it reports is unchanged.
        stall_until = time.perf_counter() + float(os.environ.get("HARNESS_TEST_STALL_S", "0"))

        def run() -> float:
            if time.perf_counter() < stall_until:
                time.sleep(0.02)
            return float((100e-6 + rng.gamma(2.0, 0.5e-6)) * slowdown)

        return run

    def facts(self) -> Mapping[str, object]:
        """ONNX Runtime's facts, and the device memory HARNESS_TEST_DEVICE_MEMORY says where set (as TensorRT
        reports its engines'), to play an engine that needs more of it."""
        memory = os.environ.get("HARNESS_TEST_DEVICE_MEMORY")
        return {**super().facts(), **({"device_memory_bytes": int(memory)} if memory else {})}


class SyntheticClockBackend(OnnxRuntimeBackend):
    clock = "synthetic: 100 µs × HARNESS_TEST_SLOWDOWN (tests only)"

    def version(self) -> str:
        return os.environ.get("HARNESS_TEST_ORT_VERSION") or super().version()

    def load(self, artifact: bytes, request: BuildRequest) -> SyntheticClockEngine:
        engine = super().load(artifact, request)
        return SyntheticClockEngine(engine.session)


def synthetic_backend(options: BackendOptions) -> SyntheticClockBackend:
    return SyntheticClockBackend(options)


SYNTHETIC_ORT = {"ort": dataclasses.replace(BUILTIN_BACKENDS["ort"], factory="tests.gate_support:synthetic_backend")}
