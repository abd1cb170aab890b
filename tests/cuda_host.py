"""TEST STAND-IN for harness.backends.cuda_rt: the same public API over host memory, for machines without a GPU.

Nothing here touches CUDA. Its timings are host `perf_counter` timings of Python calls, never GPU
results: nothing it measures may be reported or compared as GPU performance. It exists so that code
written against cuda_rt (buffers, copies, timers, graphs) can be tested in CI; tests/test_cuda_rt_api.py
keeps its names and signatures identical to the real module's.

- "Device" and pinned buffers are numpy byte arrays at fake, unique, 256-aligned addresses from
  0x7f0000000000, kept in a registry: read_device/write_device work at any address inside a live
  buffer (also in its middle) and raise CudaError, the real module's class, anywhere else or after free().
- Streams have no queue: work runs when it is enqueued, copies are immediate, synchronize does nothing.
- EventTimer is always "gated", but on the host there is nothing to gate: it times enqueue() itself.
- CudaGraph keeps enqueue() and calls it again on every launch().
"""

from __future__ import annotations

import itertools
import math
import os
import time
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

# The real error class (code under test catches it), and the real argument checks and `with` support,
# so that both modules reject exactly the same inputs.
from harness.backends.cuda_rt import CudaError, _check_copy, _require_count, _Resource

_FIRST_ADDRESS = 0x7F00_0000_0000
_ALIGNMENT = 256
_NS_PER_S = 1e9


