"""Validation of the GPU timer (harness.backends.cuda_rt.EventTimer) on the GPU machine (H200).

  1. timer floor: an empty gated event pair, >= 200 samples      median <= 2 us
  2. device-to-device copy of 1 GiB, gated, read + write counted  3.5 to 4.8 TB/s
  3. a kernel spinning on %globaltimer for 10 us, 100 us, 1 ms,   gated median within 2 % + 3 us of nominal,
     gated vs naive side by side, 200 samples each               gated p99 - min <= 1 us
  4. measure() with budget 2 s and target +-1 % on the 100 us kernel   stops on "ci" at +-1 %

Usage, from the repository root on the GPU machine:
    PYTHONPATH=. python3 benchmarks/gpu_timer.py --out DIR     (default: benchmarks/results/)
Writes DIR/gpu_timer.json (every raw sample) and DIR/gpu_timer.md, prints each target with PASS/FAIL
and exits 1 when one is missed. Streams, events and timing come from harness.backends.cuda_rt; cupy
only compiles and launches the spin kernel on our stream. cuda-python and cupy are imported on use,
so --help works anywhere.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import platform
import sys
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.backends import cuda_rt
from harness.measure import LatencyStats, MeasurePolicy, measure

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "benchmarks" / "results"

WARMUP = 20
FLOOR_SAMPLES = 200
FLOOR_LIMIT_US = 2.0
COPY_BYTES = 1 << 30
COPY_SAMPLES = 50
COPY_BAND_TB_S = (3.5, 4.8)
SPIN_NOMINAL_US = (10, 100, 1000)
SPIN_SAMPLES = 200
SPIN_REL, SPIN_ABS_US = 0.02, 3.0  # gated median within 2 % + 3 us of nominal (launch and teardown)
SPIN_SPREAD_US = 1.0  # gated p99 - min
BUDGET_POLICY = MeasurePolicy(budget_s=2.0, target_rel_ci=0.01)
BUDGET_KERNEL_US = 100

# One thread reads the GPU's global nanosecond timer until `ns` have passed. %globaltimer is the
# clock the GPU itself keeps, so the kernel's length does not depend on SM clocks or occupancy.
SPIN_SOURCE = r"""
extern "C" __global__ void spin(unsigned long long ns) {
    unsigned long long start, now;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
    do {
        asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
    } while (now - start < ns);
}
"""

Enqueue = Callable[[], None]


@dataclass(frozen=True)
class Check:
    name: str
    target: str
    measured: str
    passed: bool


def noop() -> None:
    """An enqueue that enqueues nothing: the timer's own floor."""


def sample(timer_call: Callable[[Enqueue], float], enqueue: Enqueue, count: int) -> LatencyStats:
    for _ in range(WARMUP):
        timer_call(enqueue)
    return LatencyStats.from_samples([timer_call(enqueue) for _ in range(count)])


def summary(stats: LatencyStats) -> dict[str, float]:
    return {
        "count": stats.count,
        "median_us": stats.median_us,
        "min_us": stats.min_us,
        "p99_us": stats.p99_us,
        "spread_us": stats.p99_us - stats.min_us,
    }


def timer_floor(timer: cuda_rt.EventTimer) -> tuple[dict[str, Any], list[Check]]:
    gated = sample(timer.gpu_seconds, noop, FLOOR_SAMPLES)
    naive = sample(timer.naive_gpu_seconds, noop, FLOOR_SAMPLES)
    check = Check(
        "timer floor (empty gated event pair)",
        f"median <= {FLOOR_LIMIT_US} us",
        f"median {gated.median_us:.3f} us, min {gated.min_us:.3f}, p99 {gated.p99_us:.3f}",
        gated.median_us <= FLOOR_LIMIT_US,
    )
    return {"gated": gated.to_json(), "naive": naive.to_json()}, [check]


def copy_bandwidth(timer: cuda_rt.EventTimer, stream: cuda_rt.Stream) -> tuple[dict[str, Any], list[Check]]:
    with cuda_rt.DeviceBuffer(COPY_BYTES) as src, cuda_rt.DeviceBuffer(COPY_BYTES) as dst:

        def copy() -> None:
            cuda_rt.copy_device_to_device(dst, src, COPY_BYTES, stream)

        gated = sample(timer.gpu_seconds, copy, COPY_SAMPLES)
    tb_per_s = 2 * COPY_BYTES / (gated.median_us / 1e6) / 1e12  # each byte read once and written once
    low, high = COPY_BAND_TB_S
    check = Check(
        "1 GiB device-to-device copy (gated median)",
        f"{low}-{high} TB/s (read + write)",
        f"{tb_per_s:.3f} TB/s ({gated.median_us:.1f} us)",
        low <= tb_per_s <= high,
    )
    return {"bytes": COPY_BYTES, "tb_per_s": tb_per_s, "gated": gated.to_json()}, [check]


