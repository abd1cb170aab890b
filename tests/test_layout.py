"""Architecture rules, checked on the source with `ast`: which modules may import which libraries.

Every .py file under harness/ and cases/ is parsed; the rules name files by their path relative to the
repository root, e.g. "harness/backends/ort.py".
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Library (top-level module name) -> the only files allowed to import it.
ALLOWED_IMPORTERS: Mapping[str, frozenset[str]] = {
    # The ONNX Runtime backend; the int8 derivation, which calls ONNX Runtime's quantization tool (only inside
    # its functions: tests/test_quantize.py checks that importing it loads no onnxruntime); and the localizer,
    # whose whole job is running two models unoptimized with every intermediate tensor exposed, which no
    # backend build/load/infer interface offers; and the opset module, which asks ONNX Runtime which IR version it
    # reads (within_onnxruntime_ir: a one-node model, inside its functions).
    "onnxruntime": frozenset(
        {
            "harness/backends/ort.py",
            "harness/precision/quantize.py",
            "harness/precision/localize.py",
            "harness/precision/opset.py",
        }
    ),
    "tensorrt": frozenset({"harness/backends/trt.py"}),  # the TensorRT backend: 10.x, 11.x ...
    "tensorrt_rtx": frozenset({"harness/backends/trt.py"}),  # ... and TensorRT for RTX, through the same adapter
    "cuda": frozenset({"harness/backends/cuda_rt.py"}),  # cuda-python: cuda.bindings, cuda.cudart
    "pynvml": frozenset({"harness/backends/nvml.py"}),  # NVML telemetry, optional and apart from cuda-python
    # The HTML report's plots; only inside its functions (test_matplotlib_is_imported_only_lazily), as every
    # session loads the renderer and most never write a report.
    "matplotlib": frozenset({"harness/results/html.py"}),
}


@dataclass(frozen=True)
class Import:
    module: str  # the imported module, e.g. "cuda.bindings" or "onnx"
    line: int
    module_level: bool  # runs when the file is imported: not inside a function nor under TYPE_CHECKING

    @property
    def root(self) -> str:
        return self.module.split(".")[0]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(tree: ast.AST) -> list[Import]:
    """Every absolute import in the tree, marking whether it runs at import time of the module."""
    found: list[Import] = []

    def visit(node: ast.AST, module_level: bool) -> None:
        if isinstance(node, ast.Import):
            found.extend(Import(alias.name, node.lineno, module_level) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(Import(node.module, node.lineno, module_level))
        elif (name := _import_module_literal(node)) is not None:
            found.append(Import(name, node.lineno, module_level))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            module_level = False
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for statement in node.body:
                visit(statement, False)
            for statement in node.orelse:
                visit(statement, module_level)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, module_level)

    visit(tree, True)
    return found


def _import_module_literal(node: ast.AST) -> str | None:
    """The module of `importlib.import_module("name")`: an import by another spelling (the TensorRT
    adapter picks its library that way)."""
    if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)):
        return None
    func = node.func
    named = (isinstance(func, ast.Attribute) and func.attr == "import_module") or (
        isinstance(func, ast.Name) and func.id == "import_module"
    )
    return node.args[0].value if named and isinstance(node.args[0].value, str) else None


def print_calls(tree: ast.AST) -> list[int]:
    """Lines that call the builtin print."""
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print"
    ]


def wildcard_imports(tree: ast.AST) -> list[int]:
    """Lines with `from x import *`."""
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and any(alias.name == "*" for alias in node.names)
    ]


def source_files(*packages: str) -> Iterator[tuple[str, ast.Module]]:
    """(path relative to the repository, parsed module) for every .py file under the packages."""
    for package in packages:
        for path in sorted((REPO / package).rglob("*.py")):
            yield path.relative_to(REPO).as_posix(), ast.parse(path.read_text(), filename=str(path))


SOURCES = dict(source_files("harness", "cases"))


def test_the_rules_see_the_sources() -> None:
    """The scan finds the modules the rules are about (guards against an empty, vacuous scan)."""
    assert {"harness/backends/ort.py", "harness/backends/cuda_rt.py", "harness/plugin.py", "cases/mnist.py"} <= set(
        SOURCES
    )


# The checker itself, on small sources: each rule below can only fail if these detections work.


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import onnxruntime as ort", [("onnxruntime", True)]),
        ("from cuda.bindings import runtime", [("cuda.bindings", True)]),
        ("import os, tensorrt.plugin", [("os", True), ("tensorrt.plugin", True)]),
        ("def f():\n    import onnx", [("onnx", False)]),
        ("class C:\n    import onnx", [("onnx", True)]),
        ("try:\n    import pynvml\nexcept ImportError:\n    pass", [("pynvml", True)]),
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import onnx", [("typing", True), ("onnx", False)]),
        ("import typing\nif typing.TYPE_CHECKING:\n    import onnx", [("typing", True), ("onnx", False)]),
        ("if TYPE_CHECKING:\n    pass\nelse:\n    import onnx", [("onnx", True)]),
        ("from . import sibling", []),
        (
            "import importlib\ndef f():\n    importlib.import_module('tensorrt_rtx')",
            [("importlib", True), ("tensorrt_rtx", False)],
        ),
        ("def f(name):\n    importlib.import_module(name)", []),
    ],
)
def test_imports_of_classifies_imports(source: str, expected: list[tuple[str, bool]]) -> None:
    """imports_of finds absolute imports and tells module-level ones from function/TYPE_CHECKING ones."""
    assert [(i.module, i.module_level) for i in imports_of(ast.parse(source))] == expected


def test_print_and_wildcard_detection() -> None:
    """print calls and star imports are found; a method named print is not the builtin."""
    tree = ast.parse("from os import *\ndef f():\n    print('x')\n    log.print('y')\n")
    assert print_calls(tree) == [3]
    assert wildcard_imports(tree) == [1]


# The rules


@pytest.mark.parametrize("library", sorted(ALLOWED_IMPORTERS))
def test_only_allowed_files_import_inference_libraries(library: str) -> None:
    """A GPU or inference library is imported only by its backend module (anywhere in the file)."""
    offenders = [
        f"{path}:{imp.line} imports {imp.module}"
        for path, tree in SOURCES.items()
        for imp in imports_of(tree)
        if imp.root == library and path not in ALLOWED_IMPORTERS[library]
    ]
    assert not offenders, offenders


def test_ort_backend_does_import_onnxruntime() -> None:
    """The allow-list is not stale: harness/backends/ort.py really is the onnxruntime importer."""
    assert "onnxruntime" in {imp.root for imp in imports_of(SOURCES["harness/backends/ort.py"])}


def test_matplotlib_is_imported_only_lazily() -> None:
    """The report's renderer imports matplotlib inside the functions that draw, never when it is imported."""
    imports = [imp for imp in imports_of(SOURCES["harness/results/html.py"]) if imp.root == "matplotlib"]
    assert imports, "harness/results/html.py no longer imports matplotlib: update ALLOWED_IMPORTERS"
    assert not [f"line {imp.line}: {imp.module}" for imp in imports if imp.module_level]


