"""The host stand-in for cuda_rt (tests/cuda_host.py): memory, addresses, copies, timer and graph semantics."""

from __future__ import annotations

import itertools

import cuda_host as host
import numpy as np
import pytest

from harness.backends.cuda_rt import CudaError


@pytest.fixture
def stream() -> host.Stream:
    return host.Stream()


def test_gpu_problem_and_device_facts_say_it_is_no_gpu() -> None:
    assert host.gpu_problem() is None
    facts = host.device_facts()
    assert facts["name"] == "host memory stand-in (no GPU)"
    assert set(facts) == {"name", "compute_capability", "total_memory_bytes", "driver_version", "runtime_version"}


def test_buffers_have_unique_aligned_addresses() -> None:
    buffers = [host.DeviceBuffer(n) for n in (1, 255, 256, 257, 4096)] + [host.PinnedBuffer(100)]
    addresses = [b.ptr for b in buffers]
    assert len(set(addresses)) == len(addresses)
    assert all(a % 256 == 0 and a >= 0x7F00_0000_0000 for a in addresses)
    spans = sorted((b.ptr, b.ptr + b.nbytes) for b in buffers)
    assert all(end <= next_start for (_, end), (next_start, _) in itertools.pairwise(spans))  # no overlap


def test_bytes_round_trip_through_a_device_buffer() -> None:
    data = bytes(range(256)) * 4
    with host.DeviceBuffer(len(data)) as buffer:
        host.write_device(buffer.ptr, data)
        assert host.read_device(buffer.ptr, len(data)) == data


def test_addresses_inside_a_buffer_work() -> None:
    with host.DeviceBuffer(64) as buffer:
        host.write_device(buffer.ptr + 10, b"\x01\x02\x03")
        assert host.read_device(buffer.ptr + 9, 5) == b"\x00\x01\x02\x03\x00"
        assert host.read_device(buffer.ptr + 63, 1) == b"\x00"  # the last byte


@pytest.mark.parametrize(
    ("offset", "nbytes"),
    [(-1, 1), (64, 1), (60, 8), (0, 65)],
    ids=["before", "past-the-end", "straddles-the-end", "too-long"],
)
def test_addresses_outside_a_buffer_raise(offset: int, nbytes: int) -> None:
    with host.DeviceBuffer(64) as buffer:
        with pytest.raises(CudaError, match=r"^cudaMemcpy failed: cudaErrorInvalidValue: invalid address") as caught:
            host.read_device(buffer.ptr + offset, nbytes)
        assert caught.value.call == "cudaMemcpy"
        with pytest.raises(CudaError, match="invalid address"):
            host.write_device(buffer.ptr + offset, bytes(nbytes))


def test_unknown_and_freed_addresses_raise() -> None:
    with pytest.raises(CudaError, match="cudaMemcpy failed: .*invalid address 0x1234"):
        host.read_device(0x1234, 1)
    buffer = host.DeviceBuffer(16)
    host.write_device(buffer.ptr, bytes(16))
    buffer.free()
    buffer.free()  # idempotent
    with pytest.raises(CudaError, match="cudaMemcpy failed"):
        host.read_device(buffer.ptr, 1)
    with pytest.raises(CudaError, match="cudaMemcpy failed"):
        host.write_device(buffer.ptr + 8, b"x")


def test_copies_host_device_host(stream: host.Stream) -> None:
    src = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    out = np.zeros_like(src)
    with host.DeviceBuffer(src.nbytes) as a, host.DeviceBuffer(src.nbytes) as b:
        host.copy_to_device(a, src, stream)
        host.copy_device_to_device(b, a, src.nbytes, stream)
        stream.synchronize()
        host.copy_to_host(out, b, stream)
        assert host.read_device(a.ptr, src.nbytes) == src.tobytes()
    np.testing.assert_array_equal(out, src)


def test_partial_device_to_device_copy(stream: host.Stream) -> None:
    with host.DeviceBuffer(8) as a, host.DeviceBuffer(8) as b:
        host.write_device(a.ptr, b"abcdefgh")
        host.copy_device_to_device(b, a, 3, stream)
        assert host.read_device(b.ptr, 8) == b"abc\x00\x00\x00\x00\x00"


