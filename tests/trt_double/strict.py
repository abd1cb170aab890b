"""Strictness: one real TensorRT version's API snapshot decides every public name of the double.

- Module attributes: only the snapshot's classes, enums, functions and attributes (the enum-member aliases
  trt.float32, trt.int8, ...); anything else raises
  AttributeError("... not in the real API snapshot").
- A class the double implements exposes only its snapshot members, on the class and on instances;
  a snapshot member it does not implement raises NotImplementedError. Names a user subclass defines
  itself (a logger's own attributes) are the user's business, as with pybind11 subclasses.
- A snapshot class the double does not implement exists, but constructing it raises NotImplementedError.
- Enums are IntEnums with exactly the snapshot's members.

Every public (class or enum, member) that code outside this package touches is recorded in Api.accessed,
so a test can check the names a caller used against other versions' snapshots. The double's own code
goes through the same checks (it must stay inside the snapshot too) but is not recorded.
"""

from __future__ import annotations

import enum
import functools
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SNAPSHOTS = Path(__file__).resolve().parents[1] / "trt_api"
SNAPSHOT_FILES = {"10.13": "api-10.13.json", "10.16": "api-10.16.json", "11.4": "api-11.4.json"}
_PACKAGE = __name__.rpartition(".")[0]

# pybind11 nests ILogger.Severity and exports its values into ILogger; the snapshot lists the values
# as ILogger attributes, not as an enum, so its members are spelled out here.
SEVERITY_VALUES = {"INTERNAL_ERROR": 0, "ERROR": 1, "WARNING": 2, "INFO": 3, "VERBOSE": 4}

# Values from TensorRT 10's headers for the enums whose numbers callers use (flag bits, dtype codes).
# Every other enum numbers its members in snapshot order: values the double makes up, which code
# written against TensorRT compares as members and never as numbers.
KNOWN_VALUES: Mapping[str, Mapping[str, int]] = {
    "DataType": {
        "FLOAT": 0,
        "HALF": 1,
        "INT8": 2,
        "INT32": 3,
        "BOOL": 4,
        "UINT8": 5,
        "FP8": 6,
        "BF16": 7,
        "INT64": 8,
        "INT4": 9,
        "FP4": 10,
        "E8M0": 11,
    },
    "NetworkDefinitionCreationFlag": {
        "EXPLICIT_BATCH": 0,
        "STRONGLY_TYPED": 1,
        "PREFER_JIT_PYTHON_PLUGINS": 2,
        "PREFER_AOT_PYTHON_PLUGINS": 3,
    },
    "TensorIOMode": {"NONE": 0, "INPUT": 1, "OUTPUT": 2},
}


@dataclass(frozen=True)
class Member:
    kind: str  # "method", "property" or "attr", as snapshot.py classified it
    sigs: tuple[str, ...]  # pybind11 signatures from the docstring; overloads are numbered "1. ..."


@dataclass(frozen=True)
class Snapshot:
    version: str  # the real library version, e.g. "10.16.1.11"
    classes: Mapping[str, Mapping[str, Member]]
    enums: Mapping[str, tuple[str, ...]]
    functions: frozenset[str]
    attributes: Mapping[str, tuple[str, str]]  # module-level alias -> (enum, member): float32 -> (DataType, FLOAT)

    def has(self, owner: str, name: str) -> bool:
        """Whether member `name` of class or enum `owner` exists in this version."""
        if owner in self.enums:
            return name in self.enums[owner]
        return name in self.classes.get(owner, {})


@functools.cache
def load_snapshot(version: str) -> Snapshot:
    if version not in SNAPSHOT_FILES:
        raise ValueError(
            f"no TensorRT API snapshot for version {version!r}; the double imitates {sorted(SNAPSHOT_FILES)}"
        )
    raw = json.loads((SNAPSHOTS / SNAPSHOT_FILES[version]).read_text())
    classes = {
        name: {member: Member(info["kind"], tuple(info["sigs"])) for member, info in members.items()}
        for name, members in raw["classes"].items()
    }
    enums = {name: tuple(members) for name, members in raw["enums"].items()}
    attributes = {name: _enum_member(value, enums) for name, value in raw["attributes"].items()}
    return Snapshot(raw["version"], classes, enums, frozenset(raw["functions"]), attributes)


def _enum_member(value: str, enums: Mapping[str, tuple[str, ...]]) -> tuple[str, str]:
    """A snapshot attribute's value, "DataType.FLOAT", as (enum, member); it must name a snapshot enum member."""
    owner, _, member = value.partition(".")
    if member not in enums.get(owner, ()):
        raise ValueError(f"snapshot attribute value {value!r} names no enum member of the snapshot")
    return owner, member


@dataclass
class Faults:
    """Private fault knobs for tests (no TensorRT API): module attribute `_faults`."""

    build_error: str | None = None  # the next build logs this as an ERROR and returns None (builder failure, OOM)
    runtime_refuses: str | None = None  # every deserialization logs this as an ERROR and returns None (a GPU
    # the runtime does not support, as TensorRT for RTX's on compute capability 9.0)
    slower_tactic: str | None = None  # the builder picks the slower tactic for the layer of this name, as an
    # upgrade may (profiler.py); a name no layer of the network bears fails the build, naming the layers


