"""What a spec needs to know about a user's ONNX model: its checked bytes, inputs and outputs."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from harness.spec.errors import SpecError

if TYPE_CHECKING:
    import onnx

# A model dimension: fixed (int), dynamic and named by the model (its dim_param), or dynamic unnamed (None).
ModelDim = int | str | None


@dataclass(frozen=True)
class ModelTensor:
    name: str
    dtype: str  # numpy dtype name
    shape: tuple[ModelDim, ...]


@dataclass(frozen=True, eq=False)
class ModelFile:
    path: Path
    data: bytes  # the file's bytes, checked by onnx.checker
    inputs: tuple[ModelTensor, ...]  # graph inputs that are not initializers
    outputs: tuple[ModelTensor, ...]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def input(self, name: str) -> ModelTensor:
        return next(tensor for tensor in self.inputs if tensor.name == name)


def read_model(path: Path, spec_file: Path, field: str = "model") -> ModelFile:
    """The model at `path`, or SpecError naming the spec file, the field and the fix."""
    import onnx
    from google.protobuf.message import DecodeError

    if not path.is_file():
        if path == spec_file:  # read on its own (init), not named by a spec
            raise SpecError(path, "", "no such model file; give the path of an .onnx file")
        raise SpecError(spec_file, field, f"no model file at {path}; give the .onnx path relative to {spec_file.name}")
    data = path.read_bytes()
    try:
        model = onnx.load_from_string(data)
        onnx.checker.check_model(model)
    except (DecodeError, onnx.checker.ValidationError, ValueError, RuntimeError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise SpecError(
            spec_file,
            field,
            f"{path} is not a valid ONNX model ({first_line}); export it again (e.g. torch.onnx.export) and check it "
            "with onnx.checker.check_model",
        ) from None
    if not model.graph.output:
        raise SpecError(spec_file, field, f"{path} has no graph outputs; export a model with at least one output")
    return ModelFile(path, data, _tensors(model, inputs=True), _tensors(model, inputs=False))


def _tensors(model: onnx.ModelProto, *, inputs: bool) -> tuple[ModelTensor, ...]:
    initializers = {initializer.name for initializer in model.graph.initializer}
    values = model.graph.input if inputs else model.graph.output
    return tuple(_tensor(value) for value in values if value.name not in initializers)


def _tensor(value: onnx.ValueInfoProto) -> ModelTensor:
    from onnx import helper

    tensor_type = value.type.tensor_type
    dims: list[ModelDim] = []
    for dim in tensor_type.shape.dim:
        if dim.HasField("dim_value"):
            dims.append(int(dim.dim_value))
        else:
            dims.append(dim.dim_param or None)
    dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)).name
    return ModelTensor(value.name, dtype, tuple(dims))


def with_outputs(data: bytes, names: tuple[str, ...]) -> bytes:
    """The model keeping only the named graph outputs (the ones a spec checks); the bytes as they are when all
    outputs are kept."""
    import onnx

    model = onnx.load_from_string(data)
    if [output.name for output in model.graph.output] == list(names):
        return data
    kept = [output for output in model.graph.output if output.name in names]
    del model.graph.output[:]
    model.graph.output.extend(kept)
    serialized: bytes = model.SerializeToString()
    return serialized


@dataclass(frozen=True, eq=False)
class ModelBytes:
    """A case's onnx_model(): the model parsed from bytes read (and checked) once, at load time."""

    data: bytes

    def __call__(self) -> onnx.ModelProto:
        import onnx

        return onnx.load_from_string(self.data)

    def __repr__(self) -> str:
        return f"ModelBytes(sha256={hashlib.sha256(self.data).hexdigest()})"