class _StreamProtocol:
    """Our stream's handle behind the CUDA stream protocol (`__cuda_stream__` -> (version 0, handle))."""

    def __init__(self, handle: int) -> None:
        self.handle = handle

    def __cuda_stream__(self) -> tuple[int, int]:
        return (0, self.handle)


def spin_launcher(stream: cuda_rt.Stream) -> Callable[[int], Enqueue]:
    """enqueue functions launching the spin kernel on our stream, compiled and run once already."""
    import cupy

    kernel = cupy.RawKernel(SPIN_SOURCE, "spin")
    # cupy launches on its current stream: make that ours, once, for the rest of the script.
    # Stream.from_external (CUDA stream protocol) supersedes ExternalStream, deprecated in cupy 14.
    if hasattr(cupy.cuda.Stream, "from_external"):
        cupy.cuda.Stream.from_external(_StreamProtocol(stream.handle)).use()
    else:
        cupy.cuda.ExternalStream(stream.handle).use()

    def launcher(ns: int) -> Enqueue:
        args = (np.uint64(ns),)

        def enqueue() -> None:
            kernel((1,), (1,), args)

        return enqueue

    launcher(1000)()  # compiles (NVRTC) and loads the kernel outside any timing
    stream.synchronize()
    return launcher


def spin_kernels(timer: cuda_rt.EventTimer, launcher: Callable[[int], Enqueue]) -> tuple[dict[str, Any], list[Check]]:
    rows: dict[str, Any] = {}
    checks = []
    for nominal_us in SPIN_NOMINAL_US:
        enqueue = launcher(nominal_us * 1000)
        gated = sample(timer.gpu_seconds, enqueue, SPIN_SAMPLES)
        naive = sample(timer.naive_gpu_seconds, enqueue, SPIN_SAMPLES)
        host = sample(timer.host_seconds, enqueue, SPIN_SAMPLES)
        rows[f"{nominal_us}us"] = {
            "nominal_us": nominal_us,
            "gated": gated.to_json(),
            "naive": naive.to_json(),
            "host": host.to_json(),
        }
        tolerance = SPIN_REL * nominal_us + SPIN_ABS_US
        error = gated.median_us - nominal_us
        spread = gated.p99_us - gated.min_us
        checks.append(
            Check(
                f"spin {nominal_us} us: gated median vs nominal",
                f"within +-{tolerance:.1f} us",
                f"{gated.median_us:.3f} us ({error:+.3f})",
                abs(error) <= tolerance,
            )
        )
        checks.append(
            Check(
                f"spin {nominal_us} us: gated p99 - min",
                f"<= {SPIN_SPREAD_US} us",
                f"{spread:.3f} us",
                spread <= SPIN_SPREAD_US,
            )
        )
    return rows, checks


def measurement_budget(
    timer: cuda_rt.EventTimer, launcher: Callable[[int], Enqueue]
) -> tuple[dict[str, Any], list[Check]]:
    enqueue = launcher(BUDGET_KERNEL_US * 1000)
    result = measure(lambda: timer.gpu_seconds(enqueue), BUDGET_POLICY)
    low, high = result.stats.median_ci_us
    half_width = (high - low) / 2 / result.stats.median_us
    target = BUDGET_POLICY.target_rel_ci
    check = Check(
        f"measure() on the {BUDGET_KERNEL_US} us kernel",
        f"stops on 'ci' at +-{target:.0%} within {BUDGET_POLICY.budget_s} s",
        f"{result.stop_reason} after {result.wall_s:.2f} s, {result.stats.count} samples, +-{half_width:.3%}",
        result.stop_reason == "ci" and half_width <= target,
    )
    data = {
        "policy": asdict(BUDGET_POLICY),
        "wall_s": result.wall_s,
        "stop_reason": result.stop_reason,
        "count": result.stats.count,
        "median_us": result.stats.median_us,
        "ci_half_width_rel": half_width,
        "measurement": result.to_json(),
    }
    return data, [check]