def test_copies_check_their_arguments(stream: host.Stream) -> None:
    with host.DeviceBuffer(8) as small:
        with pytest.raises(ValueError, match="copying 16 bytes, but the device buffer holds 8"):
            host.copy_to_device(small, np.zeros(4, np.float32), stream)
        with pytest.raises(ValueError, match="C-contiguous"):
            host.copy_to_device(small, np.zeros((2, 4), np.uint8)[:, ::2], stream)
        with pytest.raises(ValueError, match="writable"):
            host.copy_to_host(np.frombuffer(bytes(8), np.uint8), small, stream)
        freed = host.DeviceBuffer(8)
        freed.free()
        with pytest.raises(CudaError, match="cudaMemcpyAsync failed: .*invalid address"):
            host.copy_device_to_device(small, freed, 8, stream)


def test_a_destroyed_stream_is_rejected() -> None:
    stream = host.Stream()
    host.synchronize_stream(stream.handle)
    assert host.stream_is_capturing(stream.handle) is False
    stream.destroy()
    stream.destroy()  # idempotent
    with pytest.raises(CudaError, match="cudaStreamSynchronize failed: cudaErrorInvalidResourceHandle"):
        stream.synchronize()
    with pytest.raises(CudaError, match="cudaMemcpyAsync failed"), host.DeviceBuffer(4) as buffer:
        host.copy_to_device(buffer, np.zeros(4, np.uint8), stream)


def test_pinned_view_shares_memory(stream: host.Stream) -> None:
    with host.PinnedBuffer(64) as pinned, host.DeviceBuffer(64) as device:
        view = pinned.view(np.float32, (4, 4))
        view[:] = np.arange(16, dtype=np.float32).reshape(4, 4)
        assert host.read_device(pinned.ptr, 64) == view.tobytes()  # no copy: the same bytes
        host.copy_to_device(device, view, stream)
        assert host.read_device(device.ptr + 4, 4) == np.float32(1).tobytes()
        assert pinned.view(np.uint8, (8,)).tolist() == list(view.view(np.uint8).reshape(-1)[:8])
        with pytest.raises(ValueError, match="needs 128 bytes, the buffer has 64"):
            pinned.view(np.float64, (16,))
    with pytest.raises(ValueError, match="freed"):
        pinned.view(np.uint8, (1,))


def test_sizes_must_be_positive_integers() -> None:
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="nbytes must be an integer >= 1"):
            host.DeviceBuffer(bad)  # type: ignore[arg-type]


def test_timer_durations_are_positive(stream: host.Stream) -> None:
    with host.EventTimer(stream) as timer:
        assert timer.gated and timer.gate_problem is None
        for measure in (timer.gpu_seconds, timer.naive_gpu_seconds, timer.host_seconds):
            assert measure(lambda: None) > 0


def test_launches_divide_the_interval(stream: host.Stream) -> None:
    """gpu_seconds runs enqueue `launches` times and reports the time per launch."""
    calls = []
    clock = iter(range(0, 10**12, 10**9))  # each perf_counter_ns call is 1 s later

    def enqueue() -> None:
        calls.append(1)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(host.time, "perf_counter_ns", lambda: next(clock))
        timer = host.EventTimer(stream)
        assert timer.gpu_seconds(enqueue, launches=4) == pytest.approx(0.25)  # 1 s over 4 launches
    assert len(calls) == 4
    with pytest.raises(ValueError, match="launches must be an integer >= 1"):
        timer.gpu_seconds(enqueue, launches=0)


def test_graph_replays_the_enqueued_work(stream: host.Stream) -> None:
    with host.DeviceBuffer(4) as a, host.DeviceBuffer(4) as b:
        graph = host.CudaGraph(stream, lambda: host.copy_device_to_device(b, a, 4, stream))
        host.write_device(a.ptr, b"one!")
        assert host.read_device(b.ptr, 4) == bytes(4)  # capturing ran nothing
        graph.launch()
        assert host.read_device(b.ptr, 4) == b"one!"
        host.write_device(a.ptr, b"two!")
        graph.launch()  # a replay reads the buffers anew
        assert host.read_device(b.ptr, 4) == b"two!"
        graph.close()
        with pytest.raises(CudaError, match="cudaGraphLaunch failed"):
            graph.launch()
