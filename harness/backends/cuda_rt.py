"""The CUDA runtime through cuda-python. The only module in harness/ that calls cuda-python.

cuda-python is imported on first use, never at import time: the plugin imports this module in every
session, also on machines without cuda-python, where gpu_problem() says how to install it. Every
call's error code is checked and a failure raises CudaError naming the call. Pointers and handles
are plain ints for callers; they become cuda-python's handle types only at the call.
"""

from __future__ import annotations

import ctypes
import functools
import math
import os
import threading
import time
from collections.abc import Callable
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from typing_extensions import Self

_MS_PER_S = 1e3
# A gated sample holds the stream until the host has enqueued everything. If enqueue() blocks on
# that stream it would wait forever: a synchronous copy or synchronize does, and so does any launch
# once the stream's queue is full (between 1,000 and 2,000 operations on an H200 with CUDA 13,
# measured). So a watchdog opens the gate after this long and the sample is rejected.
_GATE_TIMEOUT_S = 5.0


class CudaError(RuntimeError):
    """A CUDA call failed: "<call> failed: <error name>: <description>"."""

    def __init__(self, call: str, error_name: str, description: str) -> None:
        super().__init__(f"{call} failed: {error_name}: {description}")
        self.call = call
        self.error_name = error_name
        self.description = description


@functools.cache
def _runtime() -> ModuleType:
    """cuda-python's runtime bindings: `cuda.bindings.runtime` (12.6+), else the older `cuda.cudart`."""
    try:
        from cuda.bindings import runtime
    except ImportError:
        from cuda import cudart as runtime
    module: ModuleType = runtime
    return module


@functools.cache
def _driver() -> ModuleType:
    """cuda-python's driver bindings: `cuda.bindings.driver` (12.6+), else the older `cuda.cuda`."""
    try:
        from cuda.bindings import driver
    except ImportError:
        from cuda import cuda as driver
    module: ModuleType = driver
    return module


def _text(value: object, fallback: str) -> str:
    """cuda-python returns C strings as bytes; None when the lookup itself failed."""
    if isinstance(value, bytes):  # a C char array may hold bytes after its terminating NUL
        return value.split(b"\x00", 1)[0].decode(errors="replace")
    return fallback if value is None else str(value)


def _checked(module: ModuleType, prefix: str, call: str, args: tuple[object, ...]) -> Any:
    """Call `module.<call>`; raise CudaError unless it returned success (0); return its value(s)."""
    error, *values = getattr(module, call)(*args)
    if int(error) != 0:
        name = getattr(module, f"{prefix}GetErrorName")(error)[1]
        description = getattr(module, f"{prefix}GetErrorString")(error)[1]
        raise CudaError(call, _text(name, getattr(error, "name", str(error))), _text(description, "no description"))
    return None if not values else values[0] if len(values) == 1 else tuple(values)


def _rt(call: str, *args: object) -> Any:
    return _checked(_runtime(), "cuda", call, args)


def _drv(call: str, *args: object) -> Any:
    return _checked(_driver(), "cu", call, args)


def _cuda_stream(handle: int) -> Any:
    return _runtime().cudaStream_t(handle)


def _memcpy_kind(name: str) -> Any:
    return getattr(_runtime().cudaMemcpyKind, name)


def gpu_problem() -> str | None:
    """Why no CUDA GPU can be used here, or None when one can."""
    try:
        runtime = _runtime()
    except ImportError:
        return (
            "cuda-python is not installed; install it with: pip install cuda-python (the gpu and rtx extras bring it)"
        )
    try:
        error, count = runtime.cudaGetDeviceCount()
    except RuntimeError as failure:  # some cuda-python versions raise when libcuda cannot be loaded
        return f"no usable CUDA GPU: cuda-python cannot load the CUDA driver ({failure})"
    if error != runtime.cudaError_t.cudaSuccess or count == 0:
        devices = "" if count is None else f" with {count} devices"
        return f"no usable CUDA GPU: cudaGetDeviceCount returned {error.name}{devices}"
    return None