def test_cases_never_import_onnxruntime_and_import_onnx_only_lazily() -> None:
    """Case modules stay cheap to collect: no onnxruntime at all, and onnx only inside functions."""
    offenders = [
        f"{path}:{imp.line} imports {imp.module}" + ("" if imp.root == "onnxruntime" else " at module level")
        for path, tree in SOURCES.items()
        if path.startswith("cases/")
        for imp in imports_of(tree)
        if imp.root == "onnxruntime" or (imp.root == "onnx" and imp.module_level)
    ]
    assert not offenders, offenders


# The command-line tool (python -m harness) writes to its standard output by design.
PRINTING_ALLOWED = frozenset(
    {
        "harness/cli/__init__.py",
        "harness/cli/compare.py",
        "harness/cli/ab.py",
        "harness/cli/merge.py",
        "harness/cli/init.py",
        "harness/cli/report.py",
    }
)


def test_harness_modules_do_not_print() -> None:
    """The plugin reports through pytest (terminal reporter, results file), never with print."""
    offenders = [
        f"{path}:{line}"
        for path, tree in SOURCES.items()
        if path.startswith("harness/") and path not in PRINTING_ALLOWED
        for line in print_calls(tree)
    ]
    assert not offenders, offenders


def test_no_wildcard_imports_in_harness() -> None:
    """Every name a harness module uses is imported explicitly."""
    offenders = [
        f"{path}:{line}"
        for path, tree in SOURCES.items()
        if path.startswith("harness/")
        for line in wildcard_imports(tree)
    ]
    assert not offenders, offenders


def test_importing_the_plugin_loads_no_inference_library() -> None:
    """pytest loads the plugin in every session, so importing it must not import onnx, ORT, TensorRT, CUDA or
    matplotlib."""
    code = (
        "import sys, harness.plugin\n"
        "heavy = ('onnx', 'onnxruntime', 'tensorrt', 'cuda', 'pynvml', 'matplotlib')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
