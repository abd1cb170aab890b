"""TensorRT API conformance, checked statically against snapshots of the real bindings.

CI has no TensorRT, so nothing here imports it. tests/trt_api/api-<version>.json record the public
Python API of each supported version (classes with their members, enums with their members,
module functions). The code that talks to TensorRT is parsed with `ast` and every name it reaches
is looked up in each snapshot:

- `trt.X`, `trt.X.Y`, `trt.X.Y.Z` chains on the tensorrt module (`trt`, or whatever name
  `import tensorrt as ...` binds), in harness/backends/trt.py and in the cases' network definitions;
- in the cases, also every `obj.name` on a TensorRT object (the network, a layer, a tensor), as a
  method when it is called and as a property when it is assigned. Where the snapshot's signatures
  give obj's class, the member must be that class's: `network` is the INetworkDefinition (the
  contract of Case.define_network), `x = network.add_softmax(...)` makes x an ISoftMaxLayer,
  `x.get_output(0)` an ITensor. Elsewhere obj's class is unknown statically, so SOME class of the
  version must have the member, unless obj is the module, numpy, a builtin or a module-level name.

A case's TensorRT-facing functions are those taking the network or the module (a parameter named
`network` or `trt`, after Case.define_network's contract): define_network and its helpers. They
must use only names that every supported version has. The backend may use a name that some
version lacks only behind a capability check on that exact chain, anywhere in the file:
`hasattr(trt.X, "Y")` or `getattr(trt.X, "Y", default)` allows `trt.X.Y` to be missing, and with it
everything reached through it; a name below it that is missing on its own needs its own check.
"""

from __future__ import annotations

import ast
import builtins
import functools
import inspect
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from cases import ALL_CASES
from harness.case import Case

REPO = Path(__file__).resolve().parents[1]
SNAPSHOTS = Path(__file__).resolve().parent / "trt_api"
# The supported range of pyproject's `gpu` extra (tensorrt>=10.13,<12), and TensorRT for RTX (the `rtx`
# extra), whose module the same adapter and the same define_network functions are handed.
VERSIONS = ("10.13", "10.16", "11.4", "rtx-1.7")
BACKEND = "harness/backends/trt.py"
MODULE_NAME = "trt"  # how the harness names the tensorrt module: the backend's alias, the cases' parameter
NETWORK_PARAMETERS = frozenset({"network", MODULE_NAME})
# `precision` is the harness's NetworkPrecision (harness/precision/network.py) that define_network is given:
# its enter/leave/weights are the harness's, though what they are handed is checked like any other call.
NOT_TENSORRT = frozenset({"np", "numpy", "precision", *dir(builtins)})
NETWORK_CLASS = "INetworkDefinition"  # what a parameter named `network` holds
RETURNS = re.compile(r"->\s*(?:\w+\.)*(\w+)\s*$")  # "... -> tensorrt_bindings.tensorrt.ITensor" -> "ITensor"

Chain = tuple[str, ...]  # attribute names after the module: trt.ILogger.Severity.ERROR -> (ILogger, Severity, ERROR)


@dataclass(frozen=True)
class Api:
    """One version's public Python API, as recorded in its snapshot."""

    version: str
    classes: Mapping[str, Mapping[str, str]]  # class -> member (inherited ones too) -> kind: method, property, attr
    returns: Mapping[tuple[str, str], str]  # (class, method) -> the class it returns, where every overload agrees
    enums: Mapping[str, frozenset[str]]
    functions: frozenset[str]
    attributes: frozenset[str]  # module-level values: the dtype aliases trt.float32, trt.float16, ...

    def first_missing(self, chain: Chain) -> Chain | None:
        """The shortest prefix of `trt.<chain>` that this version lacks, None when the chain resolves.

        Past a method, property or enum value the snapshot knows no further members, so the
        check stops there. Dunders are Python's object protocol, not TensorRT's API.
        """
        head = chain[0]
        if _is_dunder(head) or head in self.functions or head in self.attributes:
            return None
        if head in self.enums:
            if len(chain) == 1 or _is_dunder(chain[1]) or chain[1] in self.enums[head]:
                return None
            return chain[:2]
        if head in self.classes:
            return self._first_missing_member(chain)
        return chain[:1]

    def _first_missing_member(self, chain: Chain) -> Chain | None:
        """Walk a class's members; a nested enum (ILogger.Severity) has its values in the enclosing class.

        pybind11's export_values() puts the values of a nested enum into the enclosing scope, which is
        where the snapshot records them (ILogger.ERROR), so trt.ILogger.Severity.ERROR is looked up there.
        """
        members = self.classes[chain[0]]
        for depth, name in enumerate(chain[1:], start=2):
            if _is_dunder(name):
                return None
            if name not in members:
                return chain[:depth]
            if not _is_nested_type(name, members[name]):
                return None
        return None

    @functools.cached_property
    def member_kinds(self) -> Mapping[str, frozenset[str]]:
        """Every member name of any class, with the kinds it has across classes."""
        kinds: dict[str, set[str]] = {}
        for members in self.classes.values():
            for name, kind in members.items():
                kinds.setdefault(name, set()).add(kind)
        return {name: frozenset(found) for name, found in kinds.items()}