def visible_gpus() -> list[str]:
    """The GPUs this process may use, named as CUDA_VISIBLE_DEVICES names them (indices or UUIDs)."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [name.strip() for name in listed.split(",") if name.strip()]
    if gpu_problem() is not None:
        return []
    return [str(index) for index in range(int(_rt("cudaGetDeviceCount")))]


def device_facts(device: int = 0) -> dict[str, object]:
    """What identifies the GPU and the CUDA stack in results. Versions are ints as CUDA reports them (13000)."""
    props = _rt("cudaGetDeviceProperties", device)
    return {
        "name": _text(props.name, "unknown"),
        "compute_capability": f"{props.major}.{props.minor}",
        "total_memory_bytes": int(props.totalGlobalMem),
        "driver_version": int(_rt("cudaDriverGetVersion")),
        "runtime_version": int(_rt("cudaRuntimeGetVersion")),
    }


def _require_count(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


class _Resource:
    """`with` support: leaving the block releases what the object holds."""

    def _release(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._release()


class DeviceBuffer(_Resource):
    """`nbytes` of device memory (cudaMalloc). free() is idempotent."""

    ptr: int
    nbytes: int

    def __init__(self, nbytes: int) -> None:
        _require_count("nbytes", nbytes)
        self.nbytes = nbytes
        self.ptr = int(_rt("cudaMalloc", nbytes))
        self._live = True

    def free(self) -> None:
        if self._live:
            self._live = False
            _rt("cudaFree", self.ptr)

    _release = free


class PinnedBuffer(_Resource):
    """`nbytes` of page-locked host memory (cudaHostAlloc): async copies need it to be truly async."""

    ptr: int
    nbytes: int

    def __init__(self, nbytes: int) -> None:
        _require_count("nbytes", nbytes)
        self.nbytes = nbytes
        self.ptr = int(_rt("cudaHostAlloc", nbytes, _runtime().cudaHostAllocDefault))
        self._live = True

    def view(self, dtype: npt.DTypeLike, shape: tuple[int, ...]) -> np.ndarray:
        """An array over this memory, no copy. It dangles after free(): drop it first."""
        item = np.dtype(dtype)
        count = math.prod(shape)
        if not self._live:
            raise ValueError("view() of a freed PinnedBuffer")
        if count * item.itemsize > self.nbytes:
            raise ValueError(f"{shape} of {item} needs {count * item.itemsize} bytes, the buffer has {self.nbytes}")
        raw = (ctypes.c_ubyte * self.nbytes).from_address(self.ptr)
        return np.frombuffer(memoryview(raw), dtype=item, count=count).reshape(shape)

    def free(self) -> None:
        if self._live:
            self._live = False
            _rt("cudaFreeHost", self.ptr)

    _release = free


class Stream(_Resource):
    """A non-blocking stream: it never syncs with the legacy default stream, so stray work there cannot
    serialize with ours or leak into its timings."""

    handle: int

    def __init__(self) -> None:
        self.handle = int(_rt("cudaStreamCreateWithFlags", _runtime().cudaStreamNonBlocking))
        self._live = True

    def synchronize(self) -> None:
        synchronize_stream(self.handle)

    def destroy(self) -> None:
        if self._live:
            self._live = False
            _rt("cudaStreamDestroy", _cuda_stream(self.handle))

    _release = destroy


def _check_copy(name: str, nbytes: int, capacity: int, array: np.ndarray | None = None) -> None:
    # cudaMemcpy* copies one flat range of bytes: a strided view would copy the wrong elements.
    if array is not None and not array.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (use np.ascontiguousarray)")
    if nbytes > capacity:
        raise ValueError(f"copying {nbytes} bytes, but the device buffer holds {capacity}")


def copy_to_device(dst: DeviceBuffer, src: np.ndarray, stream: Stream) -> None:
    """Enqueue an H2D copy of all of `src`. From pageable memory CUDA stages it and the call blocks."""
    _check_copy("src", src.nbytes, dst.nbytes, src)
    kind = _memcpy_kind("cudaMemcpyHostToDevice")
    _rt("cudaMemcpyAsync", dst.ptr, src.ctypes.data, src.nbytes, kind, _cuda_stream(stream.handle))


def copy_to_host(dst: np.ndarray, src: DeviceBuffer, stream: Stream) -> None:
    """Enqueue a D2H copy filling `dst`; it is valid after the stream is synchronized."""
    _check_copy("dst", dst.nbytes, src.nbytes, dst)
    if not dst.flags.writeable:
        raise ValueError("dst must be writable")
    kind = _memcpy_kind("cudaMemcpyDeviceToHost")
    _rt("cudaMemcpyAsync", dst.ctypes.data, src.ptr, dst.nbytes, kind, _cuda_stream(stream.handle))


def copy_device_to_device(dst: DeviceBuffer, src: DeviceBuffer, nbytes: int, stream: Stream) -> None:
    _check_copy("nbytes", nbytes, min(dst.nbytes, src.nbytes))
    kind = _memcpy_kind("cudaMemcpyDeviceToDevice")
    _rt("cudaMemcpyAsync", dst.ptr, src.ptr, nbytes, kind, _cuda_stream(stream.handle))


def read_device(ptr: int, nbytes: int) -> bytes:
    """Copy device memory to the host now. It runs on the legacy stream: synchronize yours first."""
    out = bytearray(nbytes)
    host = np.frombuffer(out, dtype=np.uint8)
    _rt("cudaMemcpy", host.ctypes.data, ptr, nbytes, _memcpy_kind("cudaMemcpyDeviceToHost"))
    return bytes(out)


def write_device(ptr: int, data: bytes) -> None:
    """Copy bytes to device memory now: the bytes are there when this returns, for work on any stream."""
    host = np.frombuffer(data, dtype=np.uint8)
    _rt("cudaMemcpy", ptr, host.ctypes.data, host.nbytes, _memcpy_kind("cudaMemcpyHostToDevice"))
    # cudaMemcpy from pageable memory may return once the bytes are staged, before the DMA lands; our streams are
    # non-blocking, so a copy queued on one next could read the old bytes (an H200 run read an engine's outputs
    # as zeros). Waiting for the device closes that window.
    _rt("cudaDeviceSynchronize")


def synchronize_stream(handle: int) -> None:
    _rt("cudaStreamSynchronize", _cuda_stream(handle))


def stream_is_capturing(handle: int) -> bool:
    status = _rt("cudaStreamIsCapturing", _cuda_stream(handle))
    return bool(status != _runtime().cudaStreamCaptureStatus.cudaStreamCaptureStatusNone)


class EventTimer(_Resource):
    """Times work enqueued on `stream` with CUDA events. Gated (default): the stream is held by
    cuStreamWaitValue32 on a host-mapped 32-bit flag while start event, work and end event are enqueued, then
    the host writes the flag and the GPU runs them back to back — so host enqueue time cannot leak into the
    interval (as nvbench does with its blocking kernel). Naive: record, enqueue, record.

    enqueue() must only enqueue: while the gate is shut, anything waiting for the stream (a D2H copy
    into pageable memory, a synchronize) would never return; the watchdog then rejects the sample.
    """

    gated: bool
    gate_problem: str | None

    def __init__(self, stream: Stream, *, blocking_sync: bool = False) -> None:
        runtime = _runtime()
        self._stream = stream
        # BlockingSync: the host sleeps in cudaEventSynchronize (less CPU, more wake-up latency);
        # default: it spins (under the default cudaDeviceScheduleAuto with few contexts).
        flags = runtime.cudaEventBlockingSync if blocking_sync else runtime.cudaEventDefault
        self._start = _rt("cudaEventCreateWithFlags", flags)
        self._end = _rt("cudaEventCreateWithFlags", flags)
        self._flag_host = 0
        self._flag_dev = 0
        self._flag: ctypes.c_uint32 | None = None
        self._forced = False
        self._closed = False
        self.gate_problem = self._set_up_gate()
        self.gated = self.gate_problem is None

    def _set_up_gate(self) -> str | None:
        """Allocate the flag and prove the wait works here; on failure say why (timings fall back to naive)."""
        try:
            self._flag_host = int(_rt("cudaHostAlloc", 4, _runtime().cudaHostAllocMapped))
            self._flag_dev = int(_rt("cudaHostGetDevicePointer", self._flag_host, 0))
            self._flag = ctypes.c_uint32.from_address(self._flag_host)
            # A wait that is already satisfied is a real test of the driver's cuStreamWaitValue32 on
            # this device (the GEQ test we use is in the base feature; the device attribute
            # CAN_USE_STREAM_WAIT_VALUE_NOR only covers the NOR test).
            self._flag.value = 1
            self._wait_on_flag()
            self._stream.synchronize()
        except CudaError as error:
            return f"cannot gate the stream, timings are naive and may include host enqueue time: {error}"
        return None

    def _wait_on_flag(self) -> None:
        driver = _driver()
        geq = int(driver.CUstreamWaitValue_flags.CU_STREAM_WAIT_VALUE_GEQ)
        stream = driver.CUstream(self._stream.handle)
        _drv("cuStreamWaitValue32", stream, driver.CUdeviceptr(self._flag_dev), 1, geq)

    def _open_gate_late(self) -> None:
        self._forced = True
        if self._flag is not None:
            self._flag.value = 1

    def _record_around(self, enqueue: Callable[[], None], launches: int) -> None:
        stream = _cuda_stream(self._stream.handle)
        _rt("cudaEventRecord", self._start, stream)
        for _ in range(launches):
            enqueue()
        _rt("cudaEventRecord", self._end, stream)

    def _elapsed_s(self) -> float:
        _rt("cudaEventSynchronize", self._end)
        return float(_rt("cudaEventElapsedTime", self._start, self._end)) / _MS_PER_S

    def gpu_seconds(self, enqueue: Callable[[], None], launches: int = 1) -> float:
        """GPU time of `launches` back-to-back enqueue() calls, divided by `launches` (gated when possible)."""
        _require_count("launches", launches)
        if self._flag is None or not self.gated:
            self._record_around(enqueue, launches)
            return self._elapsed_s() / launches
        self._forced = False
        self._flag.value = 0  # the last wait completed (its end event was synchronized): safe to re-arm
        self._wait_on_flag()
        watchdog = threading.Timer(_GATE_TIMEOUT_S, self._open_gate_late)
        watchdog.start()
        try:
            self._record_around(enqueue, launches)
        finally:
            watchdog.cancel()
            self._flag.value = 1
        seconds = self._elapsed_s() / launches
        if self._forced:
            raise RuntimeError(
                f"EventTimer: enqueue() did not return within {_GATE_TIMEOUT_S} s while the stream was held: it "
                "waits for the stream (a synchronous copy?) or filled its launch queue (use fewer launches)"
            )
        return seconds

    def naive_gpu_seconds(self, enqueue: Callable[[], None]) -> float:
        """Record, enqueue, record: includes host enqueue time when the GPU outruns the host. For comparison."""
        self._record_around(enqueue, 1)
        return self._elapsed_s()

    def host_seconds(self, enqueue: Callable[[], None]) -> float:
        """Host time from before enqueue() until the work is done: the latency a caller sees."""
        begin = time.perf_counter()
        enqueue()
        # The end event (not cudaStreamSynchronize) so that blocking_sync decides spin or sleep here too.
        _rt("cudaEventRecord", self._end, _cuda_stream(self._stream.handle))
        _rt("cudaEventSynchronize", self._end)
        return time.perf_counter() - begin

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._flag = None
        _rt("cudaEventDestroy", self._start)
        _rt("cudaEventDestroy", self._end)
        if self._flag_host:
            _rt("cudaFreeHost", self._flag_host)

    _release = close


class CudaGraph(_Resource):
    """The work enqueue() puts on `stream`, captured once and replayed with one launch."""

    def __init__(self, stream: Stream, enqueue: Callable[[], None]) -> None:
        runtime = _runtime()
        self._stream = stream
        self._exec: Any = None
        handle = _cuda_stream(stream.handle)
        # ThreadLocal: only this thread's unsafe calls (e.g. cudaMalloc) invalidate the capture;
        # other threads, such as another stream's user, are left alone.
        _rt("cudaStreamBeginCapture", handle, runtime.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal)
        try:
            enqueue()
        finally:
            graph = _rt("cudaStreamEndCapture", handle)  # always end, or the stream stays capturing
        try:
            self._exec = _rt("cudaGraphInstantiate", graph, 0)
        finally:
            _rt("cudaGraphDestroy", graph)  # the executable graph does not need its template

    def launch(self) -> None:
        if self._exec is None:
            raise CudaError("cudaGraphLaunch", "cudaErrorInvalidResourceHandle", "this CudaGraph was closed")
        _rt("cudaGraphLaunch", self._exec, _cuda_stream(self._stream.handle))

    def close(self) -> None:
        if self._exec is not None:
            graph_exec, self._exec = self._exec, None
            _rt("cudaGraphExecDestroy", graph_exec)

    _release = close
