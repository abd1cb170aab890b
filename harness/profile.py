"""Per-layer profiles and their diff: which layers got slower, and what changed in each.

A profile is recorded after a latency measurement, in a separate profiled run (never inside the timed samples):
TensorRT through IProfiler.report_layer_time joined with the engine inspector's layer information, ONNX Runtime
through its own profiler joined with the optimized graph's nodes. Each layer keeps its median time over the
profiled runs and what the backend says of it: its kind, tactic, formats, precision and the ONNX nodes it computes.

diff(old, new) matches the layers of two profiles (by name, else by the ONNX nodes they compute, which is how a
fusion that was lost or gained is recognised) and ranks them by the time they added, with what changed in each.
This module is plain data and arithmetic: no backend, no pytest.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field

from harness.recorded import recorded_number


@dataclass(frozen=True)
class LayerTime:
    """One engine layer (a TensorRT layer, an ONNX Runtime node of the optimized graph) as profiled."""

    name: str
    kind: str  # the layer's type: "Convolution", "Reformat", ONNX Runtime's "Conv", "FusedConv"
    median_us: float  # its median time over the profiled runs
    tactic: str | None = None  # TensorRT's tactic (name, else value); None where the backend says none
    formats: tuple[str, ...] = ()  # its inputs' then outputs' formats, as the backend prints them
    precision: str | None = None  # what it computes in ("Half", "Float", "Int8"), where said
    fused: tuple[str, ...] = ()  # the ONNX nodes it computes, where the backend says (several: it fused them)

    @property
    def nodes(self) -> frozenset[str]:
        """The ONNX nodes it computes: those said, else its namesake."""
        return frozenset(self.fused or (self.name,))

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {"name": self.name, "kind": self.kind, "median_us": self.median_us}
        optional = {"tactic": self.tactic, "formats": list(self.formats), "precision": self.precision}
        data.update({key: value for key, value in optional.items() if value})
        if self.fused:
            data["fused"] = list(self.fused)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> LayerTime:
        tactic, precision = data.get("tactic"), data.get("precision")
        return cls(
            name=str(data.get("name")),
            kind=str(data.get("kind", "")),
            median_us=recorded_number(data.get("median_us")) or 0.0,
            tactic=str(tactic) if tactic is not None else None,
            formats=tuple(str(f) for f in _list(data.get("formats"))),
            precision=str(precision) if precision is not None else None,
            fused=tuple(str(n) for n in _list(data.get("fused"))),
        )


@dataclass(frozen=True)
class LayerProfile:
    """An engine's layers, in execution order, with their median times over `runs` profiled runs."""

    layers: tuple[LayerTime, ...]
    runs: int
    source: str  # what measured it: "TensorRT IProfiler + engine inspector", "onnxruntime profiler"

    @property
    def total_us(self) -> float:
        return sum(layer.median_us for layer in self.layers)

    def to_json(self) -> dict[str, object]:
        """Columnar: the fields any layer has, then one row of values per layer (null where a layer has none). A
        baseline keeps every latency test's profile, and the field names repeated on each of Inception v1's 425
        layers took 13 kB of its 56 kB."""
        layers = [layer.to_json() for layer in self.layers]
        columns = [column for column in LAYER_FIELDS if any(column in layer for layer in layers)]
        rows = [[layer.get(column) for column in columns] for layer in layers]
        return {"source": self.source, "runs": self.runs, "columns": columns, "layers": rows}

    @classmethod
    def from_json(cls, data: object) -> LayerProfile | None:
        """As to_json wrote it, or as files written before it held it (a layer an object); None where the record
        has no profile."""
        if not isinstance(data, Mapping):
            return None
        layers = tuple(LayerTime.from_json(entry) for entry in layer_entries(data) if isinstance(entry, Mapping))
        runs = data.get("runs")
        return cls(layers, runs if isinstance(runs, int) else 0, str(data.get("source", "")))


# How _compared and _group_change begin the changes that alter the engine's layers rather than one layer's kernel.
_STRUCTURAL = ("appeared", "disappeared", "fusion", "renamed")
LAYER_FIELDS = ("name", "kind", "median_us", "tactic", "formats", "precision", "fused")  # LayerTime.to_json's keys


def layer_entries(profile: Mapping[str, object]) -> list[object]:
    """A recorded profile's layers, each as an object where it can be: a row zipped with the profile's columns, an
    object (a file written before the columns) as it is; anything else as it is, for the reader to refuse."""
    columns = profile.get("columns")
    if not isinstance(columns, list):
        return _list(profile.get("layers"))
    names = [str(column) for column in columns]
    return [
        dict(zip(names, row)) if isinstance(row, list) and len(row) == len(names) else row
        for row in _list(profile.get("layers"))
    ]