def _is_dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__")


def _is_nested_type(name: str, kind: str) -> bool:
    """Nested classes are callable CapWords members (ILogger.Severity); methods are snake_case."""
    return kind == "method" and name[:1].isupper() and not name.isupper()


@functools.cache
def load_api(version: str) -> Api:
    path = SNAPSHOTS / f"api-{version}.json"
    if not path.is_file():
        pytest.fail(f"no TensorRT {version} API snapshot: {path.relative_to(REPO)} is missing; copy it there")
    raw = json.loads(path.read_text())
    classes = raw["classes"]
    return Api(
        version=version,
        classes={
            name: {member: entry["kind"] for member, entry in members.items()} for name, members in classes.items()
        },
        returns={
            (name, member): returned
            for name, members in classes.items()
            for member, entry in members.items()
            if (returned := _returned_class(entry["sigs"], classes)) is not None
        },
        enums={name: frozenset(members) for name, members in raw["enums"].items()},
        functions=frozenset(raw["functions"]),
        attributes=frozenset(raw.get("attributes", {})),
    )


def _returned_class(signatures: Iterable[str], classes: Mapping[str, object]) -> str | None:
    """The class every recorded overload returns, None when they differ or it is no class of the API."""
    returned = {match.group(1) for signature in signatures if (match := RETURNS.search(signature))}
    only = next(iter(returned)) if len(returned) == 1 else None
    return only if only in classes else None


# --- what the source uses ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    """`obj.name` on an object that may be a TensorRT one; `kind` is what the use requires of it."""

    name: str
    kind: str  # "method" when called, "property" when assigned, "member" (any kind) when only read
    line: int
    owner: str | None  # obj's class when the snapshot's signatures determine it


def module_aliases(tree: ast.AST) -> frozenset[str]:
    """The names the tensorrt module goes by: `trt` by convention, plus any `import tensorrt as ...`."""
    aliases = {MODULE_NAME}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            aliases.update(alias.asname or alias.name for alias in node.names if alias.name == "tensorrt")
    return frozenset(aliases)


def chain_of(node: ast.AST, aliases: frozenset[str]) -> Chain | None:
    """`trt.X.Y` -> (X, Y); `trt` -> (); None when the expression is not rooted at the module."""
    if isinstance(node, ast.Name):
        return () if node.id in aliases else None
    if isinstance(node, ast.Attribute):
        base = chain_of(node.value, aliases)
        return None if base is None else (*base, node.attr)
    return None


def _probe(node: ast.Call, aliases: frozenset[str]) -> tuple[Chain, bool] | None:
    """`hasattr(trt.X, "Y")` / `getattr(trt.X, "Y"[, default])` -> ((X, Y), whether it is a capability check).

    A getattr without a default raises like a plain attribute access, so it is a use, not a check.
    """
    if not (isinstance(node.func, ast.Name) and node.func.id in ("hasattr", "getattr") and len(node.args) >= 2):
        return None
    base, name = chain_of(node.args[0], aliases), node.args[1]
    if base is None or not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
        return None
    is_check = len(node.args) == 2 if node.func.id == "hasattr" else len(node.args) == 3
    return (*base, name.value), is_check


