"""Soak: the default matrix run many times in one process leaks nothing.

  N sessions (default 50) of `pytest cases` run back to back through pytest.main in this process, on
  one warm engine cache. After each (and after glibc's malloc_trim): resident memory (VmRSS), open
  file descriptors, and with CUDA
  the device memory in use (cudaMemGetInfo). Target: from the end of session 5 (imports, caches and
  allocator pools warmed) to the end of session N, growth <= 64 MiB RSS, <= 4 descriptors and
  <= 16 MiB of device memory. Engines are closed at each session's end (Engine.close); without that,
  the TensorRT backends would keep every session's streams and device buffers.

Usage: python benchmarks/soak.py [--iterations N] [--backend LIST] [--double] [-k EXPR] [--json OUT]
  --double  the TensorRT backends on the strict double (tests/trt_double), with real CUDA memory when
            HARNESS_TEST_CUDA=real (the H200): device memory is then exercised for real (with
            -k 'not latency': the double computes on the host inside execute, which a gated CUDA timer
            would hold until its watchdog opens the gate).
Exits non-zero when a target is missed.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import os
import sys
import tempfile
from pathlib import Path

import pytest
from foundation import REPO, missed_targets

WARM_UP_SESSIONS = 5
RSS_GROWTH_LIMIT_MIB = 64.0
FD_GROWTH_LIMIT = 4
DEVICE_GROWTH_LIMIT_MIB = 16.0


class DoubleBackends:
    """A plugin object registering the TensorRT backends on the double, as tests/test_plugin_trt.py does."""

    def pytest_harness_backends(self, config: pytest.Config) -> object:
        from tests.trt_support import DOUBLE_BACKENDS

        return DOUBLE_BACKENDS


def release_free_memory() -> None:
    """Ask glibc to hand freed heap pages back (malloc_trim), so that RSS measures memory still held:
    without it, RSS of the double's soak swung by 100 MiB between sessions while the memory Python and
    numpy had allocated (tracemalloc) stayed flat at 98 MiB. Not glibc: nothing to ask."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def device_used_mib() -> float | None:
    """Device memory in use on the current GPU, None without one."""
    from harness.backends import cuda_rt

    if cuda_rt.gpu_problem() is not None:
        return None
    free, total = cuda_rt._rt("cudaMemGetInfo")
    return (int(total) - int(free)) / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--backend", default="ort")
    parser.add_argument("--double", action="store_true", help="register the TensorRT backends on the double")
    parser.add_argument(
        "-k", dest="keyword", help="pytest -k expression, e.g. 'not latency' for the double on real CUDA"
    )
    parser.add_argument("--json", type=Path, help="also write the numbers to this file")
    args = parser.parse_args()
    os.chdir(REPO)
    sys.path.insert(0, str(REPO))
    plugins = [DoubleBackends()] if args.double else []
    samples: list[dict[str, float | None]] = []
    with tempfile.TemporaryDirectory(prefix="harness-soak-") as scratch:
        for index in range(args.iterations):
            results = Path(scratch) / f"r{index}.json"
            command = ["cases", "-q", "-p", "no:cacheprovider", "--backend", args.backend, "--latency-budget", "0.02"]
            command += ["--hypothesis-profile", "harness-ci", "--engine-cache", f"{scratch}/engines"]
            command += ["-k", args.keyword] if args.keyword else []
            with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):  # 50 summaries help nobody
                code = pytest.main([*command, "--results", str(results), "--benchmark-disable"], plugins=plugins)
            if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
                sys.exit(f"session {index} ended with {code!r}")
            gc.collect()
            release_free_memory()
            samples.append({"rss_mib": rss_mib(), "fds": open_descriptors(), "device_mib": device_used_mib()})
            print(f"session {index + 1}/{args.iterations}: {samples[-1]}", file=sys.stderr, flush=True)
    first, last = samples[min(WARM_UP_SESSIONS, len(samples)) - 1], samples[-1]
    growth = {key: (last[key] - first[key]) if last[key] is not None else None for key in last}  # type: ignore[operator]
    numbers = {"sessions": args.iterations, "backend": args.backend, "double": args.double, "growth": growth,
               "after_warm_up": first, "at_end": last}  # fmt: skip
    print(json.dumps(numbers, indent=1))
    if args.json:
        args.json.write_text(json.dumps({**numbers, "samples": samples}, indent=1))
    device_growth = growth["device_mib"] or 0.0
    return missed_targets(
        (growth["rss_mib"] > RSS_GROWTH_LIMIT_MIB, f"RSS grew {growth['rss_mib']:.1f} MiB > {RSS_GROWTH_LIMIT_MIB}"),  # type: ignore[operator]
        (growth["fds"] > FD_GROWTH_LIMIT, f"open descriptors grew by {growth['fds']} > {FD_GROWTH_LIMIT}"),  # type: ignore[operator]
        (
            device_growth > DEVICE_GROWTH_LIMIT_MIB,
            f"device memory grew {device_growth:.1f} MiB > {DEVICE_GROWTH_LIMIT_MIB}",
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
