"""Spec files to cases: a TOML file's `[[case]]` entries, a pyproject.toml's `[[tool.trt-harness.case]]`, or a
folder in ONNX's test layout. Each entry becomes an ordinary harness.case.Case; a bad entry becomes an error
naming the file, the field and the fix, and the other entries still load."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.case import (
    CASE_NAME,
    CASE_NAME_RULE,
    DEFAULT_MEAN_REL,
    Case,
    Dim,
    InputGenerator,
    Precision,
    Profile,
    Reference,
    ReferenceKind,
    Shape,
    TensorSpec,
    Tolerance,
    check_case,
)
from harness.errors import CaseDefinitionError
from harness.precision.names import node_name_problem
from harness.spec.errors import SpecError, check_keys, close_match
from harness.spec.inputs import GENERATOR_KEYS, FromFile, Generator, SpecInputs, parse_generator
from harness.spec.model import ModelBytes, ModelFile, ModelTensor, read_model, with_outputs
from harness.spec.reference import OnnxRuntimeReference
from harness.spec.testdata import read_test_data, stored_case_parts
from harness.tomlfile import tomllib

PYPROJECT_TABLE = ("tool", "trt-harness")
FOLDER_MODEL = "model.onnx"  # ONNX's test layout: model.onnx beside test_data_set_N/
CASE_KEYS = (
    "name",
    "model",
    "description",
    "precisions",
    "outputs",
    "latency_threshold",
    "keep_fp32",
    "test_data",
    "inputs",
    "profile",
    "tolerance",
)
INPUT_KEYS = ("shape", "key", *GENERATOR_KEYS)
TOLERANCE_KEYS = ("mean_rel", "exact", "justification")


@dataclass(frozen=True)
class LoadedSpecs:
    cases: tuple[Case, ...]
    errors: tuple[str, ...]  # one per spec file or entry that could not load: the session reports each


def load_specs(paths: Sequence[Path], cache_dir: Path | None = None, taken: Sequence[str] = ()) -> LoadedSpecs:
    """Every case the spec files (or test-layout folders) declare; `taken`: names already registered elsewhere.
    `cache_dir` (the engine cache) also holds the ONNX Runtime references, computed once per input."""
    cases: list[Case] = []
    errors: list[str] = []
    names = {name: "a case of the pytest_harness_cases hook" for name in taken}  # name -> where it was declared
    for path in paths:
        try:
            entries = spec_entries(path)
        except SpecError as error:
            errors.append(str(error))
            continue
        for field, entry, spec_file in entries:
            try:
                case = case_from_entry(entry, spec_file, field, cache_dir)
                if case.name in names:
                    raise SpecError(
                        spec_file,
                        f"{field}.name",
                        f"'{case.name}' is already the name of {names[case.name]}; give every case a unique name "
                        '(name = "…"; without it a case is named after its model file)',
                    )
            except SpecError as error:
                errors.append(str(error))
                continue
            names[case.name] = f"{spec_file}'s {field}"
            cases.append(case)
    return LoadedSpecs(tuple(cases), tuple(errors))


def load_spec(path: Path, cache_dir: Path | None = None) -> tuple[Case, ...]:
    """The cases of one spec file or folder; the first problem as SpecError."""
    loaded = load_specs([path], cache_dir)
    if loaded.errors:
        raise SpecError(path, "", loaded.errors[0].removeprefix(f"{path}: "))
    return loaded.cases


def has_pyproject_table(path: Path) -> bool:
    """Whether a pyproject.toml declares harness cases (an unreadable one declares none: pytest reports it)."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    return isinstance(data.get(PYPROJECT_TABLE[0], {}).get(PYPROJECT_TABLE[1]), dict)