def module_uses(nodes: Iterable[ast.AST], aliases: frozenset[str]) -> tuple[dict[Chain, int], frozenset[Chain]]:
    """Every module chain the nodes reach (with its first line), and the chains behind capability checks."""
    uses: dict[Chain, int] = {}
    guarded: set[Chain] = set()

    def use(chain: Chain, line: int) -> None:
        uses[chain] = min(uses.get(chain, line), line)

    for node in (inner for outer in nodes for inner in ast.walk(outer)):
        if isinstance(node, ast.Attribute) and (chain := chain_of(node, aliases)):
            use(chain, node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module == "tensorrt" and node.level == 0:
            for alias in node.names:
                use((alias.name,), node.lineno)
        elif isinstance(node, ast.Call) and (probe := _probe(node, aliases)):
            use(probe[0], node.lineno)
            if probe[1]:
                guarded.add(probe[0])
    return uses, frozenset(guarded)


def missing_module_names(api: Api, uses: Mapping[Chain, int], guarded: frozenset[Chain]) -> list[str]:
    """`trt.X.Y (line N)` for each chain whose first missing prefix is not behind a capability check."""
    missing: dict[Chain, int] = {}
    for chain, line in uses.items():
        prefix = api.first_missing(chain)
        if prefix is not None and prefix not in guarded:
            missing[prefix] = min(missing.get(prefix, line), line)
    return [f"{MODULE_NAME}.{'.'.join(prefix)} (line {line})" for prefix, line in sorted(missing.items())]


def module_level_names(tree: ast.Module) -> frozenset[str]:
    """Names that are not TensorRT objects in a case module: its imports, functions, classes and globals."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    for statement in tree.body:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(statement.name)
        elif isinstance(statement, (ast.Assign, ast.AnnAssign)):
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            names.update(target.id for target in targets if isinstance(target, ast.Name))
    return frozenset(names)


def network_functions(tree: ast.Module) -> list[ast.FunctionDef]:
    """The TensorRT-facing functions: those given the network or the module (define_network and helpers)."""
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef)
        and NETWORK_PARAMETERS & {argument.arg for argument in (*node.args.posonlyargs, *node.args.args)}
    ]


def _root(node: ast.expr) -> ast.expr:
    """The object an attribute chain starts from: `layer.get_output(0).name` -> `layer`."""
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node


def _class_of(node: ast.expr, types: Mapping[str, str | None], api: Api) -> str | None:
    """An expression's TensorRT class: a typed local name, or a method call on a typed object."""
    if isinstance(node, ast.Name):
        return types.get(node.id)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        owner = _class_of(node.func.value, types, api)
        return None if owner is None else api.returns.get((owner, node.func.attr))
    return None


def local_classes(function: ast.FunctionDef, api: Api) -> dict[str, str | None]:
    """The class of each local name, where the snapshot determines it; None where it does not.

    A parameter named `network` holds the INetworkDefinition. A name bound only by plain assignments
    whose values all have the same known class has that class; any other binding (another class, an
    unknown value, a loop target, a tuple) leaves it untyped. Assignments are read in source order,
    so each sees the classes of the names bound before it.
    """
    parameters = (*function.args.posonlyargs, *function.args.args, *function.args.kwonlyargs)
    types: dict[str, str | None] = {arg.arg: NETWORK_CLASS if arg.arg == "network" else None for arg in parameters}
    typed_targets: set[int] = set()
    assignments = sorted(
        (node for node in ast.walk(function) if isinstance(node, ast.Assign) and len(node.targets) == 1),
        key=lambda node: (node.lineno, node.col_offset),
    )
    for assignment in assignments:
        target = assignment.targets[0]
        if isinstance(target, ast.Name):
            typed_targets.add(id(target))
            found = _class_of(assignment.value, types, api)
            types[target.id] = found if types.get(target.id, found) == found else None
    for node in ast.walk(function):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and id(node) not in typed_targets:
            types[node.id] = None
    return types


def object_members(function: ast.FunctionDef, api: Api, not_tensorrt: frozenset[str]) -> Iterator[Member]:
    """Each `obj.name` in the function whose obj is, or may be, a TensorRT object."""
    types = local_classes(function, api)
    called = {id(node.func) for node in ast.walk(function) if isinstance(node, ast.Call)}
    for node in ast.walk(function):
        if not isinstance(node, ast.Attribute) or _is_dunder(node.attr):
            continue
        owner = _class_of(node.value, types, api)
        root = _root(node)
        if owner is None and (not isinstance(root, ast.Name) or root.id in not_tensorrt):
            continue
        kind = "method" if id(node) in called else "property" if isinstance(node.ctx, ast.Store) else "member"
        yield Member(node.attr, kind, node.lineno, owner)


def _serves(kinds: frozenset[str], wanted: str) -> bool:
    """Whether a member of these kinds serves the use: any kind for a read, else that kind."""
    return bool(kinds) and (wanted == "member" or wanted in kinds)


def missing_members(api: Api, members: Iterable[Member]) -> list[str]:
    """`.name (line N): ...` for each member its class (or, untyped, every class) lacks as a method / property."""
    problems: dict[tuple[str, str, str], int] = {}
    for member in members:
        if member.owner is not None:
            owned = api.classes[member.owner].get(member.name)
            found = _serves(frozenset() if owned is None else frozenset({owned}), member.kind)
        else:
            found = _serves(api.member_kinds.get(member.name, frozenset()), member.kind)
        if not found:
            key = (member.name, member.owner or "", member.kind)
            problems[key] = min(problems.get(key, member.line), member.line)
    return [
        f".{name} on {owner} (line {line}): {owner} has no {kind} of that name"
        if owner
        else f".{name} (line {line}): no class has a {kind} of that name"
        for (name, owner, kind), line in sorted(problems.items())
    ]


def backend_problems(source: str, api: Api) -> list[str]:
    """Module names the backend uses that the version lacks, unless behind a capability check on that chain."""
    tree = ast.parse(source)
    uses, guarded = module_uses([tree], module_aliases(tree))
    return missing_module_names(api, uses, guarded)


def network_problems(source: str, api: Api) -> list[str]:
    """Names a case's TensorRT-facing functions use that the version lacks; no capability checks allowed."""
    tree = ast.parse(source)
    aliases = module_aliases(tree)
    functions = network_functions(tree)
    uses, _ = module_uses(functions, aliases)
    not_tensorrt = NOT_TENSORRT | aliases | module_level_names(tree)
    members = [member for function in functions for member in object_members(function, api, not_tensorrt)]
    return [*missing_module_names(api, uses, frozenset()), *missing_members(api, members)]


# --- the project's code against every snapshot ---------------------------------------------------------

each_version = pytest.mark.parametrize("version", VERSIONS)


def test_the_snapshots_are_those_of_the_supported_versions() -> None:
    """A snapshot that no test reads, or a supported version without one, would go unchecked."""
    found = sorted(path.name for path in SNAPSHOTS.glob("api-*.json"))
    assert found == sorted(f"api-{version}.json" for version in VERSIONS), f"in {SNAPSHOTS.relative_to(REPO)}"


@each_version
def test_backend_uses_only_names_the_version_has(version: str) -> None:
    path = REPO / BACKEND
    if not path.is_file():
        pytest.fail(f"{BACKEND} is missing: the TensorRT backend must exist for its API conformance to be checked")
    missing = backend_problems(path.read_text(), load_api(version))
    assert not missing, (
        f"{BACKEND} uses names that TensorRT {version} does not have: {'; '.join(missing)}. Use names every "
        'supported version has, or reach them behind hasattr(trt.X, "Y") / getattr(trt.X, "Y", None) on that chain'
    )


@each_version
@pytest.mark.parametrize("case", ALL_CASES, ids=lambda case: case.name)
def test_case_network_uses_only_names_the_version_has(case: Case, version: str) -> None:
    assert case.define_network is not None, f"case '{case.name}' has no define_network; add one to its CASE"
    path = Path(inspect.getfile(case.define_network)).resolve()
    source = path.read_text()
    facing = {function.name for function in network_functions(ast.parse(source))}
    assert case.define_network.__name__ in facing, f"{path.name}: define_network must take (network, trt, ...)"
    missing = network_problems(source, load_api(version))
    assert not missing, (
        f"{path.relative_to(REPO)} uses names that TensorRT {version} does not have: {'; '.join(missing)}. "
        f"A case must use only names that every supported version ({', '.join(VERSIONS)}) has"
    )


# --- the checker itself, on small sources --------------------------------------------------------------

NETWORK = """
def define_network(network, trt, precision):
    x = network.add_input("x", trt.DataType.FLOAT, (-1, 3))
    layer = network.add_identity(x)
    {line}
    network.mark_output(layer.get_output(0))
"""


def test_a_network_using_only_real_names_passes() -> None:
    source = NETWORK.format(line="layer.name = 'copy'")
    assert network_problems(source, load_api("10.13")) == []
    assert network_problems(source, load_api("11.4")) == []


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("y = trt.DataType.FLOATY", "trt.DataType.FLOATY (line 5)"),
        ("y = trt.IdentityMaker", "trt.IdentityMaker (line 5)"),
        (
            "network.add_magic(x)",
            ".add_magic on INetworkDefinition (line 5): INetworkDefinition has no method of that name",
        ),
        ("layer.get_output = 1", ".get_output on IIdentityLayer (line 5): IIdentityLayer has no property of that name"),
        (
            "layer.padding_nd = (1, 1)",
            ".padding_nd on IIdentityLayer (line 5): IIdentityLayer has no property of that name",
        ),
        ("layer.get_output(0).nam = 'y'", ".nam on ITensor (line 5): ITensor has no property of that name"),
        (
            "network.add_softmax(x).axis = 2",
            ".axis on ISoftMaxLayer (line 5): ISoftMaxLayer has no property of that name",
        ),
        ("x.shapez", ".shapez on ITensor (line 5): ITensor has no member of that name"),
    ],
    ids=[
        "enum-member",
        "module-attribute",
        "method",
        "method-assigned",
        "wrong-layer",
        "tensor",
        "axis-for-axes",
        "read",
    ],
)
def test_a_network_using_a_made_up_name_fails(line: str, problem: str) -> None:
    assert network_problems(NETWORK.format(line=line), load_api("11.4")) == [problem]