@dataclass(eq=False)
class Api:
    """Everything one double module shares: its snapshot, CUDA memory, classes, enums and records."""

    snapshot: Snapshot
    memory: Any  # tests/cuda_host.py or harness.backends.cuda_rt: read_device, write_device, ...
    faults: Faults = field(default_factory=Faults)
    accessed: set[tuple[str, str]] = field(default_factory=set)
    classes: dict[str, type] = field(default_factory=dict)
    enums: dict[str, type[enum.IntEnum]] = field(default_factory=dict)
    severity: Any = None  # the ILogger.Severity enum

    @property
    def version(self) -> str:
        return self.snapshot.version

    @property
    def has_weak_typing(self) -> bool:
        """TensorRT 11 removed the precision builder flags: every network is strongly typed there."""
        return "FP16" in self.snapshot.enums["BuilderFlag"]

    def absent(self, name: str) -> AttributeError:
        return AttributeError(f"tensorrt {self.version} (double) has no attribute {name}: not in the real API snapshot")

    def member(self, enum_name: str, name: str) -> Any:
        return self.enums[enum_name][name]

    def name_of(self, enum_name: str, value: object) -> str:
        """The member name of an enum argument; anything else is a TypeError, as pybind11 raises."""
        kind = self.enums[enum_name]
        if not isinstance(value, kind):
            raise TypeError(f"incompatible function argument: expected tensorrt.{enum_name}, got {value!r}")
        return value.name

    def new(self, class_name: str, **state: Any) -> Any:
        """An instance made by the library itself (pybind11 classes users cannot construct)."""
        obj: Any = object.__new__(self.classes[class_name])
        for name, value in state.items():
            object.__setattr__(obj, name, value)
        return obj

    def log(self, logger: Any, severity: str, message: str) -> None:
        logger.log(self.severity[severity], message)

    def require_logger(self, logger: object) -> Any:
        """A logger argument as TensorRT's constructors take it: an initialized trt.ILogger."""
        if not isinstance(logger, self.classes["ILogger"]):
            raise TypeError(f"incompatible constructor arguments: expected tensorrt.ILogger, got {logger!r}")
        if not getattr(logger, "_initialized", False):
            raise TypeError(f"{type(logger).__name__}.__init__() must call tensorrt.ILogger.__init__(self)")
        return logger


def _is_ours(module: str) -> bool:
    return module == _PACKAGE or module.startswith(_PACKAGE + ".")


def _caller() -> str:
    """The module of the code that made the attribute access being checked (two frames up)."""
    name: str = sys._getframe(2).f_globals.get("__name__", "")
    return name


def _owner(cls: type) -> type | None:
    """The double class that decides `cls`'s public names: the first in its MRO made for a snapshot."""
    for klass in cls.__mro__:
        if "_trt_name" in klass.__dict__:
            return klass
    return None


def _user_defined(cls: type, owner: type, name: str, instance_dict: Mapping[str, Any] | None) -> bool:
    """Whether a user subclass (above the double's class in the MRO) or its instance defines `name`."""
    for klass in cls.__mro__:
        if klass is owner:
            break
        if name in klass.__dict__:
            return True
    return cls is not owner and instance_dict is not None and name in instance_dict


def _implementation(cls: type, name: str) -> object | None:
    """What the double's classes define for `name` (builtin bases such as bytes do not count)."""
    for klass in cls.__mro__:
        if klass.__module__ != "builtins" and name in klass.__dict__:
            implementation: object = klass.__dict__[name]
            return implementation
    return None


def _check(cls: type, name: str, instance_dict: Mapping[str, Any] | None, caller: str) -> None:
    """Refuse a public name the snapshot lacks; record it; refuse a snapshot name the double lacks."""
    owner = _owner(cls)
    if owner is None or _user_defined(cls, owner, name, instance_dict):
        return
    api: Api = owner.__dict__["_api"]
    trt_name: str = owner.__dict__["_trt_name"]
    if name not in owner.__dict__["_members"]:
        raise api.absent(f"{trt_name}.{name}")
    if not _is_ours(caller):
        api.accessed.add((trt_name, name))
    if _implementation(cls, name) is None:
        raise NotImplementedError(f"double does not implement {trt_name}.{name}")


class StrictMeta(type):
    """Class-level strictness: trt.ILogger.ERROR is checked like logger.ERROR."""

    def __getattribute__(cls, name: str) -> Any:
        if name[0] != "_":
            _check(cls, name, None, _caller())
        return type.__getattribute__(cls, name)


