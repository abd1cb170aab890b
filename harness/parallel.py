"""Running in parallel with pytest-xdist, and beside other sessions: xdist is the engine, this module
only keeps the measurements honest and the results whole.

- One worker per GPU: the controller assigns each worker a GPU of CUDA_VISIBLE_DEVICES (round robin
  when there are more workers than GPUs), and the worker narrows its CUDA_VISIBLE_DEVICES to it
  before anything starts CUDA there.
- Timing alone on its device: every harness test holds its device's lock while it runs, a latency
  test exclusively and every other harness test shared, so a latency test never runs while other
  harness work uses the same device (another worker's, or another session's on this machine); the
  lock is SQLite's (filelock.ReadWriteLock), whose pending writer stops new readers from starving it.
- One results file: each worker hands its records to the controller, which merges and writes them.
- Engines kept together: each test is in the xdist group of its engine, so `--dist loadgroup` runs all
  of an engine's tests on one worker.
- Cores shared out: workers inherit a BLAS thread count of cores / workers, so that their numpy
  references do not oversubscribe the machine.

Nothing here imports xdist: its hooks are implemented in harness/pytest_plugin/session.py as optional hooks.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import filelock
import pytest

from harness.backends import DeviceKind
from harness.matrix import Point
from harness.naming import engine_name

WORKER_OUTPUT = "trt_harness"  # key of a worker's records in its workeroutput
GPU_INPUT = "trt_harness_gpu"  # key of a worker's assigned GPU in its workerinput
TIMING_MARK = "harness_timing"  # marks the tests that need their device alone (test_latency)
_RECEIVED = pytest.StashKey[list[tuple[str, dict[str, Any]]]]()
_LOST = pytest.StashKey[list[str]]()


def is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def is_controller(config: pytest.Config) -> bool:
    """An xdist controller: it runs no tests, its workers do."""
    return config.pluginmanager.has_plugin("dsession")


def worker_id(config: pytest.Config) -> str | None:
    return str(config.workerinput["workerid"]) if is_worker(config) else None  # type: ignore[attr-defined]


def engine_group(point: Point) -> str:
    """The xdist group of a test: its engine. With `--dist loadgroup` every test of an engine runs on one
    worker, which loads it once (with `load`, each worker loads most engines: twice the set-up)."""
    return f"{engine_name(point.case.name, point.precision.value, point.profile_index)}-{point.backend}"


def share_cores(config: pytest.Config) -> None:
    """Controller, before its workers start: N workers on C cores get C // N BLAS threads each (unless the
    user set them). N numpy references each spinning C OpenBLAS threads thrash: with 2 workers on 2
    cores mnist's fuzz tests ran 9x slower than serial (2.37 s against 0.27 s)."""
    workers = config.getoption("numprocesses", None)
    if is_worker(config) or not isinstance(workers, int) or workers < 1:
        return
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    for variable in _BLAS_THREADS:
        os.environ.setdefault(variable, threads)


_BLAS_THREADS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def assign_gpu(node: Any, gpus: Sequence[str]) -> None:
    """Controller side (pytest_configure_node): worker gwN gets GPU N modulo their number."""
    if gpus:
        index = int(re.sub(r"\D", "", str(node.gateway.id)) or 0)
        node.workerinput[GPU_INPUT] = gpus[index % len(gpus)]


def take_assigned_gpu(config: pytest.Config) -> None:
    """Worker side: see only the assigned GPU. Must run before CUDA is initialised in this process."""
    gpu = getattr(config, "workerinput", {}).get(GPU_INPUT)
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)


def send(config: pytest.Config, part: Mapping[str, object]) -> None:
    """Worker side: hand this worker's records to the controller (execnet carries plain strings)."""
    config.workeroutput[WORKER_OUTPUT] = json.dumps(part, allow_nan=True)  # type: ignore[attr-defined]


def receive(config: pytest.Config, node: Any, error: object) -> None:
    """Controller side (pytest_testnodedown): keep a worker's records; note a worker that sent none."""
    name = str(node.gateway.id)
    part = getattr(node, "workeroutput", {}).get(WORKER_OUTPUT)
    if part is None:
        config.stash.setdefault(_LOST, []).append(
            f"worker {name} ended without handing over its records ({error or 'no output'}): its tests are missing "
            "from the results file; rerun them"
        )
        return
    config.stash.setdefault(_RECEIVED, []).append((f"worker {name}", json.loads(part)))


def received(config: pytest.Config) -> list[tuple[str, dict[str, Any]]]:
    parts: list[tuple[str, dict[str, Any]]] = config.stash.get(_RECEIVED, [])
    return sorted(parts, key=lambda part: part[0])


def lost(config: pytest.Config) -> list[str]:
    messages: list[str] = config.stash.get(_LOST, [])
    return list(messages)


def device_key(kind: DeviceKind) -> str:
    """The device a test's backend runs on, as far as sharing goes: the CPU, or the visible GPUs."""
    if kind is DeviceKind.CPU:
        return "cpu"
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "all")
    return "gpu-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", visible)


@contextlib.contextmanager
def device_held(folder: Path, key: str, *, alone: bool) -> Iterator[None]:
    """Hold `key`'s lock: alone (exclusive) for timing, shared for everything else."""
    folder.mkdir(parents=True, exist_ok=True)
    lock = filelock.ReadWriteLock(folder / f"{key}.db")
    with lock.write_lock() if alone else lock.read_lock():
        yield