class _Memory:
    """The registry of live fake allocations, by base address."""

    def __init__(self) -> None:
        self._next = _FIRST_ADDRESS
        self._live: dict[int, np.ndarray] = {}

    def allocate(self, nbytes: int) -> tuple[int, np.ndarray]:
        base = self._next
        # One unused alignment unit after every buffer: running off its end lands in no buffer.
        self._next += (nbytes // _ALIGNMENT + 2) * _ALIGNMENT
        self._live[base] = np.zeros(nbytes, dtype=np.uint8)
        return base, self._live[base]

    def release(self, base: int) -> None:
        self._live.pop(base, None)

    def span(self, call: str, ptr: int, nbytes: int) -> np.ndarray:
        """The live bytes [ptr, ptr + nbytes), a view; CudaError naming `call` if not all inside one buffer."""
        for base, memory in self._live.items():
            if base <= ptr and ptr + nbytes <= base + memory.size:
                return memory[ptr - base : ptr - base + nbytes]
        raise CudaError(
            call,
            "cudaErrorInvalidValue",
            f"invalid address 0x{ptr:x} for {nbytes} bytes: not inside one live buffer (freed, never allocated, or "
            "past its end)",
        )


_MEMORY = _Memory()
_STREAM_HANDLES = itertools.count(0x5000_0000, _ALIGNMENT)
_LIVE_STREAMS: set[int] = set()


def _live_stream(call: str, handle: int) -> None:
    # Handle 0 is the legacy default stream, which always exists.
    if handle != 0 and handle not in _LIVE_STREAMS:
        raise CudaError(call, "cudaErrorInvalidResourceHandle", f"0x{handle:x} is not a live stream")


def gpu_problem() -> str | None:
    return None


def visible_gpus() -> list[str]:
    """No GPU here; CUDA_VISIBLE_DEVICES is taken at its word, as the real module does."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    return [name.strip() for name in listed.split(",") if name.strip()] if listed is not None else []


def device_facts(device: int = 0) -> dict[str, object]:
    return {
        "name": "host memory stand-in (no GPU)",
        "compute_capability": "0.0",
        "total_memory_bytes": 0,
        "driver_version": 0,
        "runtime_version": 0,
    }


class _Allocation(_Resource):
    """`nbytes` of registered host bytes; free() is idempotent and makes every address in them invalid."""

    ptr: int
    nbytes: int

    def __init__(self, nbytes: int) -> None:
        _require_count("nbytes", nbytes)
        self.nbytes = nbytes
        self.ptr, self._memory = _MEMORY.allocate(nbytes)
        self._live = True

    def free(self) -> None:
        self._live = False
        _MEMORY.release(self.ptr)

    _release = free


class DeviceBuffer(_Allocation):
    """Host bytes standing in for cudaMalloc'd device memory."""

    ptr: int
    nbytes: int

    def __init__(self, nbytes: int) -> None:
        super().__init__(nbytes)


class PinnedBuffer(_Allocation):
    """Host bytes standing in for cudaHostAlloc'd page-locked memory; view() shares them."""

    ptr: int
    nbytes: int

    def __init__(self, nbytes: int) -> None:
        super().__init__(nbytes)

    def view(self, dtype: npt.DTypeLike, shape: tuple[int, ...]) -> np.ndarray:
        item = np.dtype(dtype)
        count = math.prod(shape)
        if not self._live:
            raise ValueError("view() of a freed PinnedBuffer")
        if count * item.itemsize > self.nbytes:
            raise ValueError(f"{shape} of {item} needs {count * item.itemsize} bytes, the buffer has {self.nbytes}")
        return self._memory[: count * item.itemsize].view(item).reshape(shape)


class Stream(_Resource):
    """A handle with no queue: work enqueued "on" it has already run."""

    handle: int

    def __init__(self) -> None:
        self.handle = next(_STREAM_HANDLES)
        _LIVE_STREAMS.add(self.handle)

    def synchronize(self) -> None:
        synchronize_stream(self.handle)

    def destroy(self) -> None:
        _LIVE_STREAMS.discard(self.handle)

    _release = destroy


def _bytes_of(array: np.ndarray) -> np.ndarray:
    """The array's memory as a flat uint8 view (it is C-contiguous: _check_copy said so)."""
    return array.reshape(-1).view(np.uint8)


def copy_to_device(dst: DeviceBuffer, src: np.ndarray, stream: Stream) -> None:
    _check_copy("src", src.nbytes, dst.nbytes, src)
    _live_stream("cudaMemcpyAsync", stream.handle)
    _MEMORY.span("cudaMemcpyAsync", dst.ptr, src.nbytes)[:] = _bytes_of(src)


def copy_to_host(dst: np.ndarray, src: DeviceBuffer, stream: Stream) -> None:
    _check_copy("dst", dst.nbytes, src.nbytes, dst)
    if not dst.flags.writeable:
        raise ValueError("dst must be writable")
    _live_stream("cudaMemcpyAsync", stream.handle)
    _bytes_of(dst)[:] = _MEMORY.span("cudaMemcpyAsync", src.ptr, dst.nbytes)


def copy_device_to_device(dst: DeviceBuffer, src: DeviceBuffer, nbytes: int, stream: Stream) -> None:
    _check_copy("nbytes", nbytes, min(dst.nbytes, src.nbytes))
    _live_stream("cudaMemcpyAsync", stream.handle)
    source = _MEMORY.span("cudaMemcpyAsync", src.ptr, nbytes).copy()  # a copy: the ranges may overlap
    _MEMORY.span("cudaMemcpyAsync", dst.ptr, nbytes)[:] = source


def read_device(ptr: int, nbytes: int) -> bytes:
    return _MEMORY.span("cudaMemcpy", ptr, nbytes).tobytes()


def write_device(ptr: int, data: bytes) -> None:
    _MEMORY.span("cudaMemcpy", ptr, len(data))[:] = np.frombuffer(data, dtype=np.uint8)


def synchronize_stream(handle: int) -> None:
    _live_stream("cudaStreamSynchronize", handle)


def stream_is_capturing(handle: int) -> bool:
    _live_stream("cudaStreamIsCapturing", handle)
    return False


def _host_seconds(enqueue: Callable[[], None], launches: int) -> float:
    begin = time.perf_counter_ns()
    for _ in range(launches):
        enqueue()
    # At least 1 ns: a clock tick coarser than the work must not report "took no time".
    return max(time.perf_counter_ns() - begin, 1) / _NS_PER_S / launches


class EventTimer(_Resource):
    """Host perf_counter around enqueue(). "Gated" like the real timer, though on the host there is nothing
    to gate: the work runs inside enqueue(), so every method measures the same thing."""

    gated: bool
    gate_problem: str | None

    def __init__(self, stream: Stream, *, blocking_sync: bool = False) -> None:
        _live_stream("cudaEventRecord", stream.handle)
        self.gated = True
        self.gate_problem = None
        self.closed = False  # no events to destroy on the host; tests check that close() was called

    def gpu_seconds(self, enqueue: Callable[[], None], launches: int = 1) -> float:
        _require_count("launches", launches)
        return _host_seconds(enqueue, launches)

    def naive_gpu_seconds(self, enqueue: Callable[[], None]) -> float:
        return _host_seconds(enqueue, 1)

    def host_seconds(self, enqueue: Callable[[], None]) -> float:
        return _host_seconds(enqueue, 1)

    def close(self) -> None:
        self.closed = True

    _release = close


class CudaGraph(_Resource):
    """Keeps enqueue() and replays it on launch(). Like capture, constructing it runs no work."""

    def __init__(self, stream: Stream, enqueue: Callable[[], None]) -> None:
        _live_stream("cudaStreamBeginCapture", stream.handle)
        self._enqueue: Callable[[], None] | None = enqueue

    def launch(self) -> None:
        if self._enqueue is None:
            raise CudaError("cudaGraphLaunch", "cudaErrorInvalidResourceHandle", "this CudaGraph was closed")
        self._enqueue()

    def close(self) -> None:
        self._enqueue = None

    _release = close