def environment(timer: cuda_rt.EventTimer) -> dict[str, Any]:
    import cupy

    def version(distribution: str) -> str | None:
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            return None

    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": cuda_rt.device_facts(),
        "cuda_python": version("cuda-python"),
        "cuda_bindings": version("cuda-bindings"),
        "cupy": cupy.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "timer_gated": timer.gated,
        "gate_problem": timer.gate_problem,
    }


def run_section(
    name: str, results: dict[str, Any], checks: list[Check], section: Callable[[], tuple[dict[str, Any], list[Check]]]
) -> None:
    """One section; an exception fails it (with the traceback in the results) and the others still run."""
    try:
        results[name], found = section()
    except Exception as error:  # noqa: BLE001 - any failure is a result to report, not a crash
        results[name] = {"error": repr(error), "traceback": traceback.format_exc()}
        found = [Check(name, "runs", f"error: {error!r}", False)]
    checks.extend(found)


def markdown(results: dict[str, Any], checks: list[Check]) -> str:
    env = results["environment"]
    device = env.get("device", {})
    lines = [
        "# GPU timer validation",
        "",
        (
            f"{env.get('date')} · {device.get('name')} (sm {device.get('compute_capability')}) · driver "
            f"{device.get('driver_version')} · runtime {device.get('runtime_version')} · cuda-bindings "
            f"{env.get('cuda_bindings')} (cuda-python {env.get('cuda_python') or 'not installed'}) · cupy {env.get('cupy')} · numpy {env.get('numpy')} · Python {env.get('python')}"
        ),
        "",
        f"Timer gated: {env.get('timer_gated')}" + (f" ({env['gate_problem']})" if env.get("gate_problem") else ""),
        "",
        "| check | target | measured | verdict |",
        "|---|---|---|---|",
        *(f"| {c.name} | {c.target} | {c.measured} | {'PASS' if c.passed else 'FAIL'} |" for c in checks),
    ]
    spin = results.get("spin_kernels", {})
    if spin and "error" not in spin:
        lines += [
            "",
            "Spin kernel, µs (median / min / p99 / p99−min); host = perf_counter to completion:",
            "",
            "| nominal | gated | naive | host median |",
            "|---|---|---|---|",
        ]
        for row in spin.values():
            cells = [_stats_cell(row[kind]) for kind in ("gated", "naive")]
            lines.append(f"| {row['nominal_us']} | {cells[0]} | {cells[1]} | {row['host']['median_us']:.2f} |")
    return "\n".join(lines) + "\n"


def _stats_cell(stats: dict[str, Any]) -> str:
    spread = stats["p99_us"] - stats["min_us"]
    return f"{stats['median_us']:.2f} / {stats['min_us']:.2f} / {stats['p99_us']:.2f} / {spread:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="directory for gpu_timer.json and .md")
    args = parser.parse_args(argv)

    problem = cuda_rt.gpu_problem()
    if problem:
        print(f"gpu_timer: {problem}", file=sys.stderr)
        return 1
    results: dict[str, Any] = {}
    checks: list[Check] = []
    with cuda_rt.Stream() as stream, cuda_rt.EventTimer(stream) as timer:
        results["environment"] = environment(timer)
        checks.append(
            Check("stream gate (cuStreamWaitValue32)", "available", str(timer.gate_problem or "yes"), timer.gated)
        )
        run_section("timer_floor", results, checks, lambda: timer_floor(timer))
        run_section("copy_1gib", results, checks, lambda: copy_bandwidth(timer, stream))
        launchers: list[Callable[[int], Enqueue]] = []

        def compile_spin_kernel() -> tuple[dict[str, Any], list[Check]]:
            launchers.append(spin_launcher(stream))
            return {"source": SPIN_SOURCE}, []

        run_section("spin_kernel", results, checks, compile_spin_kernel)
        if launchers:  # else the compile failure above is the result of sections 3 and 4
            launcher = launchers[0]
            run_section("spin_kernels", results, checks, lambda: spin_kernels(timer, launcher))
            run_section("measure_budget", results, checks, lambda: measurement_budget(timer, launcher))
        stream.synchronize()
    results["checks"] = [asdict(c) for c in checks]

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_timer.json").write_text(json.dumps(results, indent=1) + "\n")
    table = markdown(results, checks)
    (args.out / "gpu_timer.md").write_text(table)
    print(table)
    for c in checks:
        print(f"{'PASS' if c.passed else 'FAIL'}  {c.name}: {c.measured} (target {c.target})")
    print(f"results: {args.out / 'gpu_timer.json'}, {args.out / 'gpu_timer.md'}")
    return 0 if all(c.passed for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
