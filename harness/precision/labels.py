"""Integer outputs at reduced precision: a label (an ArgMax, a TopK index) may differ from the reference only where
the reference's own scores leave it to rounding.

An integer output made by ArgMax/ArgMin/TopK over float scores flips wherever two scores are closer than the
precision's error on them. Such a label is exempt when the reference's margin around it (top-1 minus top-2 for an
ArgMax; for TopK's j-th index, the smaller of its gaps to the (j-1)-th and (j+1)-th scores) is under the bound

    B = 2 · E,   E = max( max|scores_derived − scores_fp32| measured on these inputs,
                          the precision's mean relative tolerance × max|scores_fp32| )

Each of the two scores can move by up to E, so a gap under 2·E can close. E is measured, not guessed: on the
engine's own scores where the case outputs them, and on the derived model's scores run on unoptimized ONNX
Runtime (the localizer's run). The floor (the precision's tolerance times the scores' scale) covers an engine whose
kernels round more than that run does (a GPU's fp16 where ONNX Runtime computes float32 behind casts). Every
other label must match exactly; fp32 keeps exact matching with no exemption.

The scores are traced back from the integer output through the ONNX graph of the case's float32 model (through
Cast, Identity, Reshape, Squeeze, Unsqueeze, Flatten) to the ArgMax/ArgMin/TopK node and its float input; the
reference scores are the reference's own output of that name where it returns one, else the float32 model run on
unoptimized ONNX Runtime with that tensor exposed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from harness.case import DEFAULT_MEAN_REL, Precision
from harness.compare import OutputErrors

if TYPE_CHECKING:
    import onnx

# Ops an integer label passes through unchanged, element order kept (C order), from its ArgMax to the output.
PASS_THROUGH = frozenset({"Cast", "Identity", "Reshape", "Squeeze", "Unsqueeze", "Flatten"})


@dataclass(frozen=True)
class LabelSource:
    """The node that chose the label and the float scores it chose from."""

    node: str
    op_type: str  # ArgMax, ArgMin or TopK
    scores: str  # the float tensor it reads
    axis: int
    k: int  # 1 for ArgMax/ArgMin
    largest: bool  # False for ArgMin and TopK(largest=0)


def label_source(model: onnx.ModelProto, output: str) -> LabelSource | None:
    """The ArgMax/ArgMin/TopK (indices) node `output` comes from, through label-preserving ops; None where it comes
    from anything else (an integer output that is no label, or a label computed some other way)."""
    from onnx import helper, numpy_helper

    producers = {tensor: (node, index) for node in model.graph.node for index, tensor in enumerate(node.output)}
    tensor = output
    for _ in range(len(model.graph.node) + 1):
        found = producers.get(tensor)
        if found is None:
            return None
        node, index = found
        attributes = {attribute.name: helper.get_attribute_value(attribute) for attribute in node.attribute}
        if node.op_type in ("ArgMax", "ArgMin"):
            axis = int(attributes.get("axis", 0))
            return LabelSource(node.name, node.op_type, node.input[0], axis, 1, node.op_type == "ArgMax")
        if node.op_type == "TopK" and index == 1:
            weights = {tensor.name: tensor for tensor in model.graph.initializer}
            k_tensor = weights.get(node.input[1]) if len(node.input) > 1 else None
            if k_tensor is None:  # k from a computed tensor (or the opset-1 attribute)
                if "k" not in attributes:
                    return None
                k = int(attributes["k"])
            else:
                k = int(numpy_helper.to_array(k_tensor).reshape(-1)[0])
            largest = bool(attributes.get("largest", 1))
            return LabelSource(node.name, "TopK", node.input[0], int(attributes.get("axis", -1)), k, largest)
        if node.op_type not in PASS_THROUGH:
            return None
        tensor = node.input[0]
    return None


def margins(scores: np.ndarray, source: LabelSource, label_shape: tuple[int, ...]) -> np.ndarray | None:
    """Per label element, the reference's margin around the score it picked (module docstring), in the label's
    shape; None where the label's element count is not the scores' count of picks (a label reshaped past them)."""
    values = np.asarray(scores, dtype=np.float64)
    values = values if source.largest else -values
    axis = source.axis % values.ndim
    moved = np.moveaxis(values, axis, -1)
    ranked = -np.sort(-moved, axis=-1)[..., : source.k + 1]  # best first
    if ranked.shape[-1] == source.k:  # as many picks as scores: the last pick has no next score
        ranked = np.concatenate([ranked, np.full(ranked.shape[:-1] + (1,), -np.inf)], axis=-1)
    gaps = ranked[..., :-1] - ranked[..., 1:]  # gap below each pick
    above = np.concatenate([np.full(gaps.shape[:-1] + (1,), np.inf), gaps[..., :-1]], axis=-1)
    margin: np.ndarray = np.moveaxis(np.minimum(gaps, above), -1, axis)
    if margin.size != int(np.prod(label_shape)):
        return None
    return margin.reshape(label_shape)


@dataclass(frozen=True)
class LabelExemption:
    """How an integer output's differences were judged: how many differ, how many of those are exempt."""

    total: int
    differ: int
    exempt: int
    bound: float  # B = 2·E
    score_error: float  # E
    scores: str  # the float tensor the labels were chosen from
    measured_on: str  # where E was measured

    @property
    def note(self) -> str:
        """The verdict's words: "3 of 64 labels differ, all where the reference's top-1/top-2 margin ...: exempt"."""
        where = f"the reference's top-1/top-2 margin on '{self.scores}' < bound {self.bound:.3g}"
        how = f"bound = 2 × the scores' error {self.score_error:.3g}, {self.measured_on}"
        if self.exempt == self.differ:
            return f"{self.differ} of {self.total} labels differ, all where {where}: exempt ({how})"
        return (
            f"{self.differ} of {self.total} labels differ: {self.exempt} where {where} (exempt; {how}), "
            f"{self.differ - self.exempt} elsewhere, which must match"
        )

    def to_json(self) -> dict[str, object]:
        return {
            "total": self.total,
            "differ": self.differ,
            "exempt": self.exempt,
            "bound": self.bound,
            "score_error": self.score_error,
            "scores": self.scores,
            "measured_on": self.measured_on,
            "note": self.note,
        }