@dataclass(frozen=True)
class LayerChange:
    """What became of one layer (or of a group of layers that a fusion joined or split) between two profiles."""

    old: tuple[str, ...]  # the old profile's layer names (empty: the layer appeared)
    new: tuple[str, ...]  # the new profile's (empty: it disappeared)
    old_us: float
    new_us: float
    changes: tuple[str, ...]  # "tactic a -> b", "formats …", "precision Half -> Float", "fusion …", "appeared"

    @property
    def added_us(self) -> float:
        return self.new_us - self.old_us

    @property
    def structural(self) -> bool:
        """Whether a layer appeared, disappeared or fused differently (not only its tactic, formats or precision)."""
        return any(change.startswith(_STRUCTURAL) for change in self.changes)

    @property
    def label(self) -> str:
        """The layer as a reader knows it: its new name, else its old one; a group joined with " + "."""
        return " + ".join(self.new or self.old)

    def to_json(self) -> dict[str, object]:
        return {
            "old": list(self.old),
            "new": list(self.new),
            "old_us": self.old_us,
            "new_us": self.new_us,
            "changes": list(self.changes),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> LayerChange:
        """As to_json wrote it (a gate verdict's explanation keeps its layers so)."""
        return cls(
            old=tuple(str(name) for name in _list(data.get("old"))),
            new=tuple(str(name) for name in _list(data.get("new"))),
            old_us=recorded_number(data.get("old_us")) or 0.0,
            new_us=recorded_number(data.get("new_us")) or 0.0,
            changes=tuple(str(change) for change in _list(data.get("changes"))),
        )


@dataclass(frozen=True)
class LayerDiff:
    """Two profiles compared: every matched layer or group, the slowest-grown first."""

    entries: tuple[LayerChange, ...]
    old_total_us: float
    new_total_us: float

    @property
    def added_us(self) -> float:
        return self.new_total_us - self.old_total_us

    def share(self, entry: LayerChange) -> float | None:
        """The entry's part of the total added time (1.0: all of it); None where the total did not grow."""
        return entry.added_us / self.added_us if self.added_us > 0 else None

    def grown(self) -> tuple[LayerChange, ...]:
        """The entries that added time, the most first."""
        return tuple(entry for entry in self.entries if entry.added_us > 0)

    def top(self, count: int = 3) -> tuple[LayerChange, ...]:
        """The `count` entries that added the most time: those a verdict names."""
        return self.grown()[:count]

    def changed_without_time(self) -> tuple[LayerChange, ...]:
        """The entries that changed (tactic, formats, precision, fusion) without adding time: counted, not named, in a
        verdict, since an upgrade changes many layers for the better."""
        return tuple(entry for entry in self.entries if entry.changes and entry.added_us <= 0)

    def structural(self) -> tuple[LayerChange, ...]:
        """The entries whose layers appeared, disappeared or fused differently: what can explain a plan that grew."""
        return tuple(entry for entry in self.entries if entry.structural)

    def kept(self, count: int) -> LayerDiff:
        """The `count` entries that added the most time, with both profiles' totals: what a verdict keeps."""
        return LayerDiff(self.entries[:count], self.old_total_us, self.new_total_us)


def diff(old: LayerProfile, new: LayerProfile) -> LayerDiff:
    """The layers of `old` and `new` matched and compared, sorted by added time (largest first).

    Layers are grouped when they bear one name, or compute a common ONNX node (connected components): a group of
    one old and one new layer of one name is that layer compared (tactic, formats, precision, fusion); any other
    group is a fusion lost (one old layer, several new), gained (the reverse), or a layer that appeared or
    disappeared."""
    layers = (*old.layers, *new.layers)
    groups = _components(layers)
    old_count = len(old.layers)
    entries = [
        _change([layers[i] for i in g if i < old_count], [layers[i] for i in g if i >= old_count]) for g in groups
    ]
    entries.sort(key=lambda entry: entry.added_us, reverse=True)
    return LayerDiff(tuple(entries), old.total_us, new.total_us)


def _components(layers: tuple[LayerTime, ...]) -> list[list[int]]:
    """The layers' indexes in groups of those related by one name or a common ONNX node (connected components),
    each group in index order, the groups by their first index. A union-find over the names and nodes seen: linear
    in the layers, where relating every pair made a diff of two 300-layer engines take 0.4 s, paid by `compare` for
    each latency regression it explains."""
    parent = list(range(len(layers)))

    def root(index: int) -> int:
        while parent[index] != index:
            parent[index] = parent[parent[index]]  # path halving: the trees stay shallow
            index = parent[index]
        return index

    first: dict[tuple[str, str], int] = {}  # ("name" or "node", it) -> the first layer that has it
    for index, layer in enumerate(layers):
        for key in (("name", layer.name), *(("node", node) for node in layer.nodes)):
            one, other = root(first.setdefault(key, index)), root(index)
            parent[max(one, other)] = min(one, other)
    groups: dict[int, list[int]] = {}
    for index in range(len(layers)):
        groups.setdefault(root(index), []).append(index)
    return list(groups.values())


def _change(old: list[LayerTime], new: list[LayerTime]) -> LayerChange:
    if len(old) == 1 and len(new) == 1 and old[0].name == new[0].name:
        return _compared(old[0], new[0])
    return _group_change(old, new)


def _compared(old: LayerTime, new: LayerTime) -> LayerChange:
    changes = []
    if old.tactic != new.tactic and (old.tactic or new.tactic):
        changes.append(f"tactic {old.tactic or '—'} -> {new.tactic or '—'}")
    if old.formats != new.formats and (old.formats or new.formats):
        changes.append(f"formats {', '.join(old.formats) or '—'} -> {', '.join(new.formats) or '—'}")
    if old.precision != new.precision and (old.precision or new.precision):
        changes.append(f"precision {old.precision or '—'} -> {new.precision or '—'}")
    if old.nodes != new.nodes:
        changes.append(f"fusion {'+'.join(sorted(old.nodes))} -> {'+'.join(sorted(new.nodes))}")
    if old.kind != new.kind:
        changes.append(f"kind {old.kind} -> {new.kind}")
    return LayerChange((old.name,), (new.name,), old.median_us, new.median_us, tuple(changes))


def _group_change(old: list[LayerTime], new: list[LayerTime]) -> LayerChange:
    old_names, new_names = tuple(layer.name for layer in old), tuple(layer.name for layer in new)
    if not old:
        what = "appeared"
    elif not new:
        what = "disappeared"
    elif len(old) < len(new):
        what = f"fusion lost: {' + '.join(old_names)} split into {', '.join(new_names)}"
    elif len(old) > len(new):
        what = f"fusion gained: {', '.join(old_names)} merged into {' + '.join(new_names)}"
    else:
        what = f"renamed: {', '.join(old_names)} -> {', '.join(new_names)}"
    return LayerChange(
        old_names,
        new_names,
        sum(layer.median_us for layer in old),
        sum(layer.median_us for layer in new),
        (what,),
    )


def _list(value: object) -> list[object]:
    return list(value) if isinstance(value, list) else []


@dataclass
class ProfileRuns:
    """Per-layer times gathered over several profiled runs, in first-seen order: what a backend's profiler
    reports run by run, turned into medians (profile())."""

    times: dict[str, list[float]] = field(default_factory=dict)

    def add(self, layer: str, microseconds: float) -> None:
        self.times.setdefault(layer, []).append(microseconds)

    def medians(self) -> dict[str, float]:
        return {name: statistics.median(values) for name, values in self.times.items()}


def layer_profile_problem(data: object) -> str | None:
    """What cannot be read in a record's "layer_profile" (LayerProfile.to_json), naming the field; None where it is
    usable or absent. from_json reads what it can of anything; this is the check a file's reader runs first, so that a
    damaged profile is an error naming the file and the test (harness/baselines.py's record_problem), never a layer
    of 0 µs explaining a regression."""
    if data is None:
        return None
    if not isinstance(data, Mapping):
        return '"layer_profile" must be an object or null'
    if not isinstance(data.get("layers"), list):
        return '"layer_profile.layers" must be a list of layers'
    columns = data.get("columns")
    if columns is not None and not (isinstance(columns, list) and all(column in LAYER_FIELDS for column in columns)):
        return f'"layer_profile.columns" must be a list of the layers\' fields, each one of {", ".join(LAYER_FIELDS)}'
    for index, layer in enumerate(layer_entries(data)):
        where = f"layer_profile.layers[{index}]"
        if columns is not None and not isinstance(layer, Mapping):
            return f'"{where}" must be a row of {len(columns)} values, one per column ({", ".join(columns)})'
        if not isinstance(layer, Mapping):
            return f'"{where}" must be an object'
        if not isinstance(layer.get("name"), str):
            return f'"{where}.name" must be the layer\'s name'
        median = recorded_number(layer.get("median_us"))
        if median is None or not math.isfinite(median) or median < 0:
            return f'"{where}.median_us" (layer {layer["name"]!r}) must be a finite number ≥ 0'
    return None
