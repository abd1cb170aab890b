"""IProfiler, the double's tactics, and the layer times it reports: a cost model, not a measurement.

TensorRT's builder times candidate kernels (tactics) per layer and keeps the fastest; the engine inspector names
the chosen one at DETAILED verbosity ("TacticName" for layers of its kernel libraries, "TacticValue" for every
layer), and an IProfiler set on the execution context is told each layer's time after every execution. The double
has one numpy implementation per layer type, so each layer has one tactic, named for what it is (never a name
of a real TensorRT kernel), and the time it reports comes from a deterministic cost model (layer_time_ms), never
from a clock: a profile of the double's engine says how the double's engine is built, not how fast anything ran.

The test-only knob `_faults.slower_tactic` (strict.Faults) names a layer for which the builder picks the slower
"unrolled" tactic, as a TensorRT upgrade may pick a slower kernel for one layer: the plan records it, the
inspector names it and the profiler reports the layer SLOW_TACTIC_FACTOR times as long.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

from .graph import Node
from .layers import DISPLAY_NAMES, Shape
from .strict import StrictObject

# Layer types whose kernels come from TensorRT's kernel libraries: the inspector prints a TacticName for these.
NAMED_TACTICS = frozenset({"CONVOLUTION", "MATRIX_MULTIPLY"})
SLOW_TACTIC_FACTOR = 4.0  # how many times the modelled work of the slower tactic is the chosen one's
_LAUNCH_US = 2.0  # modelled fixed cost of running a layer
_OPS_PER_US = 1000.0  # modelled elements moved or multiply-adds done per microsecond


class IProfiler(StrictObject):
    """Subclass it, call IProfiler.__init__(self) from __init__, and override report_layer_time(layer_name, ms):
    an execution context whose `profiler` it is reports every layer once per execute_async_v3."""

    def __init__(self) -> None:
        self._initialized = True

    def report_layer_time(self, layer_name: str, ms: float) -> None:
        raise RuntimeError('Tried to call pure virtual function "IProfiler::reportLayerTime"')


def tactic_name(node: Node, slow: bool) -> str:
    """The tactic the double's builder picked for `node`: its one numpy implementation, or the slower one."""
    kind = DISPLAY_NAMES[node.kind].replace(" ", "").lower()
    return f"numpy_double_{kind}_{'unrolled' if slow else 'direct'}"


def tactic_value(name: str) -> str:
    """A tactic's 64-bit id as the inspector prints it ("0x..."): here a digest of its name."""
    return "0x" + hashlib.sha256(name.encode()).hexdigest()[:16]


def layer_time_ms(node: Node, shapes: Sequence[Shape], slow: bool) -> float:
    """The modelled time of one execution of `node` at these tensor shapes: a fixed launch cost, plus one unit of
    work per element read or written and per multiply-add (convolution, matrix multiply)."""
    moved = sum(math.prod(shapes[i]) for i in (*node.inputs, *node.outputs))
    work = moved + _multiply_adds(node, shapes)
    factor = SLOW_TACTIC_FACTOR if slow else 1.0
    return (_LAUNCH_US + factor * work / _OPS_PER_US) / 1000.0


def _multiply_adds(node: Node, shapes: Sequence[Shape]) -> int:
    out_shape = shapes[node.outputs[0]]
    out = math.prod(out_shape)
    if node.kind == "CONVOLUTION":
        kh, kw = node.params["kernel_shape"]
        return out * shapes[node.inputs[0]][1] * kh * kw
    if node.kind == "MATRIX_MULTIPLY":
        # (…, M, K) x (…, K, N): M·N outputs of K multiply-adds each, which is the first operand's size times N.
        return math.prod(shapes[node.inputs[0]]) * (out_shape[-1] if out_shape else 1)
    return 0
