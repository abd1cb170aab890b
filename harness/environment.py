"""What machine and software a run happened on, recorded with every results file."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from functools import cache
from pathlib import Path

_CPUINFO = Path("/proc/cpuinfo")
# The CPU features that decide how int8 products are summed by a CPU library's fused kernels: AVX2 alone sums
# u8×s8 pairs in 16 bits (vpmaddubsw, saturating); VNNI / AMX on x86 and the dot-product instructions on ARM
# accumulate in 32 bits. The harness's int8 verdicts do not depend on them (harness/backends/ort.py); the
# results record them so that a latency, which does, can be read.
INT8_FEATURES = ("avx2", "avx512bw", "avx512_vnni", "avx_vnni", "avx_vnni_int8", "amx_int8", "asimddp", "i8mm")


@cache
def _cpuinfo_field(field: str) -> str | None:
    if not _CPUINFO.exists():
        return None
    for line in _CPUINFO.read_text().splitlines():
        if line.startswith(field):
            return line.split(":", 1)[1].strip()
    return None


def cpu_model() -> str:
    """The CPU's marketing name where the OS tells it, else the architecture."""
    return _cpuinfo_field("model name") or platform.processor() or platform.machine()


def cpu_flags() -> str:
    """The instruction-set flags, which decide the kernels a CPU backend picks ("Features" on ARM)."""
    flags = _cpuinfo_field("flags") or _cpuinfo_field("Features")
    return " ".join(sorted(flags.split())) if flags else platform.machine()


def int8_features() -> list[str]:
    """Which of INT8_FEATURES this CPU has, in that order."""
    present = set(cpu_flags().split())
    return [feature for feature in INT8_FEATURES if feature in present]


def package_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def describe() -> dict[str, object]:
    """The environment block of a results file (docs/results-format.md)."""
    return {
        "harness": package_version("trt-harness"),
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_int8_features": int8_features(),
        "packages": {
            name: package_version(name)
            for name in ("numpy", "onnx", "onnxruntime", "pytest", "pytest-benchmark", "hypothesis", "scipy")
        },
    }
