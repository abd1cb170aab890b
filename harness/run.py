"""The run step: hand inputs to an engine the way TensorRT demands it, whatever the backend.

Shapes are checked against the engine's optimization profile before anything executes (TensorRT
refuses them too, and a backend without profiles must not silently accept them), and the outputs
must be exactly the ones the case declares.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from harness.backends import Engine
from harness.case import Case, check_shapes_in_profile
from harness.errors import OutputMismatchError


def run_engine(
    case: Case, profile_index: int, engine: Engine, inputs: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    check_shapes_in_profile(case, profile_index, {name: array.shape for name, array in inputs.items()})
    outputs = engine.infer(inputs)
    expected = {spec.name for spec in case.outputs}
    if set(outputs) != expected:
        raise OutputMismatchError(
            case.name,
            f"the engine produced outputs {sorted(outputs)} but the case declares {sorted(expected)}; "
            "make the case's outputs match the model's graph outputs",
        )
    return outputs
