"""The check of the node names given to --keep-fp32, against the case's float32 model.

--keep-fp32 takes node names (NodeProto.name), because that is what onnxconverter-common's node_block_list
matches. Tensor names are the likelier mistake: localization reports a layer by its output tensor, and ONNX
does not require node names, so a case built with onnx.helper.make_node may have none. The error says which
of the two a wrong name is.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from harness.errors import CaseDefinitionError

if TYPE_CHECKING:
    import onnx

EXAMPLES = 5  # node names quoted in the fix


def check_node_names(
    model: onnx.ModelProto, names: Sequence[str], *, case_name: str, source: str = "--keep-fp32"
) -> None:
    """Raise CaseDefinitionError when any of `names` is not the name of a node of `model` (node_name_problem)."""
    problem = node_name_problem(model, names, source)
    if problem is not None:
        raise CaseDefinitionError(case_name, f"{source}: {problem}")


def node_name_problem(model: onnx.ModelProto, names: Sequence[str], source: str) -> str | None:
    """What is wrong when any of `names` is not the name of a node of `model`, saying for each what it is instead
    (a tensor's name, a near miss of a node name) and how to write `source` (the option, or the case's or spec's
    keep_fp32 field); None when every name is a node's."""
    nodes = [node for node in model.graph.node if node.name]
    known = {node.name for node in nodes}
    unknown = [name for name in names if name not in known]
    if not unknown:
        return None
    producers = {tensor: node for node in model.graph.node for tensor in node.output if tensor}
    problems = [_problem(name, producers.get(name), sorted(known)) for name in unknown]
    if nodes:
        examples = ", ".join(f"'{node.name}'" for node in nodes[:EXAMPLES])
        fix = f"{source} takes node names (NodeProto.name) of the case's float32 model, e.g. {examples}"
    else:
        fix = (
            f"{source} takes node names (NodeProto.name) of the case's float32 model, and none of its "
            f"{len(model.graph.node)} nodes has a name: name them in the case's onnx_model "
            "(onnx.helper.make_node(..., name=...))"
        )
    return f"{'; '.join(problems)}; {fix}"


def _problem(name: str, producer: onnx.NodeProto | None, known: list[str]) -> str:
    if producer is not None:
        node = f"node '{producer.name}'" if producer.name else "an unnamed node"
        return f"'{name}' is the output tensor of {node} ({producer.op_type}), not a node name"
    close = difflib.get_close_matches(name, known)
    hint = f" (close: {', '.join(repr(match) for match in close)})" if close else ""
    return f"'{name}' is not a node name{hint}"
