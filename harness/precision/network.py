"""The precision transform of the network-definition workflow, so that a case writes its layers once.

A case's define_network(network, trt, precision) adds float32-shaped layers and calls:
- `precision.enter(tensor)` on each float network input: a Cast to the compute type (fp16/bf16), or at int8
  a Q/DQ pair with the input's calibrated scale;
- `precision.leave(tensor)` on each float output: a Cast back to FLOAT;
- `precision.weights(array)` for a weight: the array in the compute type, kept alive as TensorRT requires;
- `precision.convolution(...)` and `precision.constant(...)` for the weights int8 quantizes (per channel);
- `precision.activation(tensor, name)` on a layer's output: at int8 a Q/DQ pair with the scale calibrated for
  the ONNX tensor `name`, where the quantizer put one; a no-op at every other precision.
That is the ONNX transform's policy (float32 I/O, casts at the boundary, every weight and activation in
between converted; int8 with the very scales of the harness's Q/DQ model) for strongly typed networks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from harness.case import Precision
from harness.precision.table import Derivation, row

Scales = Mapping[str, "float | list[float]"]


@dataclass
class NetworkPrecision:
    trt: ModuleType
    network: Any
    precision: Precision
    scales: Scales = field(default_factory=dict)  # int8: the Q/DQ model's scales, by the float model's tensor names
    # TensorRT holds layer weights by reference until the engine is built, without copying them: the
    # arrays handed to the network must outlive define_network, so the helper keeps them.
    _kept: list[np.ndarray] = field(default_factory=list, repr=False)

    @property
    def dtype(self) -> np.dtype:
        """The element type of weights and activations: float32, float16 or bfloat16 (int8 computes between
        Q/DQ pairs on float32 tensors)."""
        name = row(self.precision).compute_dtype
        if hasattr(np, name):
            return np.dtype(name)
        import ml_dtypes  # numpy has no bfloat16: ml_dtypes' types are numpy dtypes

        reduced: np.dtype = np.dtype(getattr(ml_dtypes, name))
        return reduced

    @property
    def _quantizes(self) -> bool:
        return row(self.precision).derivation is Derivation.QUANTIZED

    def _data_type(self) -> Any:
        return getattr(self.trt.DataType, row(self.precision).tensorrt_type)

    def enter(self, tensor: Any) -> Any:
        """A float32 network input in the compute type (at int8: through Q/DQ with its own scale)."""
        if self._quantizes:
            return self.activation(tensor, tensor.name)
        if self.dtype == np.float32:
            return tensor
        return self.network.add_cast(tensor, self._data_type()).get_output(0)

    def leave(self, tensor: Any) -> Any:
        """A tensor in the compute type back in float32, for a network output."""
        if self.dtype == np.float32:
            return tensor
        return self.network.add_cast(tensor, self.trt.DataType.FLOAT).get_output(0)

    def weights(self, array: np.ndarray) -> Any:
        """`array` (float32) in the compute type, C-contiguous and kept alive; bfloat16 (an ml_dtypes type) as
        trt.Weights, since TensorRT's numpy bridge knows numpy's own types only."""
        converted = self._keep(np.asarray(array, dtype=np.float32).astype(self.dtype))
        if hasattr(np, self.dtype.name):
            return converted
        return self.trt.Weights(self._data_type(), converted.ctypes.data, converted.size)

    def activation(self, tensor: Any, name: str) -> Any:
        """At int8, `tensor` through a quantize/dequantize pair with the per-tensor scale calibrated for the
        float model's tensor `name`; unchanged where that tensor has no scale or the precision is not int8."""
        if not self._quantizes or name not in self.scales:
            return tensor
        return self._quantized(tensor, self.scales[name], axis=None)

    def constant(self, array: np.ndarray, name: str, axis: int) -> Any:
        """A weight as a tensor: add_constant of weights(array), and at int8 through Q/DQ with the per-channel
        scales of the float model's initializer `name` along `axis` (the output channels)."""
        tensor = self.network.add_constant(np.shape(array), self.weights(array)).get_output(0)
        if not self._quantizes or name not in self.scales:
            return tensor
        return self._quantized(tensor, self.scales[name], axis=axis)

    def convolution(self, x: Any, weight: np.ndarray, bias: np.ndarray, name: str) -> Any:
        """add_convolution_nd with the ONNX layout (out, in, kh, kw); at int8 the kernel is the Q/DQ'd constant
        of initializer `name` (per output channel), given as the layer's input 1, as TensorRT's parser does."""
        shape = np.shape(weight)
        if not self._quantizes or name not in self.scales:
            return self.network.add_convolution_nd(
                x, shape[0], shape[2:], kernel=self.weights(weight), bias=self.weights(bias)
            )
        kernel = self.constant(weight, name, axis=0)  # made first: the double takes only earlier tensors as inputs
        empty = self.trt.Weights(self.trt.DataType.FLOAT)
        layer = self.network.add_convolution_nd(x, shape[0], shape[2:], kernel=empty, bias=self.weights(bias))
        layer.set_input(1, kernel)
        return layer

    def _quantized(self, tensor: Any, scale: float | list[float], axis: int | None) -> Any:
        values = self._keep(np.asarray(scale, dtype=np.float32))
        scale_tensor = self.network.add_constant(values.shape, values).get_output(0)
        quantize = self.network.add_quantize(tensor, scale_tensor, self._data_type())
        dequantize = self.network.add_dequantize(quantize.get_output(0), scale_tensor, self.trt.DataType.FLOAT)
        if axis is not None:
            quantize.axis = dequantize.axis = axis
        return dequantize.get_output(0)

    def _keep(self, array: np.ndarray) -> np.ndarray:
        contiguous = np.ascontiguousarray(array)
        self._kept.append(contiguous)
        return contiguous
