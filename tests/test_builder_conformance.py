"""Builder conformance: the double accepts and rejects exactly the networks TensorRT for RTX does.

Each entry of tests/conformance_corpus.py declares once the verdict that TensorRT for RTX gives it
(measured, and re-measured here whenever `tensorrt_rtx` is installed). The double, as TensorRT 10.16
and as 11.4, is held to that same verdict; TensorRT for RTX is held to it too, so a change in the real
builder shows up as a failing "rtx" case rather than as a silently wrong declaration.

The double imitates TensorRT, not TensorRT for RTX; where the two are documented to differ, the
corpus compares only what they share (the build's verdict), and the tests at the end pin the
differences down with the documentation that states them.
"""

from __future__ import annotations

import functools
import warnings
from types import ModuleType

import pytest

from tests import cuda_host
from tests.conformance_corpus import ENTRIES, Entry, open_session, verdict
from tests.trt_double import make_tensorrt

LIBRARIES = ("double-10.16", "double-11.4", "rtx")
RTX_MISSING = "TensorRT for RTX is not installed: pip install 'trt-harness[rtx]'"

# Documentation of the differences between TensorRT and TensorRT for RTX that the double keeps.
PORTING_GUIDE = "https://docs.nvidia.com/deeplearning/tensorrt-rtx/latest/inference-library/porting.html"
RTX_TIMING_CACHE = (
    "https://docs.nvidia.com/deeplearning/tensorrt-rtx/latest/inference-library/timing-cache-migration.html"
)
RTX_DEPRECATED = "https://docs.nvidia.com/deeplearning/tensorrt-rtx/latest/_static/cpp-api/deprecated.html"
TRT11_STRONG_TYPING = (
    "https://docs.nvidia.com/deeplearning/tensorrt/latest/api/migration/tensorrt-10x-to-11x-python-api-patterns.html"
)


def library(name: str) -> ModuleType:
    """A fresh double of that version on the host CUDA stand-in, or the real TensorRT for RTX module."""
    if name == "rtx":
        return pytest.importorskip("tensorrt_rtx", reason=RTX_MISSING)
    return make_tensorrt(name.removeprefix("double-"), cuda_host)


@functools.cache
def measured(entry_name: str, library_name: str) -> tuple[str, str]:
    """(verdict, what the library logged last) for one entry; each pair is built once per session."""
    entry = next(entry for entry in ENTRIES if entry.name == entry_name)
    result, session = verdict(library(library_name), entry)
    return result, "; ".join([*session.notes, session.last_error()])


each_entry = pytest.mark.parametrize("entry", ENTRIES, ids=lambda entry: entry.name)


@each_entry
@pytest.mark.parametrize("library_name", LIBRARIES)
def test_the_verdict_is_the_declared_one(entry: Entry, library_name: str) -> None:
    """Double and TensorRT for RTX alike must give the verdict the entry declares (RTX's, as measured)."""
    result, detail = measured(entry.name, library_name)
    assert result == entry.expected, f"{library_name}: {entry.name} was {result}, declared {entry.expected}: {detail}"


@each_entry
def test_the_double_agrees_with_tensorrt_for_rtx_as_measured_now(entry: Entry) -> None:
    rtx, _ = measured(entry.name, "rtx")
    assert {name: measured(entry.name, name)[0] for name in LIBRARIES} == dict.fromkeys(LIBRARIES, rtx)


# --- documented differences between TensorRT (which the double imitates) and TensorRT for RTX -------------


def test_weak_typing_precision_flags_exist_on_ten_only_and_not_on_rtx() -> None:
    """Difference kept: TensorRT 10 has BuilderFlag.FP16 / INT8 (weak typing); TensorRT 11 removed them
    (TRT11_STRONG_TYPING), and TensorRT for RTX builds strongly typed networks only, without those flags
    (PORTING_GUIDE). Every corpus network is strongly typed, so that difference never decides a verdict."""
    assert {"FP16", "INT8"} <= set(make_tensorrt("10.16", cuda_host).BuilderFlag.__members__)
    assert not {"FP16", "INT8"} & set(make_tensorrt("11.4", cuda_host).BuilderFlag.__members__)
    rtx = pytest.importorskip("tensorrt_rtx", reason=RTX_MISSING)
    assert not {"FP16", "INT8", "BF16"} & set(rtx.BuilderFlag.__members__)


@pytest.mark.parametrize("library_name", LIBRARIES)
def test_a_garbage_timing_cache_is_refused_by_the_double_and_ignored_by_rtx(library_name: str) -> None:
    """Difference kept: TensorRT for RTX's timing-cache calls are no-ops ("Deprecated in TensorRT-RTX 1.2.
    Timing cache operations are no-ops in TensorRT-RTX.", RTX_DEPRECATED; RTX_TIMING_CACHE): its
    set_timing_cache takes garbage (after warning "Failed to deserialize timing cache. Returning an empty
    timing cache.") and returns True. The double imitates TensorRT, whose timing cache is real, and refuses
    the garbage cache with an ERROR. Either way the build goes on, and that is the verdict the corpus compares."""
    trt = library(library_name)
    session = open_session(trt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # RTX deprecates every timing-cache call
        taken = session.config.set_timing_cache(session.config.create_timing_cache(b"not a timing cache"), False)
    assert taken is (library_name == "rtx")
    assert measured("garbage-timing-cache", library_name)[0] == "accepted"
