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
    """The model at `path`, or SpecError naming the spec file, the field and the fix.

    What every later step sees (the case, its reference, every derived model) is the model as read here: external
    data files loaded from the model's own folder and embedded, initializers that an old IR version also listed as
    graph inputs taken off the inputs (they are weights: harness/precision/opset.py's weights_as_weights). A model
    whose inputs or outputs the harness cannot generate or compare (strings, sequences, maps), or that uses a
    training-only operator domain, is refused here with the reason."""
    import onnx
    from google.protobuf.message import DecodeError

    from harness.precision.opset import weights_as_weights

    if not path.is_file():
        if path == spec_file:  # read on its own (init), not named by a spec
            raise SpecError(path, "", "no such model file; give the path of an .onnx file")
        raise SpecError(spec_file, field, f"no model file at {path}; give the .onnx path relative to {spec_file.name}")
    data = path.read_bytes()
    try:
        model = onnx.load_from_string(data)
        external = _with_external_data(model, path, spec_file, field)
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
    _refuse_training_domains(model, path, spec_file, field)
    fixed = weights_as_weights(model)
    if external or fixed is not model:
        data = fixed.SerializeToString()
    inputs, outputs = _tensors(fixed, inputs=True), _tensors(fixed, inputs=False)
    for kind, values in (("input", _io_values(fixed, inputs=True)), ("output", _io_values(fixed, inputs=False))):
        for value in values:
            problem = unsupported_type(value)
            if problem:
                raise SpecError(
                    spec_file,
                    field,
                    f"{path}: {kind} '{value.name}' is {problem}; the harness generates, runs and compares numeric "
                    f"tensors only (float, integer, bool), so it cannot test this model: export one whose {kind}s "
                    "are numeric tensors",
                )
    return ModelFile(path, data, inputs, outputs)


# protobuf cannot serialize a message of 2 GB or more, and the harness hands every model around as bytes.
PROTOBUF_LIMIT = 2**31 - 1
TRAINING_DOMAINS = ("ai.onnx.preview.training", "ai.onnx.training")


def _with_external_data(model: onnx.ModelProto, path: Path, spec_file: Path, field: str) -> bool:
    """Load the tensors `model` keeps in external data files, from the model's own folder (never the working
    directory), into the model; False where it has none. SpecError naming the missing file, or the size over 2 GB."""
    from onnx.external_data_helper import ExternalDataInfo, _get_all_tensors, uses_external_data

    external = [tensor for tensor in _get_all_tensors(model) if uses_external_data(tensor)]
    if not external:
        return False
    folder = path.parent.resolve()
    total = model.ByteSize()
    for tensor in external:
        info = ExternalDataInfo(tensor)
        location = (folder / info.location).resolve()
        if not location.is_relative_to(folder):
            raise SpecError(
                spec_file,
                field,
                f"{path} names the external data file {info.location}, which is outside the model's folder {folder}; "
                "keep external data files beside the model (onnx.save(..., save_as_external_data=True, "
                'location="weights.data"))',
            )
        if not location.is_file():
            raise SpecError(
                spec_file,
                field,
                f"{path} keeps tensor '{tensor.name}' in the external data file {location}, which does not exist; "
                "copy the data file beside the model (it is saved with it: onnx.save(..., save_as_external_data=True))",
            )
        total += info.length if info.length else location.stat().st_size - (info.offset or 0)
    if total > PROTOBUF_LIMIT:
        raise SpecError(
            spec_file,
            field,
            f"{path} with its external data is {total / 2**30:.1f} GB; the harness keeps a model in memory as one "
            "serialized protobuf, which cannot reach 2 GB: models over 2 GB are not supported yet; test a smaller "
            "export of the model (fewer layers, or weights shared)",
        )
    from onnx.external_data_helper import load_external_data_for_model

    load_external_data_for_model(model, str(folder))
    return True


def _refuse_training_domains(model: onnx.ModelProto, path: Path, spec_file: Path, field: str) -> None:
    used = sorted({f"{node.op_type} ({node.domain})" for node in model.graph.node if node.domain in TRAINING_DOMAINS})
    if used:
        raise SpecError(
            spec_file,
            field,
            f"{path} uses {', '.join(used)}: operators of a training-only domain, which no inference backend runs; "
            "export the inference graph (without gradient or optimizer operators)",
        )


def unsupported_type(value: onnx.ValueInfoProto) -> str | None:
    """Why the harness cannot feed or compare a graph input or output of this type (strings, sequences, maps,
    optionals, sparse or complex tensors), or None for a numeric tensor."""
    from onnx import TensorProto

    kind = value.type.WhichOneof("value")
    if kind != "tensor_type":
        return f"a {(kind or 'untyped value').removesuffix('_type')} (not a tensor)"
    elem_type = value.type.tensor_type.elem_type
    if elem_type in (TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.BOOL) or elem_type in (
        TensorProto.INT8,
        TensorProto.INT16,
        TensorProto.INT32,
        TensorProto.INT64,
        TensorProto.UINT8,
        TensorProto.UINT16,
        TensorProto.UINT32,
        TensorProto.UINT64,
    ):
        return None
    return f"a {TensorProto.DataType.Name(elem_type).lower()} tensor"


def _io_values(model: onnx.ModelProto, *, inputs: bool) -> list[onnx.ValueInfoProto]:
    initializers = {initializer.name for initializer in model.graph.initializer}
    values = model.graph.input if inputs else model.graph.output
    return [value for value in values if value.name not in initializers]


def _tensors(model: onnx.ModelProto, *, inputs: bool) -> tuple[ModelTensor, ...]:
    return tuple(_tensor(value) for value in _io_values(model, inputs=inputs) if unsupported_type(value) is None)


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
