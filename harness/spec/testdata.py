"""ONNX's own test layout: `test_data_set_N/input_K.pb` and `output_K.pb` (TensorProto files) beside a model,
read as fixed inputs with their expected outputs."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harness.case import Profile, Shape
from harness.spec.errors import SpecError
from harness.spec.model import ModelFile, ModelTensor
from harness.spec.reference import StoredOutputs, inputs_sha256

DATA_SET = re.compile(r"test_data_set_(\d+)")
TENSOR_FILE = re.compile(r"(input|output)_(\d+)\.pb")


@dataclass(frozen=True)
class DataSet:
    folder: Path
    inputs: Mapping[str, np.ndarray]
    outputs: Mapping[str, np.ndarray]

    def shapes(self) -> dict[str, Shape]:
        return {name: tuple(array.shape) for name, array in self.inputs.items()}


@dataclass(frozen=True, eq=False)
class StoredInputs:
    """generate_inputs of a case with stored data: a stored data set of the shapes asked for (the seed picks one
    where several share those shapes, so the matrix and the fuzz test spread over them)."""

    sha256: str  # of every stored input: the int8 calibration cache's recipe
    sets: tuple[DataSet, ...] = field(repr=False)

    def __call__(self, shapes: Mapping[str, Shape], rng: np.random.Generator) -> dict[str, np.ndarray]:
        matching = [data for data in self.sets if data.shapes() == {n: tuple(s) for n, s in shapes.items()}]
        if not matching:
            raise ValueError(
                f"no stored data set has the input shapes {dict(shapes)}; a case with stored data runs at its "
                "data sets' shapes only"
            )
        chosen = matching[int(rng.integers(len(matching)))]
        return {name: array.copy() for name, array in chosen.inputs.items()}


def data_set_folders(folder: Path) -> list[Path]:
    found = [(int(match[1]), path) for path in folder.iterdir() if (match := DATA_SET.fullmatch(path.name))]
    return [path for _, path in sorted(found)] if folder.is_dir() else []


def read_test_data(folder: Path, model: ModelFile, spec_file: Path, field_name: str) -> tuple[DataSet, ...]:
    """Every test_data_set_N under `folder`, checked against the model; SpecError naming the file and the fix."""
    folders = data_set_folders(folder) if folder.is_dir() else []
    if not folders:
        raise SpecError(
            spec_file,
            field_name,
            f"no test_data_set_N folders in {folder}; point it at the folder holding test_data_set_0/input_0.pb ...",
        )
    return tuple(_data_set(path, model, spec_file, field_name) for path in folders)


def _data_set(folder: Path, model: ModelFile, spec_file: Path, field_name: str) -> DataSet:
    tensors: dict[str, dict[int, Path]] = {"input": {}, "output": {}}
    for path in folder.iterdir():
        if match := TENSOR_FILE.fullmatch(path.name):
            tensors[match[1]][int(match[2])] = path
    inputs = _arrays(tensors["input"], model.inputs, spec_file, field_name)
    outputs = _arrays(tensors["output"], model.outputs, spec_file, field_name)
    missing = [tensor.name for tensor in model.inputs if tensor.name not in inputs]
    if missing or not outputs:
        what = f"no input_K.pb for inputs {missing}" if missing else "no output_K.pb"
        raise SpecError(spec_file, field_name, f"{folder} has {what}; store every input and the expected outputs")
    empty = next((name for name, array in inputs.items() if array.size == 0), None)
    if empty is not None:
        raise SpecError(
            spec_file,
            field_name,
            f"{folder}: input '{empty}' is empty (shape {list(inputs[empty].shape)}); zero-size inputs are not "
            "supported (an optimization profile needs every dimension >= 1); store data sets with non-empty inputs",
        )
    return DataSet(folder, inputs, outputs)


def _arrays(
    files: Mapping[int, Path], declared: tuple[ModelTensor, ...], spec_file: Path, field_name: str
) -> dict[str, np.ndarray]:
    """The TensorProto files, by name (a file without a name is the model's K-th input or output)."""
    import onnx
    from onnx import numpy_helper

    arrays: dict[str, np.ndarray] = {}
    for index, path in sorted(files.items()):
        tensor = onnx.TensorProto()
        try:
            tensor.ParseFromString(path.read_bytes())
            array = numpy_helper.to_array(tensor)
        except Exception as error:  # noqa: BLE001 protobuf's DecodeError, onnx's unsupported types: a bad file
            raise SpecError(
                spec_file,
                field_name,
                f"{path} is not a TensorProto file ({error}); write it with "
                "onnx.numpy_helper.from_array(...).SerializeToString()",
            ) from None
        name = tensor.name or (declared[index].name if index < len(declared) else "")
        spec = next((t for t in declared if t.name == name), None)
        if spec is None:
            names = [t.name for t in declared]
            raise SpecError(
                spec_file,
                field_name,
                f"{path} holds tensor '{name}', which the model does not declare "
                f"(it declares {names}); name the tensor after one of them",
            )
        problem = shape_problem(spec, array)
        if problem:
            raise SpecError(spec_file, field_name, f"{path}: {problem}; store data the model accepts")
        arrays[name] = array
    return arrays


def shape_problem(spec: ModelTensor, array: np.ndarray) -> str | None:
    """How an array disagrees with a model tensor's dtype, rank or fixed dimensions; None when it fits."""
    if array.dtype != np.dtype(spec.dtype):
        return f"'{spec.name}' is {array.dtype} but the model declares {spec.dtype}"
    if array.ndim != len(spec.shape) or any(
        isinstance(dim, int) and dim != value for dim, value in zip(spec.shape, array.shape)
    ):
        shown = ["?" if dim is None else dim for dim in spec.shape]
        return f"'{spec.name}' has shape {list(array.shape)} but the model declares {shown}"
    return None


def stored_case_parts(sets: tuple[DataSet, ...]) -> tuple[StoredInputs, StoredOutputs, tuple[Profile, ...]]:
    """The generator, the reference and the profiles (one per distinct input shapes, min = opt = max) of stored data."""
    digest = hashlib.sha256("|".join(inputs_sha256(data.inputs) for data in sets).encode()).hexdigest()
    distinct = list({tuple(sorted(data.shapes().items())): data.shapes() for data in sets}.values())
    profiles = tuple(Profile(min=shapes, opt=shapes, max=shapes) for shapes in distinct)
    reference = StoredOutputs({inputs_sha256(data.inputs): data.outputs for data in sets})
    return StoredInputs(digest, sets), reference, profiles
