"""`python -m harness init model.onnx`'s text: a commented spec made from the model itself."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from harness.case import Precision
from harness.spec.inputs import DEFAULT_FLOAT
from harness.spec.load import default_name, dim_names, toml_key
from harness.spec.model import ModelTensor, read_model

BATCH_GUESS = (1, 1, 8)  # a dynamic first dimension: usually the batch
OTHER_GUESS = (1, 32, 128)  # any other dynamic dimension (a sequence, an image side)


def skeleton(model: Path, spec_dir: Path | None = None) -> str:
    """A spec for `model`, to be saved in `spec_dir` (default: beside the model; paths in a spec are relative to
    the spec file): its inputs with dtypes and dims as the model names them, a guessed profile, its outputs and
    every precision; SpecError for a model that is not valid ONNX."""
    facts = read_model(model, model)
    model_path = Path(os.path.relpath(model.resolve(), (spec_dir or model.parent).resolve())).as_posix()
    lines = [
        f"# trt-harness spec for {model.name}, made from the model (python -m harness init). Check every value,",
        "# then run the matrix:  pytest --harness-spec <this file>   (docs/spec.md)",
        "",
        "[[case]]",
        f"name = {json.dumps(default_name(model.stem))}",
        f"model = {json.dumps(model_path)}  # relative to this file",
        "# The harness derives every precision from the float32 model; drop those you do not ship.",
        f"precisions = {json.dumps([p.value for p in Precision])}",
        "# Checked against ONNX Runtime at float32 on this model (its outputs: "
        + ", ".join(f"{t.name} {t.dtype} {_shown(t)}" for t in facts.outputs)
        + ")",
        f"outputs = {json.dumps([t.name for t in facts.outputs])}",
        *_integer_output_note(facts.outputs),
        "# latency_threshold = 0.10    # the gate's slowdown threshold for this case (default: the backend's)",
        '# keep_fp32 = ["node_name"]   # nodes kept float32 in the fp16/bf16/int8 models',
    ]
    for tensor in facts.inputs:
        lines += ["", *_input_lines(tensor)]
    dynamic = _dynamic_dims(facts.inputs)
    if dynamic:
        lines += [
            "",
            "[[case.profile]]  # one table per optimization profile",
            "# A GUESS (the model fixes only its static dims): [min, opt, max] per dynamic dimension; set the",
            "# range your deployment really sees.",
        ]
        lines += [f"{toml_key(dim)} = {list(guess)}" for dim, guess in dynamic.items()]
    lines += [
        "",
        "# Tolerances beyond the defaults need a reason (docs/checks.md, Accuracy), e.g.:",
        "# [case.tolerance.fp16]",
        f"# {toml_key(facts.outputs[0].name)} = "
        + '{ mean_rel = 2e-3, justification = "measured: worst 1.5e-3 over 200 seeds" }',
    ]
    return "\n".join(lines) + "\n"


def _shown(tensor: ModelTensor) -> str:
    return "[" + ", ".join(str(dim) for dim in dim_names(tensor)) + "]"


def _input_lines(tensor: ModelTensor) -> list[str]:
    lines = [f"[case.inputs.{toml_key(tensor.name)}]  # {tensor.dtype} {_shown(tensor)}"]
    unnamed = [axis for axis, dim in enumerate(tensor.shape) if dim is None]
    if unnamed:
        lines.append(
            f"shape = {json.dumps(list(dim_names(tensor)))}  # the model leaves dim {', '.join(map(str, unnamed))} "
            "dynamic but unnamed: the name is made up; rename it, and give a dim shared with another input one name"
        )
    dtype = np.dtype(tensor.dtype)
    if np.issubdtype(dtype, np.floating):
        lines.append(f'normal = {list(DEFAULT_FLOAT)}  # [mean, std]; or uniform = [low, high], or file = "x.npy"')
    elif dtype == np.bool_:
        lines.append("integers = [0, 1]  # a boolean input: False or True")
    else:
        lines.append("integers = [0, 9]  # a GUESS, inclusive: set the valid range (token ids, indices, classes)")
    return lines


def _dynamic_dims(inputs: tuple[ModelTensor, ...]) -> dict[str, tuple[int, int, int]]:
    guesses: dict[str, tuple[int, int, int]] = {}
    for tensor in inputs:
        for axis, dim in enumerate(dim_names(tensor)):
            if isinstance(dim, str):
                guesses.setdefault(dim, BATCH_GUESS if axis == 0 else OTHER_GUESS)
    return guesses


def _integer_output_note(outputs: tuple[ModelTensor, ...]) -> list[str]:
    """Integer outputs are checked exactly, a label at reduced precision exempt only where the reference's scores are
    within the precision's error of each other (docs/checks.md, Accuracy)."""
    integers = [t.name for t in outputs if not np.issubdtype(np.dtype(t.dtype), np.floating)]
    if not integers:
        return []
    return [
        f"# {', '.join(integers)}: integer, so it must match exactly; an argmax/topk label at fp16/bf16/int8 may",
        "# differ only where the reference's top-1/top-2 margin is inside the precision's error on the scores",
        "# (the verdict counts those): keep it in outputs.",
    ]
