"""The host stand-in (tests/cuda_host.py) cannot drift from harness.backends.cuda_rt: same public names,
same signatures of functions and methods, same declared attributes. Needs neither a GPU nor cuda-python."""

from __future__ import annotations

import inspect
from types import ModuleType

import cuda_host
import pytest

from harness.backends import cuda_rt

MODULES = {cuda_rt.__name__, cuda_host.__name__}
# Dunders that are part of the API: construction and `with`.
API_DUNDERS = ("__init__", "__enter__", "__exit__")


def public_api(module: ModuleType) -> dict[str, object]:
    """Public functions and classes that the module itself (or its twin) defines; imports like np are not API."""
    return {
        name: value
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (inspect.isfunction(value) or inspect.isclass(value))
        and value.__module__ in MODULES
    }


def methods(cls: type) -> dict[str, inspect.Signature]:
    """Public methods written in Python (inherited ones too), plus construction and `with`."""
    return {
        name: inspect.signature(getattr(cls, name))
        for name in dir(cls)
        if (not name.startswith("_") or name in API_DUNDERS) and inspect.isfunction(getattr(cls, name))
    }


def attributes(cls: type) -> dict[str, object]:
    """Instance attributes declared in the class bodies (annotations), inherited ones included."""
    declared: dict[str, object] = {}
    for klass in reversed(cls.__mro__):
        declared.update({k: v for k, v in inspect.get_annotations(klass).items() if not k.startswith("_")})
    return declared


REAL = public_api(cuda_rt)
STANDIN = public_api(cuda_host)


def test_the_api_is_not_empty() -> None:
    """Guards against a vacuous comparison: the names the brief promises are found."""
    expected = {"CudaError", "DeviceBuffer", "PinnedBuffer", "Stream", "EventTimer", "CudaGraph", "read_device"}
    assert expected <= set(REAL)


def test_same_public_names() -> None:
    assert sorted(STANDIN) == sorted(REAL)


def test_the_stand_in_raises_the_real_error_class() -> None:
    """Code under test catches cuda_rt.CudaError; the stand-in must raise exactly that class."""
    assert cuda_host.CudaError is cuda_rt.CudaError


@pytest.mark.parametrize("name", sorted(n for n, v in REAL.items() if inspect.isfunction(v)))
def test_same_function_signatures(name: str) -> None:
    assert inspect.signature(STANDIN[name]) == inspect.signature(REAL[name])  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(n for n, v in REAL.items() if inspect.isclass(v)))
def test_same_class_members(name: str) -> None:
    real, standin = REAL[name], STANDIN[name]
    assert isinstance(real, type) and isinstance(standin, type)
    assert methods(standin) == methods(real)
    assert attributes(standin) == attributes(real)
