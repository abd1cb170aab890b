"""The import structure of harness/ (docs: shared architecture): no import cycle, and no module imports from a
higher floor than its own. Function-level (lazy) imports count like any other: they only delay the cycle."""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

HARNESS = Path(__file__).parents[1] / "harness"

# The floors, lowest first; a module is on the floor of the longest prefix that names it. A module may import its
# own floor and the floors below. measure, gate and compare stand on the ground (the backends time with measure's
# Timer; precision judges with compare). The results readers sit below the backends: `python -m harness compare`,
# `report` and `merge` read files and need no backend or engine code.
FLOORS: tuple[tuple[str, ...], ...] = (
    (
        "harness",  # the package itself imports nothing
        "harness.errors",
        "harness.atomic",
        "harness.recorded",
        "harness.results.units",  # how numbers are said (µs, kB): imports nothing; the gate's reasons use it too  # how numbers are written to and read from JSON: under the results format
        "harness.case",
        "harness.precision.table",  # imports nothing from the harness: the Precision enum and its rows, under case
        "harness.naming",
        "harness.switch",
        "harness.environment",
        "harness.tomlfile",
        "harness.cachefile",
        "harness.progress",
        "harness.measure",
        "harness.gate",
        "harness.profile",  # per-layer profiles and their diff: plain data, read by backends and results alike
        "harness.compare",
        "harness.matrix",
        "harness.fuzz",
        "harness.bench",
        "harness.known_failures",
        "harness.baselines",
    ),
    ("harness.precision",),
    ("harness.results",),
    ("harness.backends",),
    ("harness.spec",),
    ("harness.build",),
    # What a session records holds its own objects (a Point, a BuildRecord, Measurements): above build, while the
    # results file's format (harness.results.document) stays below the backends.
    ("harness.run", "harness.results.record"),
    (
        "harness.suite",
        "harness.hookspecs",
        "harness.settings",
        "harness.parallel",
        "harness.pytest_plugin",
        "harness.plugin",
        "harness.cli",
        "harness.__main__",
    ),
)

# What the results file's format may reach, imports of imports included: it reads and writes files, and needs none of
# the code that made the numbers in them (architecture: "results/document.py imports no build code").
DOCUMENT = "harness.results.document"
NOT_UNDER_DOCUMENT = (
    "harness.build",
    "harness.matrix",
    "harness.measure",
    "harness.backends",
    "harness.precision",
    "harness.case",
    "harness.compare",
)


def module_files(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module under `root` (a package is named by its __init__.py)."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def imported_modules(tree: ast.Module, modules: Iterable[str], package: str) -> set[str]:
    """The modules of `modules` that `tree` imports anywhere (function bodies and TYPE_CHECKING blocks included);
    `from a.b import c` names the module a.b.c where there is one, else a.b. `package`: the importing module's
    package, for relative imports."""
    known = set(modules)

    def existing(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    found: set[str | None] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(existing(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in known else existing(base))
    return {name for name in found if name is not None}


def import_graph(root: Path) -> dict[str, set[str]]:
    modules = module_files(root)
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        graph[name] = imported_modules(ast.parse(path.read_text(), filename=str(path)), modules, package) - {name}
    return graph


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Each strongly connected component of more than one module (Tarjan's algorithm), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def floor_of(module: str) -> int:
    """The floor of the longest prefix in FLOORS that names the module; KeyError for a module no floor names."""
    matches = [
        (len(prefix), floor)
        for floor, prefixes in enumerate(FLOORS)
        for prefix in prefixes
        if module == prefix or module.startswith(f"{prefix}.")
    ]
    if not matches:
        raise KeyError(f"{module} is on no floor: add it to FLOORS in tests/test_layers.py")
    return max(matches)[1]


def upward_imports(graph: Mapping[str, set[str]]) -> list[tuple[str, str]]:
    return sorted(
        (module, target)
        for module, targets in graph.items()
        for target in targets
        if floor_of(target) > floor_of(module)
    )


GRAPH = import_graph(HARNESS)


# The checks themselves, on small packages: the rules below can only fail if these detections work.


def write_package(root: Path, files: Mapping[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "harness"


def test_a_cycle_through_a_function_level_import_is_found(tmp_path: Path) -> None:
    package = write_package(
        tmp_path,
        {
            "harness/__init__.py": "",
            "harness/a.py": "from harness.b import thing\n",
            "harness/b.py": "def thing():\n    from harness import a\n",
            "harness/c.py": "import harness.a\n",
        },
    )
    assert cycles(import_graph(package)) == [["harness.a", "harness.b"]]


def test_a_relative_import_and_a_submodule_named_in_from_are_edges(tmp_path: Path) -> None:
    package = write_package(
        tmp_path,
        {
            "harness/__init__.py": "",
            "harness/cli/__init__.py": "from harness.cli import output\n",
            "harness/cli/output.py": "",
            "harness/cli/merge.py": "from .output import x\nfrom .. import errors\n",
            "harness/errors.py": "",
        },
    )
    graph = import_graph(package)
    assert graph["harness.cli"] == {"harness.cli.output"}
    assert graph["harness.cli.merge"] == {"harness.cli.output", "harness.errors"}


def test_an_import_from_a_higher_floor_is_found() -> None:
    graph = {"harness.backends.trt": {"harness.build", "harness.errors"}, "harness.build": {"harness.backends"}}
    assert upward_imports(graph) == [("harness.backends.trt", "harness.build")]


def test_the_scan_sees_the_package() -> None:
    """Guards against a vacuous scan: the modules and the edges the rules are about are there."""
    assert {"harness.plugin", "harness.pytest_plugin.session", "harness.suite", "harness.cli.output"} <= set(GRAPH)
    assert "harness.pytest_plugin.fixtures" in GRAPH["harness.suite"]
    assert "harness.suite" in GRAPH["harness.pytest_plugin.collect"]  # the function-level import of SpecModule


# The rules.


def test_no_import_cycle_in_harness() -> None:
    assert cycles(GRAPH) == []


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_every_module_is_on_a_floor(module: str) -> None:
    floor_of(module)


def test_no_module_imports_from_a_higher_floor() -> None:
    assert upward_imports(GRAPH) == []


def reachable(graph: Mapping[str, set[str]], start: str) -> set[str]:
    """The modules `start` imports, directly or through others."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        for target in graph.get(todo.pop(), ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def test_reachable_follows_imports_of_imports() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert reachable(graph, "a") == {"a", "b", "c"}


def test_the_results_format_imports_no_build_matrix_or_measurement_code() -> None:
    assert DOCUMENT in GRAPH
    reached = reachable(GRAPH, DOCUMENT)
    assert "harness.gate" in reached  # the scan sees its imports: the typed verdict it reads
    assert sorted(m for m in reached if m.startswith(NOT_UNDER_DOCUMENT)) == []