def spec_entries(path: Path) -> list[tuple[str, dict[str, Any], Path]]:
    """(field, entry, the file its paths are relative to) for every case a spec path declares."""
    if path.is_dir():
        if not (path / FOLDER_MODEL).is_file():
            raise SpecError(
                path,
                "",
                f"no {FOLDER_MODEL} here; an ONNX test-layout folder holds {FOLDER_MODEL} beside test_data_set_N/",
            )
        entry = {"name": default_name(path.resolve().name), "model": FOLDER_MODEL, "test_data": "."}
        return [(f"folder {path.name}", entry, path / FOLDER_MODEL)]
    if not path.is_file():
        raise SpecError(
            path, "", "no such spec file or folder; pass --harness-spec (ini harness_spec) an existing path"
        )
    try:
        data = tomllib.loads(path.read_text())
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise SpecError(path, "", f"is not valid TOML ({error}); fix the line it names") from None
    prefix = ""
    if path.name == "pyproject.toml":
        table = data.get(PYPROJECT_TABLE[0], {}).get(PYPROJECT_TABLE[1])
        if not isinstance(table, dict):
            raise SpecError(path, "tool.trt-harness", "no such table; add [[tool.trt-harness.case]] entries")
        data, prefix = table, "tool.trt-harness."
    check_keys(data, ("case",), path, prefix.rstrip("."))
    entries = data.get("case")
    if not isinstance(entries, list) or not entries or not all(isinstance(entry, dict) for entry in entries):
        raise SpecError(path, f"{prefix}case", f"no cases; add one [[{prefix}case]] table per model")
    return [(f"{prefix}case[{index}]", entry, path) for index, entry in enumerate(entries)]


def case_from_entry(entry: Mapping[str, Any], spec_file: Path, field: str, cache_dir: Path | None) -> Case:
    """One spec entry as a Case; SpecError naming the file, the field and the fix."""
    check_keys(entry, CASE_KEYS, spec_file, field)
    model_path = _typed(entry, "model", str, None, spec_file, field, '"model.onnx"')
    named_after = Path(model_path).stem if model_path is not None else ""
    if model_path is None:
        # ONNX's test layout: test_data = "folder" alone means the folder's model.onnx, the case named after it.
        data = entry.get("test_data")
        if isinstance(data, str) and (spec_file.parent / data / FOLDER_MODEL).is_file():
            model_path = str(Path(data) / FOLDER_MODEL)
            named_after = (spec_file.parent / data).resolve().name
        else:
            held = f" ({data!r} holds no {FOLDER_MODEL})" if isinstance(data, str) else ""
            raise SpecError(
                spec_file,
                f"{field}.model",
                f'missing{held}; give the model\'s path: model = "model.onnx", or test_data = "folder" naming an ONNX '
                f"test-layout folder with {FOLDER_MODEL} in it",
            )
    model = read_model(spec_file.parent / model_path, spec_file, f"{field}.model")
    name = _typed(entry, "name", str, default_name(named_after), spec_file, field, '"my_model"')
    if not CASE_NAME.fullmatch(name):
        raise SpecError(spec_file, f"{field}.name", f"{name!r} may hold only {CASE_NAME_RULE}; rename it")
    field = f"{field} ('{name}')"
    inputs_table = _tables(entry.get("inputs", {}), spec_file, f"{field}.inputs")
    for input_name, table in inputs_table.items():
        _tables(table, spec_file, f"{field}.inputs.{input_name}")
        if input_name not in {tensor.name for tensor in model.inputs}:
            known = [tensor.name for tensor in model.inputs]
            raise SpecError(
                spec_file,
                f"{field}.inputs.{input_name}",
                f"the model has no input '{input_name}'; {close_match(input_name, known)} (its inputs: {known})",
            )
        check_keys(table, INPUT_KEYS, spec_file, f"{field}.inputs.{input_name}")
    shapes = {
        tensor.name: _input_shape(tensor, inputs_table.get(tensor.name, {}).get("shape"), spec_file, field)
        for tensor in model.inputs
    }
    checked = _checked_outputs(entry, model, spec_file, field)
    generate: InputGenerator
    reference: Reference
    if "test_data" in entry:
        stray = [f"{n}.{key}" for n, table in inputs_table.items() for key in table if key in GENERATOR_KEYS]
        if stray:
            raise SpecError(
                spec_file,
                f"{field}.inputs.{stray[0]}",
                "a case with test_data runs its stored inputs; drop the generator, or test_data",
            )
        folder = spec_file.parent / _typed(entry, "test_data", str, ".", spec_file, field, '"data"')
        generate, reference, profiles = stored_case_parts(
            read_test_data(folder, model, spec_file, f"{field}.test_data")
        )
        kind = ReferenceKind.STORED
    else:
        generators = {
            tensor.name: parse_generator(
                inputs_table.get(tensor.name, {}), tensor, spec_file, f"{field}.inputs.{tensor.name}"
            )
            for tensor in model.inputs
        }
        generate = SpecInputs(tuple((t.name, t.dtype, generators[t.name]) for t in model.inputs))
        profiles = _profiles(entry.get("profile"), shapes, generators, spec_file, field)
        reference = _onnxruntime_reference(model, checked, cache_dir, spec_file, f"{field}.model")
        kind = ReferenceKind.ONNXRUNTIME_FP32
    outputs = {tensor.name: tensor for tensor in model.outputs}
    case = Case(
        name=name,
        description=_typed(entry, "description", str, f"{model_path} from {spec_file.name}", spec_file, field, '"…"'),
        inputs=tuple(TensorSpec(t.name, t.dtype, shapes[t.name]) for t in model.inputs),
        outputs=tuple(TensorSpec(n, outputs[n].dtype, _output_shape(outputs[n])) for n in checked),
        profiles=profiles,
        onnx_model=ModelBytes(with_outputs(model.data, checked)),
        reference=reference,
        generate_inputs=generate,
        precisions=_precisions(entry, spec_file, field),
        tolerances=_tolerances(entry.get("tolerance", {}), checked, spec_file, field),
        latency_threshold=_threshold(entry, spec_file, field),
        keep_fp32=_kept_nodes(entry, model, spec_file, field),
        reference_kind=kind,
    )
    try:
        check_case(case)
    except CaseDefinitionError as error:
        raise SpecError(spec_file, field, str(error)) from None
    return case