class StrictObject(metaclass=StrictMeta):
    """Base of every class the double implements: public attributes only from the snapshot."""

    __slots__ = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # pybind11 classes that only the library creates have no Python constructor.
        raise TypeError(f"tensorrt.{type(self).__name__}: No constructor defined!")

    def __getattribute__(self, name: str) -> Any:
        if name[0] != "_":
            _check(type(self), name, _instance_dict(self), _caller())
        return object.__getattribute__(self, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name[0] != "_":
            _check_set(type(self), name, _caller())
        object.__setattr__(self, name, value)


def _instance_dict(obj: object) -> Mapping[str, Any] | None:
    try:
        instance_dict: Mapping[str, Any] = object.__getattribute__(obj, "__dict__")
    except AttributeError:
        return None
    return instance_dict


def _check_set(cls: type, name: str, caller: str) -> None:
    owner = _owner(cls)
    if owner is None or (cls is not owner and name not in owner.__dict__["_members"]):
        return  # a user subclass's own attribute
    api: Api = owner.__dict__["_api"]
    trt_name: str = owner.__dict__["_trt_name"]
    if name not in owner.__dict__["_members"]:
        raise api.absent(f"{trt_name}.{name}")
    if not _is_ours(caller):
        api.accessed.add((trt_name, name))
    implementation = _implementation(cls, name)
    if not isinstance(implementation, property) or implementation.fset is None:
        raise NotImplementedError(f"double does not implement setting {trt_name}.{name}")


def specialize(api: Api, impl: type, extras: Mapping[str, Any] | None = None) -> type:
    """The class `impl` as version `api` exposes it: a subclass that carries the snapshot's members.

    Its bases include the specialized classes of impl's own double bases, so that isinstance
    works across the hierarchy (a conv layer is a trt.ILayer of the same module).
    """
    name = impl.__name__
    parents = tuple(api.classes[base.__name__] for base in impl.__bases__ if base.__name__ in api.classes)
    namespace = {
        "_trt_name": name,
        "_api": api,
        "_members": frozenset(api.snapshot.classes[name]),
        "__module__": "tensorrt",
        "__qualname__": name,
        "__doc__": impl.__doc__,
        **(extras or {}),
    }
    cls = StrictMeta(name, (impl, *parents), namespace)
    api.classes[name] = cls
    return cls


def stub_class(api: Api, name: str) -> type:
    """A snapshot class the double does not implement: it exists, but cannot be constructed."""

    def __new__(cls: type, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"double does not implement {name}")

    namespace = {
        "_trt_name": name,
        "_api": api,
        "_members": frozenset(api.snapshot.classes[name]),
        "__module__": "tensorrt",
        "__qualname__": name,
        "__new__": __new__,
    }
    cls = StrictMeta(name, (StrictObject,), namespace)
    api.classes[name] = cls
    return cls


def stub_function(name: str) -> Callable[..., Any]:
    def unimplemented(*args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"double does not implement {name}()")

    unimplemented.__name__ = unimplemented.__qualname__ = name
    return unimplemented


class StrictEnumMeta(enum.EnumMeta):
    """Enum classes with exactly the snapshot's members, whose member accesses are recorded."""

    def __getattribute__(cls, name: str) -> Any:
        if name[0] != "_":
            strict = type.__getattribute__(cls, "__dict__").get("_strict")
            if strict is not None:
                strict(name, _caller())
        return super().__getattribute__(name)

    def __getattr__(cls, name: str) -> Any:
        strict = type.__getattribute__(cls, "__dict__").get("_strict")
        if strict is not None and name[0] != "_":
            strict(name, _caller())
        raise AttributeError(name)


class StrictIntEnum(enum.IntEnum, metaclass=StrictEnumMeta):
    """pybind11 prints members as DataType.FLOAT (IntEnum would print the number)."""

    def __str__(self) -> str:
        return f"{type(self).__name__}.{self.name}"


def make_enum(api: Api, name: str, members: tuple[str, ...], values: Mapping[str, int], *, record: bool) -> Any:
    """An IntEnum of exactly `members`; `record` says whether member accesses go into api.accessed.

    Only snapshot enums are recorded: nested ILogger.Severity's members are not snapshot names.
    """
    numbered = [(member, values.get(member, index)) for index, member in enumerate(members)]
    functional: Any = StrictIntEnum  # the functional API: StrictIntEnum(name, members, ...) makes a subclass
    kind: Any = functional(name.rpartition(".")[2], numbered, module="tensorrt", qualname=name)
    known = frozenset(members)

    def strict(member: str, caller: str) -> None:
        if member not in known:
            raise api.absent(f"{name}.{member}")
        if record and not _is_ours(caller):
            api.accessed.add((name, member))

    type.__setattr__(kind, "_strict", strict)
    return kind


def module_getattr(api: Api) -> Callable[[str], Any]:
    def __getattr__(name: str) -> Any:
        raise api.absent(name)

    return __getattr__


def implemented_members(cls: type) -> dict[str, str]:
    """Public names the double's classes give `cls`, with the kind snapshot.py would record for each.

    Builtin bases (tuple, bytes) are left out: strictness hides their public names.
    """
    members: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass.__module__ == "builtins":
            continue
        for name, value in klass.__dict__.items():
            if name[0] != "_":
                members[name] = _kind(value)
    return members


def _kind(value: object) -> str:
    if isinstance(value, property):
        return "property"
    return "method" if callable(value) else "attr"