def test_a_network_may_not_use_a_name_that_one_version_lacks_even_behind_a_check() -> None:
    line = "y = trt.BuilderFlag.FP16 if hasattr(trt.BuilderFlag, 'FP16') else None"
    assert network_problems(NETWORK.format(line=line), load_api("10.13")) == []
    assert network_problems(NETWORK.format(line=line), load_api("11.4")) == ["trt.BuilderFlag.FP16 (line 5)"]


def test_a_member_of_an_object_of_unknown_class_must_exist_in_some_class() -> None:
    """A helper's parameters have no known class: the member must at least exist somewhere."""
    source = "def helper(network, tensor, layer):\n    layer.padding_nd = tensor.shape\n    layer.paddingnd = 1\n"
    assert network_problems(source, load_api("11.4")) == [".paddingnd (line 3): no class has a property of that name"]


def test_a_name_bound_to_different_classes_is_untyped() -> None:
    """Flow-insensitive typing: a name that holds a layer, then a tensor, is checked against every class."""
    line = "layer = layer.get_output(0)\n    layer.padding_nd = (1, 1)"
    assert network_problems(NETWORK.format(line=line), load_api("11.4")) == []


def test_numpy_builtins_and_module_names_are_not_taken_for_tensorrt_objects() -> None:
    source = "import functools\nW = {}\n" + NETWORK.format(
        line="y = np.shape(W.get('w')), ''.join([]), functools.reduce"
    )
    assert network_problems(source, load_api("11.4")) == []