def judge_labels(
    labels: np.ndarray,
    reference_labels: np.ndarray,
    reference_scores: np.ndarray,
    source: LabelSource,
    score_errors: Mapping[str, float],
    floor: float,
) -> LabelExemption | None:
    """The exemption of `labels` against `reference_labels`: E is the largest of `score_errors` (where measured ->
    max abs error of the scores) and `floor` (the precision's tolerance × the scores' scale). None where the label
    cannot be matched to the scores' picks element for element."""
    margin = margins(reference_scores, source, tuple(labels.shape))
    if margin is None:
        return None
    scale = float(np.max(np.abs(reference_scores), initial=0.0))
    measured = max(score_errors.values(), default=0.0)
    error = max(measured, floor * scale)
    if score_errors and measured >= floor * scale:
        measured_on = "measured on " + " and ".join(score_errors)
    else:
        measured_on = "the precision's tolerance × max|scores|, above what was measured"
    differ = np.asarray(labels) != np.asarray(reference_labels)
    exempt = differ & (margin < 2 * error)
    return LabelExemption(
        total=int(labels.size),
        differ=int(differ.sum()),
        exempt=int(exempt.sum()),
        bound=2 * error,
        score_error=error,
        scores=source.scores,
        measured_on=measured_on,
    )


def run_tensor(model: onnx.ModelProto, inputs: Mapping[str, np.ndarray], tensor: str) -> np.ndarray | None:
    """`tensor` of `model` on these inputs, from unoptimized ONNX Runtime with it exposed (the localizer's run);
    None where it is not a float tensor ONNX Runtime can hand back (bfloat16)."""
    from harness.precision.localize import exposed_model, run_on_onnxruntime

    if tensor in inputs and tensor in {value.name for value in model.graph.input}:
        return np.asarray(inputs[tensor])  # the label is chosen straight from a graph input
    exposed, produced = exposed_model(model)
    if tensor not in produced and tensor not in {value.name for value in model.graph.output}:
        return None
    weights = {weight.name for weight in model.graph.initializer}
    feeds = {value.name: inputs[value.name] for value in model.graph.input if value.name not in weights}
    return np.asarray(run_on_onnxruntime(exposed, feeds, [tensor])[tensor])


def exempt_labels(
    errors: Sequence[OutputErrors],
    precision: Precision,
    float_model: onnx.ModelProto,
    derived: onnx.ModelProto,
    inputs: Mapping[str, np.ndarray],
    outputs: Mapping[str, np.ndarray],
    reference: Mapping[str, np.ndarray],
) -> list[OutputErrors]:
    """`errors` with every integer output that failed only by labels inside the bound judged again (module
    docstring): its failure dropped where every differing label is exempt, else said with the counts; the
    exemption recorded either way. fp32, float outputs and outputs that match are returned as they are."""
    judged = []
    for entry in errors:
        exemption = None
        if precision is not Precision.FP32 and entry.failure is not None and entry.tolerance.exact:
            exemption = _exemption(entry.output, precision, float_model, derived, inputs, outputs, reference)
        if exemption is None or exemption.differ == 0:
            judged.append(entry)
            continue
        failure = None if exemption.exempt == exemption.differ else exemption.note
        judged.append(replace(entry, failure=failure, exemption=exemption.to_json()))
    return judged


def _exemption(
    output: str,
    precision: Precision,
    float_model: onnx.ModelProto,
    derived: onnx.ModelProto,
    inputs: Mapping[str, np.ndarray],
    outputs: Mapping[str, np.ndarray],
    reference: Mapping[str, np.ndarray],
) -> LabelExemption | None:
    from harness.precision.localize import dequantized_names

    source = label_source(float_model, output)
    if source is None or output not in reference:
        return None
    given = reference.get(source.scores)
    reference_scores = (
        np.asarray(given, np.float64) if given is not None else run_tensor(float_model, inputs, source.scores)
    )
    if reference_scores is None:
        return None
    score_errors: dict[str, float] = {}
    if source.scores in outputs and np.shape(outputs[source.scores]) == reference_scores.shape:
        score_errors["the engine's own scores"] = _max_abs(outputs[source.scores], reference_scores)
    try:
        derived_scores = run_tensor(derived, inputs, dequantized_names(derived).get(source.scores, source.scores))
    except Exception:  # noqa: BLE001 - a model ONNX Runtime's CPU provider cannot run (bfloat16): not measured there
        derived_scores = None
    if derived_scores is not None and derived_scores.shape == reference_scores.shape:
        score_errors["the derived model on unoptimized ONNX Runtime"] = _max_abs(derived_scores, reference_scores)
    floor = DEFAULT_MEAN_REL[precision]
    return judge_labels(
        np.asarray(outputs[output]), np.asarray(reference[output]), reference_scores, source, score_errors, floor
    )


def _max_abs(values: np.ndarray, reference: np.ndarray) -> float:
    difference = np.abs(np.asarray(values, np.float64) - reference)
    finite = difference[np.isfinite(difference)]
    return float(finite.max(initial=0.0)) if finite.size == difference.size else float("inf")
