"""The precision transform of the network-definition workflow, so that a case writes its layers once.

A case's define_network(network, trt, precision) adds float32-shaped layers and calls three things:
`precision.enter(tensor)` on each float network input (a Cast to the compute type), `precision.leave(tensor)`
on each float output (a Cast back to FLOAT), and `precision.weights(array)` for every weight (the array in
the compute type, kept alive as TensorRT requires). That is the ONNX transform's policy (float32 I/O, casts
at the boundary, every weight and activation in between converted) for strongly typed networks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from harness.case import Precision


@dataclass
class NetworkPrecision:
    trt: ModuleType
    network: Any
    precision: Precision
    # TensorRT holds layer weights by reference until the engine is built, without copying them: the
    # arrays handed to the network must outlive define_network, so the helper keeps them.
    _kept: list[np.ndarray] = field(default_factory=list, repr=False)

    @property
    def dtype(self) -> np.dtype:
        """The element type of weights and activations: float32, float16 or bfloat16."""
        if self.precision is Precision.FP16:
            return np.dtype(np.float16)
        if self.precision is Precision.BF16:
            import ml_dtypes

            bfloat16: np.dtype = np.dtype(ml_dtypes.bfloat16)
            return bfloat16
        return np.dtype(np.float32)

    def _data_type(self) -> Any:
        names = {"float16": "HALF", "bfloat16": "BF16", "float32": "FLOAT"}
        return getattr(self.trt.DataType, names[self.dtype.name])

    def enter(self, tensor: Any) -> Any:
        """A float32 network input in the compute type."""
        if self.dtype == np.float32:
            return tensor
        return self.network.add_cast(tensor, self._data_type()).get_output(0)

    def leave(self, tensor: Any) -> Any:
        """A tensor in the compute type back in float32, for a network output."""
        if self.dtype == np.float32:
            return tensor
        return self.network.add_cast(tensor, self.trt.DataType.FLOAT).get_output(0)

    def weights(self, array: np.ndarray) -> Any:
        """`array` (float32) in the compute type, C-contiguous and kept alive; bfloat16 as trt.Weights, since
        TensorRT's numpy bridge has no bfloat16 (ml_dtypes) type."""
        converted = np.ascontiguousarray(np.asarray(array, dtype=np.float32).astype(self.dtype))
        self._kept.append(converted)
        if self.precision is not Precision.BF16:
            return converted
        return self.trt.Weights(self.trt.DataType.BF16, converted.ctypes.data, converted.size)