def _onnxruntime_reference(
    model: ModelFile, checked: tuple[str, ...], cache_dir: Path | None, spec_file: Path, field: str
) -> OnnxRuntimeReference:
    """The reference of a case without stored outputs: ONNX Runtime at float32 on the model, upgraded first where
    it is below the opset ONNX Runtime runs (recorded with the reference); SpecError where it cannot be."""
    import onnx

    from harness.backends import BUILTIN_BACKENDS
    from harness.precision.opset import OpsetConversionError, upgraded

    original = onnx.load_from_string(model.data)
    try:
        converted, conversion = upgraded(
            original,
            BUILTIN_BACKENDS["ort"].min_opset,
            needed_by="ONNX Runtime (which computes this case's float32 reference)",
        )
    except OpsetConversionError as error:
        raise SpecError(spec_file, field, f"{model.path}: {error}") from None
    data = model.data if conversion is None else converted.SerializeToString()
    return OnnxRuntimeReference(ModelBytes(data), checked, cache_dir, conversion)


def default_name(stem: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", stem).lstrip("._-") or "model"


def dim_names(tensor: ModelTensor) -> tuple[Dim, ...]:
    """The model's dims, an unnamed dynamic dim named '<input>_dim<axis>' (a spec's `shape` may rename it)."""
    return tuple(f"{tensor.name}_dim{axis}" if dim is None else dim for axis, dim in enumerate(tensor.shape))


def _input_shape(tensor: ModelTensor, given: object, spec_file: Path, field: str) -> tuple[Dim, ...]:
    where = f"{field}.inputs.{tensor.name}.shape"
    model_dims = dim_names(tensor)
    if given is None:
        return model_dims
    if not isinstance(given, list) or len(given) != len(tensor.shape):
        raise SpecError(spec_file, where, f"expected a list of {len(tensor.shape)} dims like {list(model_dims)}")
    for axis, (declared, dim) in enumerate(zip(tensor.shape, given)):
        if isinstance(declared, int) and dim != declared:
            raise SpecError(spec_file, where, f"dim {axis} is fixed at {declared} by the model; write {declared}")
        if not isinstance(dim, (int, str)) or isinstance(dim, bool):
            raise SpecError(spec_file, where, f"dim {axis} is {dim!r}; write a number or a dimension name")
    return tuple(given)


def _output_shape(tensor: ModelTensor) -> tuple[Dim, ...]:
    return dim_names(tensor)


def _checked_outputs(entry: Mapping[str, Any], model: ModelFile, spec_file: Path, field: str) -> tuple[str, ...]:
    known = [tensor.name for tensor in model.outputs]
    names = _strings(entry, "outputs", spec_file, field, f"{known}") or known
    for name in names:
        if name not in known:
            raise SpecError(
                spec_file, f"{field}.outputs", f"the model has no output '{name}'; {close_match(name, known)}"
            )
    return tuple(dict.fromkeys(names))


def _profiles(
    raw: object,
    shapes: Mapping[str, tuple[Dim, ...]],
    generators: Mapping[str, Generator],
    spec_file: Path,
    field: str,
) -> tuple[Profile, ...]:
    """[[case.profile]] tables: `dim = [min, opt, max]` per dynamic dimension; a file input fixes its own."""
    where = f"{field}.profile"
    dynamic = {dim: name for name, dims in shapes.items() for dim in dims if isinstance(dim, str)}
    fixed_by_file = _dims_fixed_by_files(shapes, generators)
    if raw is None:
        raw = [{}]
    if not isinstance(raw, list) or not all(isinstance(table, dict) for table in raw):
        raise SpecError(spec_file, where, "expected [[case.profile]] tables of dim = [min, opt, max]")
    profiles = []
    for index, table in enumerate(raw):
        check_keys(table, dynamic, spec_file, f"{where}[{index}]")
        corners: dict[str, list[int]] = {}
        for dim, first_input in dynamic.items():
            value = table.get(dim)
            if value is None and dim in fixed_by_file:
                value = [fixed_by_file[dim]] * 3
            if value is None:
                raise SpecError(
                    spec_file,
                    f"{where}[{index}]" if table else where,
                    f"dynamic dimension '{dim}' (input '{first_input}') has no [min, opt, max]; add "
                    f"{toml_key(dim)} = [1, 1, 8] to {'this' if table else 'a'} [[case.profile]] table",
                )
            if not (isinstance(value, list) and len(value) == 3 and all(type(v) is int for v in value)):
                raise SpecError(
                    spec_file, f"{where}[{index}].{dim}", f"expected [min, opt, max] integers, got {value!r}"
                )
            if not 1 <= value[0] <= value[1] <= value[2]:
                raise SpecError(
                    spec_file,
                    f"{where}[{index}].{dim}",
                    f"expected 1 <= min <= opt <= max, got {value}; e.g. {toml_key(dim)} = "
                    f"{sorted(max(v, 1) for v in value)}",
                )
            if dim in fixed_by_file and value != [fixed_by_file[dim]] * 3:
                raise SpecError(
                    spec_file,
                    f"{where}[{index}].{dim}",
                    f"an input read from a file fixes '{dim}' at {fixed_by_file[dim]}; write "
                    f"{toml_key(dim)} = {[fixed_by_file[dim]] * 3} or drop it",
                )
            corners[dim] = value
        profiles.append(Profile(*(_corner(shapes, corners, corner) for corner in range(3))))
    return tuple(profiles)


def _dims_fixed_by_files(shapes: Mapping[str, tuple[Dim, ...]], generators: Mapping[str, Generator]) -> dict[str, int]:
    fixed: dict[str, int] = {}
    for name, generator in generators.items():
        if isinstance(generator, FromFile):
            for dim, value in zip(shapes[name], generator.array.shape):
                if isinstance(dim, str):
                    fixed.setdefault(dim, int(value))
    return fixed


def _corner(shapes: Mapping[str, tuple[Dim, ...]], corners: Mapping[str, list[int]], corner: int) -> dict[str, Shape]:
    return {
        name: tuple(corners[dim][corner] if isinstance(dim, str) else dim for dim in dims)
        for name, dims in shapes.items()
    }


def _tolerances(
    raw: object, outputs: tuple[str, ...], spec_file: Path, field: str
) -> dict[tuple[Precision, str], Tolerance]:
    """[case.tolerance.PRECISION] OUTPUT = { mean_rel = …, justification = "…" } (or exact = true)."""
    where = f"{field}.tolerance"
    tolerances = {}
    for precision, per_output in _tables(raw, spec_file, where).items():
        check_keys({precision: None}, [p.value for p in Precision], spec_file, where)
        for output, table in _tables(per_output, spec_file, f"{where}.{precision}").items():
            check_keys({output: None}, outputs, spec_file, f"{where}.{precision}")
            at = f"{where}.{precision}.{output}"
            if not isinstance(table, dict):
                raise SpecError(spec_file, at, 'expected { mean_rel = 2e-3, justification = "measured …" }')
            check_keys(table, TOLERANCE_KEYS, spec_file, at)
            mean_rel = table.get("mean_rel")
            if mean_rel is not None and (not isinstance(mean_rel, (int, float)) or mean_rel <= 0):
                raise SpecError(spec_file, f"{at}.mean_rel", f"expected a positive number, got {mean_rel!r}")
            default = DEFAULT_MEAN_REL[Precision(precision)]
            if mean_rel is not None and mean_rel > default and not str(table.get("justification", "")).strip():
                raise SpecError(
                    spec_file,
                    f"{at}.justification",
                    f"missing: mean_rel = {mean_rel:g} is looser than the default {default:g}; say why, from "
                    'measurement: justification = "measured: worst … over … seeds"',
                )
            tolerances[(Precision(precision), output)] = Tolerance(
                mean_rel=float(mean_rel) if mean_rel is not None else None,
                exact=bool(table.get("exact", False)),
                justification=str(table.get("justification", "")),
            )
    return tolerances


def _kept_nodes(entry: Mapping[str, Any], model: ModelFile, spec_file: Path, field: str) -> tuple[str, ...]:
    """keep_fp32: node names of the model (as the harness names them: an unnamed node after its first output)."""
    import onnx

    from harness.precision.convert import named_nodes

    names = tuple(_strings(entry, "keep_fp32", spec_file, field, '["node_name"]'))
    problem = node_name_problem(named_nodes(onnx.load_from_string(model.data)), names, "keep_fp32") if names else None
    if problem is not None:
        raise SpecError(spec_file, f"{field}.keep_fp32", problem)
    return names


def _precisions(entry: Mapping[str, Any], spec_file: Path, field: str) -> tuple[Precision, ...]:
    known = [p.value for p in Precision]
    names = _strings(entry, "precisions", spec_file, field, '["fp32", "fp16"]')
    for name in names:
        if name not in known:
            raise SpecError(spec_file, f"{field}.precisions", f"unknown precision '{name}'; {close_match(name, known)}")
    return tuple(Precision(name) for name in names) if names else tuple(Precision)


def _threshold(entry: Mapping[str, Any], spec_file: Path, field: str) -> float | None:
    value = entry.get("latency_threshold")
    if value is None:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < 10:
        raise SpecError(
            spec_file, f"{field}.latency_threshold", f"expected a slowdown fraction such as 0.1, got {value!r}"
        )
    return float(value)


def _typed(
    entry: Mapping[str, Any], key: str, kind: type, default: Any, spec_file: Path, field: str, example: str
) -> Any:
    value = entry.get(key, default)
    if value is not None and not isinstance(value, kind):
        raise SpecError(spec_file, f"{field}.{key}", f"expected a {kind.__name__}, e.g. {key} = {example}")
    return value


def _strings(entry: Mapping[str, Any], key: str, spec_file: Path, field: str, example: str) -> list[str]:
    value = entry.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise SpecError(spec_file, f"{field}.{key}", f"expected a list of names, e.g. {key} = {example}")
    return value


def _tables(value: object, spec_file: Path, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SpecError(spec_file, field, f"expected a table ([{field.split(' ')[0]}…]), got {value!r}")
    return value


BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def toml_key(name: str) -> str:
    """A TOML key: bare where it may be, else quoted."""
    return name if BARE_KEY.fullmatch(name) else '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