BACKEND_FP16 = """
import tensorrt as trt

def configure(config):
    {guard}
        config.set_flag(trt.BuilderFlag.FP16)
"""


@pytest.mark.parametrize(
    "guard",
    ['if hasattr(trt.BuilderFlag, "FP16"):', 'if getattr(trt.BuilderFlag, "FP16", None) is not None:'],
)
def test_a_capability_checked_name_of_10x_only_passes_on_11x(guard: str) -> None:
    source = BACKEND_FP16.format(guard=guard)
    assert backend_problems(source, load_api("10.13")) == []
    assert backend_problems(source, load_api("11.4")) == []


@pytest.mark.parametrize(
    ("guard", "line"),
    [("if True:", 6), ('if hasattr(trt, "BuilderFlag"):', 6), ('if getattr(trt.BuilderFlag, "FP16") is not None:', 5)],
    ids=["no-check", "check-on-another-chain", "getattr-without-default"],
)
def test_an_unchecked_name_of_10x_only_fails_on_11x(guard: str, line: int) -> None:
    source = BACKEND_FP16.format(guard=guard)
    assert backend_problems(source, load_api("10.13")) == []
    assert backend_problems(source, load_api("11.4")) == [f"trt.BuilderFlag.FP16 (line {line})"]


@pytest.mark.parametrize(
    ("source", "problems"),
    [
        ("import tensorrt as t\nlogger = t.Logger(t.ILogger.Severity.ERROR)", []),
        ("import tensorrt as t\nlogger = t.Logger(t.ILogger.Severity.LOUD)", ["trt.ILogger.Severity.LOUD (line 2)"]),
        ("from tensorrt import Buildr", ["trt.Buildr (line 1)"]),
        ("import tensorrt as trt\nversion = trt.__version__.split('.')", []),
    ],
    ids=["nested-enum", "nested-enum-made-up", "from-import", "dunder"],
)
def test_module_chains_resolve_through_aliases_and_nested_enums(source: str, problems: list[str]) -> None:
    assert backend_problems(source, load_api("11.4")) == problems


@each_version
def test_module_level_dtype_aliases_resolve_and_made_up_ones_do_not(version: str) -> None:
    api = load_api(version)
    assert api.first_missing(("float32",)) is None and api.first_missing(("float16",)) is None
    assert api.first_missing(("float33",)) == ("float33",)
