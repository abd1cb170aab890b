"""What machine and software a run happened on, recorded with every results file."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from functools import cache
from pathlib import Path

_CPUINFO = Path("/proc/cpuinfo")


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
    """The instruction-set flags, which decide the kernels a CPU backend picks."""
    flags = _cpuinfo_field("flags")
    return " ".join(sorted(flags.split())) if flags else platform.machine()


def package_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def describe() -> dict[str, object]:
    """The environment block of a results file (README, "Results file")."""
    return {
        "harness": package_version("trt-harness"),
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "packages": {
            name: package_version(name)
            for name in ("numpy", "onnx", "onnxruntime", "pytest", "pytest-benchmark", "hypothesis", "scipy")
        },
    }
