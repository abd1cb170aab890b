"""harness.backends.cuda_rt on a real GPU: run wherever cuda-python finds one (they need no TensorRT,
so not the `gpu` marker), skipped with gpu_problem()'s reason elsewhere. The bandwidth band is
checked on an H200 (HBM3e, 4.8 TB/s peak); other GPUs only have to move the bytes."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator

import numpy as np
import pytest

from harness.backends import cuda_rt

GIB = 1 << 30
FLOOR_LIMIT_S = 5e-6
COPY_BAND_TB_S = (3.5, 4.8)  # read + write of a device-to-device copy on an H200


@pytest.fixture(autouse=True)
def _needs_a_gpu() -> None:
    # A fixture, not a skipif mark: gpu_problem() initializes CUDA, which collection must not do.
    problem = cuda_rt.gpu_problem()
    if problem is not None:
        pytest.skip(problem)


@pytest.fixture
def stream() -> Iterator[cuda_rt.Stream]:
    with cuda_rt.Stream() as stream:
        yield stream


def test_device_facts() -> None:
    facts = cuda_rt.device_facts()
    assert facts["name"]
    major, minor = str(facts["compute_capability"]).split(".")
    assert int(major) >= 5 and int(minor) >= 0
    assert isinstance(facts["total_memory_bytes"], int) and facts["total_memory_bytes"] > GIB
    assert isinstance(facts["driver_version"], int) and facts["driver_version"] >= 12000
    assert isinstance(facts["runtime_version"], int) and facts["runtime_version"] >= 12000


def test_round_trip_through_device_and_pinned_buffers(stream: cuda_rt.Stream) -> None:
    n = 1 << 20
    with cuda_rt.PinnedBuffer(4 * n) as up, cuda_rt.PinnedBuffer(4 * n) as down, cuda_rt.DeviceBuffer(4 * n) as dev:
        source = up.view(np.float32, (n,))
        source[:] = np.random.default_rng(0).standard_normal(n, dtype=np.float32)
        result = down.view(np.float32, (n,))
        result[:] = 0
        cuda_rt.copy_to_device(dev, source, stream)
        cuda_rt.copy_to_host(result, dev, stream)
        stream.synchronize()
        np.testing.assert_array_equal(result, source)
        # Synchronous byte access, also in the middle of a buffer.
        cuda_rt.write_device(dev.ptr + 8, b"\x01\x02\x03\x04")
        assert (
            cuda_rt.read_device(dev.ptr + 4, 12) == source[1:2].tobytes() + b"\x01\x02\x03\x04" + source[3:4].tobytes()
        )
        del source, result  # views of pinned memory must go before the memory does


def test_pageable_arrays_copy_too(stream: cuda_rt.Stream) -> None:
    data = np.arange(1000, dtype=np.int64)
    back = np.zeros_like(data)
    with cuda_rt.DeviceBuffer(data.nbytes) as dev:
        cuda_rt.copy_to_device(dev, data, stream)
        cuda_rt.copy_to_host(back, dev, stream)
        stream.synchronize()
    np.testing.assert_array_equal(back, data)


def test_the_timer_is_gated_on_this_gpu(stream: cuda_rt.Stream) -> None:
    with cuda_rt.EventTimer(stream) as timer:
        assert timer.gated, timer.gate_problem
        assert timer.gate_problem is None


@pytest.mark.parametrize("blocking_sync", [False, True], ids=["spin", "blocking"])
def test_timer_floor_of_an_empty_interval(stream: cuda_rt.Stream, blocking_sync: bool) -> None:
    with cuda_rt.EventTimer(stream, blocking_sync=blocking_sync) as timer:
        samples = [timer.gpu_seconds(lambda: None) for _ in range(200)]
        assert min(samples) >= 0
        assert statistics.median(samples) < FLOOR_LIMIT_S
        assert timer.naive_gpu_seconds(lambda: None) >= 0
        assert timer.host_seconds(lambda: None) > 0


def test_gated_copy_bandwidth_of_one_gib(stream: cuda_rt.Stream) -> None:
    with cuda_rt.DeviceBuffer(GIB) as src, cuda_rt.DeviceBuffer(GIB) as dst, cuda_rt.EventTimer(stream) as timer:

        def copy() -> None:
            cuda_rt.copy_device_to_device(dst, src, GIB, stream)

        for _ in range(3):  # warm-up: first touches of the pages, clocks ramping up
            timer.gpu_seconds(copy)
        seconds = statistics.median(timer.gpu_seconds(copy) for _ in range(20))
        tb_per_s = 2 * GIB / seconds / 1e12  # every byte is read once and written once
        if "H200" in str(cuda_rt.device_facts()["name"]):
            assert COPY_BAND_TB_S[0] <= tb_per_s <= COPY_BAND_TB_S[1], f"{tb_per_s:.2f} TB/s"
        # Batch mode: launches back to back, time per launch, about the same.
        batched = timer.gpu_seconds(copy, launches=4)
        assert batched == pytest.approx(seconds, rel=0.1)


def test_graph_replays_a_copy(stream: cuda_rt.Stream) -> None:
    seen_capturing = []
    with cuda_rt.DeviceBuffer(16) as a, cuda_rt.DeviceBuffer(16) as b:

        def enqueue() -> None:
            seen_capturing.append(cuda_rt.stream_is_capturing(stream.handle))
            cuda_rt.copy_device_to_device(b, a, 16, stream)

        cuda_rt.write_device(b.ptr, bytes(16))
        cuda_rt.write_device(a.ptr, b"first replay....")
        with cuda_rt.CudaGraph(stream, enqueue) as graph:
            assert seen_capturing == [True]
            assert not cuda_rt.stream_is_capturing(stream.handle)
            assert cuda_rt.read_device(b.ptr, 16) == bytes(16)  # capture ran nothing
            graph.launch()
            stream.synchronize()
            assert cuda_rt.read_device(b.ptr, 16) == b"first replay...."
            cuda_rt.write_device(a.ptr, b"second replay...")
            graph.launch()
            stream.synchronize()
            assert cuda_rt.read_device(b.ptr, 16) == b"second replay..."


def test_a_failing_call_raises_cuda_error_naming_it() -> None:
    with pytest.raises(cuda_rt.CudaError, match=r"^cudaMalloc failed: cudaErrorMemoryAllocation: ") as caught:
        cuda_rt.DeviceBuffer(1 << 62)
    assert caught.value.call == "cudaMalloc"
    assert caught.value.description  # cudaGetErrorString's text, e.g. "out of memory"


def test_a_blocked_enqueue_is_released_and_rejected(stream: cuda_rt.Stream, monkeypatch: pytest.MonkeyPatch) -> None:
    """If enqueue() stalls while the stream is held, the watchdog opens the gate and the sample is refused."""
    monkeypatch.setattr(cuda_rt, "_GATE_TIMEOUT_S", 0.2)
    with cuda_rt.EventTimer(stream) as timer:
        with pytest.raises(RuntimeError, match="did not return within 0.2 s"):
            timer.gpu_seconds(lambda: time.sleep(0.5))
        assert timer.gpu_seconds(lambda: None) < FLOOR_LIMIT_S  # the timer still works afterwards


def test_a_full_launch_queue_is_released_and_rejected(stream: cuda_rt.Stream, monkeypatch: pytest.MonkeyPatch) -> None:
    """More launches than the held stream's queue takes (1,000-2,000 on an H200) block in CUDA: rejected, no hang."""
    monkeypatch.setattr(cuda_rt, "_GATE_TIMEOUT_S", 0.5)
    with cuda_rt.DeviceBuffer(256) as a, cuda_rt.DeviceBuffer(256) as b, cuda_rt.EventTimer(stream) as timer:

        def tiny_copy() -> None:
            cuda_rt.copy_device_to_device(b, a, 256, stream)

        with pytest.raises(RuntimeError, match="launch queue"):
            timer.gpu_seconds(tiny_copy, launches=20_000)
        stream.synchronize()
        assert timer.gpu_seconds(tiny_copy, launches=100) < FLOOR_LIMIT_S  # within the queue: fine
