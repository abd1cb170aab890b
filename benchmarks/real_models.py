"""Nine real architectures, runnable: the `light_*` models ONNX ships, with seeded random weights.

The ONNX package's backend test data holds nine classic classifiers (AlexNet, DenseNet-121, Inception v1/v2,
ResNet-50, ShuffleNet, SqueezeNet, VGG-19, ZFNet-512) as `onnx/backend/test/data/light/light_<name>.onnx`: IR 3,
opset 9, every weight stripped to a `ConstantOfShape` node (or a constant-filled initializer). `float32_model(name)`
puts back a seeded random weight of the same shape, scaled by the role the tensor plays so that activations stay
finite and O(1) through the whole depth:
  - a Conv / ConvTranspose / Gemm / MatMul weight: He normal, std sqrt(2 / fan_in) (fan_in over the input
    channels of its group and the kernel; for Gemm the contracted dimension, transB read);
  - a bias (Conv/Gemm input 2 or 3), an additive constant (Add/Sum, possibly through Unsqueeze): N(0, 0.02);
  - BatchNormalization: scale 1 + N(0, 0.05), bias N(0, 0.02), mean N(0, 0.02), variance 1 + |N(0, 0.05)|, except
    the BatchNormalization ending a residual branch (its output feeds a Sum/Add with another activation), whose
    scale is 0.3 + N(0, 0.02): each block then adds a tenth of its input's variance instead of doubling it, which
    is what zero-initialized residual scales do in trained ResNets (ResNet-50's 16 blocks would grow std 256x);
  - a multiplicative constant (Mul, possibly through Unsqueeze: DenseNet's Caffe2 batch norms): 1 + N(0, 0.05);
  - anything else: N(0, 0.02).
Fan-in scaling alone still compounds over the depth, so a data-driven finishing step (LSUV-like) runs the model
once on a seeded image and rescales each Conv/Gemm to an RMS gain of sqrt(2), then the logits layer to a standard
deviation of 2: activations then stay between ~0.06 and ~13 RMS through every model (ResNet-50 the lowest,
ShuffleNet the highest), every output is finite, and the Softmax outputs peak at 4.5-15 % (entropy 4.6-5.3 nats
of ln 1000 = 6.9): neither uniform nor one-hot. The seeded models are cached under the temporary directory.
Integer tensors (Reshape's shapes) are kept. Then the initializers stop being graph inputs (weights_as_weights,
IR 4), so ONNX Runtime does not ask for them in the feed. `inputs(name, rng)` gives an image batch, uniform in
[0, 1) (ImageNet-sized, NCHW, the model's own fixed shape).

Usage (a check, prints each model's output statistics): python benchmarks/real_models.py
"""

from __future__ import annotations

import functools
import hashlib
import sys
import tempfile
import zlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from harness.atomic import write_atomically
from harness.case import Case, Precision, Profile, ReferenceKind, Shape, TensorSpec
from harness.precision.opset import weights_as_weights

NAMES = (
    "bvlc_alexnet",
    "densenet121",
    "inception_v1",
    "inception_v2",
    "resnet50",
    "shufflenet",
    "squeezenet",
    "vgg19",
    "zfnet512",
)
SEED = 20261203
_WEIGHTED = ("Conv", "ConvTranspose", "Gemm", "MatMul")
_PASS_THROUGH = ("Unsqueeze", "Reshape", "Identity", "Squeeze")


def light_path(name: str) -> Path:
    return Path(onnx.__file__).parent / "backend" / "test" / "data" / "light" / f"light_{name}.onnx"


@functools.cache
def _model_bytes(name: str) -> bytes:
    """Seeded once per machine: the finishing runs the model, which costs seconds for the large ones, so the
    result is kept under the temporary directory, keyed by this module's source and the ONNX version."""
    key = hashlib.sha256(Path(__file__).read_bytes() + onnx.__version__.encode()).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / "trt-harness-real-models" / f"{name}-{key}.onnx"
    if path.exists():
        return path.read_bytes()
    data = _seeded(onnx.load(str(light_path(name)))).SerializeToString()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, data)
    return data


def float32_model(name: str) -> onnx.ModelProto:
    """The light model `name` with seeded random float32 weights, at its own opset 9 (a fresh copy each call)."""
    return onnx.load_from_string(_model_bytes(name))


def input_shape(model: onnx.ModelProto) -> tuple[str, tuple[int, ...]]:
    """The one fed input's name and fixed shape."""
    weights = {tensor.name for tensor in model.graph.initializer}
    (value,) = [value for value in model.graph.input if value.name not in weights]
    return value.name, tuple(dim.dim_value for dim in value.type.tensor_type.shape.dim)


def inputs(model: onnx.ModelProto, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """An image batch in [0, 1) at the model's own input shape (1x3x224x224 for all nine)."""
    name, shape = input_shape(model)
    return {name: rng.random(shape, dtype=np.float32)}


def case(name: str) -> Case:
    """The seeded model as a harness Case: fixed shapes, images in [0, 1), ONNX Runtime's unoptimized float32
    run as the reference (as a spec case's), every precision but bf16 (ONNX Runtime has no bfloat16 Conv)."""
    model = float32_model(name)
    input_name, shape = input_shape(model)
    output = model.graph.output[0]
    out_shape = tuple(dim.dim_value for dim in output.type.tensor_type.shape.dim)

    def reference(feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        session = ort.InferenceSession(_model_bytes(name), options, providers=["CPUExecutionProvider"])
        (result,) = session.run([output.name], dict(feed))
        return {output.name: result.astype(np.float64)}

    def generate(shapes: Mapping[str, Shape], rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {input_name: rng.random(tuple(shapes[input_name]), dtype=np.float32)}

    return Case(
        name=name,
        inputs=(TensorSpec(input_name, "float32", shape),),
        outputs=(TensorSpec(output.name, "float32", out_shape),),
        profiles=(Profile({input_name: shape}, {input_name: shape}, {input_name: shape}),),
        onnx_model=lambda: float32_model(name),
        reference=reference,
        generate_inputs=generate,
        precisions=(Precision.FP32, Precision.FP16, Precision.INT8),
        reference_kind=ReferenceKind.ONNXRUNTIME_FP32,
    )


def _seeded(model: onnx.ModelProto) -> onnx.ModelProto:
    graph = model.graph
    shapes = {t.name: tuple(int(v) for v in numpy_helper.to_array(t)) for t in graph.initializer if t.data_type == 7}
    consumers: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
    producers: dict[str, onnx.NodeProto] = {}
    for node in graph.node:
        for index, name in enumerate(node.input):
            consumers.setdefault(name, []).append((node, index))
        for name in node.output:
            producers[name] = node
    weights: dict[str, np.ndarray] = {}
    kept_nodes = []
    for node in graph.node:
        if node.op_type == "ConstantOfShape" and node.input[0] in shapes:
            weights[node.output[0]] = np.zeros(shapes[node.input[0]], np.float32)  # shape only; filled below
        else:
            kept_nodes.append(node)
    for tensor in graph.initializer:
        if tensor.data_type == onnx.TensorProto.FLOAT:
            weights[tensor.name] = numpy_helper.to_array(tensor)
    values = {name: _draw(name, shape.shape, consumers, producers, weights, graph) for name, shape in weights.items()}
    used = {name for node in kept_nodes for name in node.input}
    seeded = onnx.ModelProto()
    seeded.CopyFrom(model)
    del seeded.graph.node[:]
    seeded.graph.node.extend(kept_nodes)
    others = [t for t in graph.initializer if t.name not in values and t.name in used]
    del seeded.graph.initializer[:]
    seeded.graph.initializer.extend(
        [*others, *(numpy_helper.from_array(value, name) for name, value in values.items() if name in used)]
    )
    # The shape tensors of the removed ConstantOfShape nodes were graph inputs too (IR 3): drop the unused.
    kept_inputs = [value for value in seeded.graph.input if value.name in used]
    del seeded.graph.input[:]
    seeded.graph.input.extend(kept_inputs)
    fixed = weights_as_weights(seeded)
    _normalize(fixed)
    onnx.checker.check_model(fixed)
    return fixed


def _normalize(model: onnx.ModelProto, passes: int = 1) -> None:
    """Data-driven finishing, in place, on one seeded image: each Conv/Gemm is rescaled to an RMS gain of sqrt(2)
    (He's, which the ReLU after it halves in energy) and the last one (the logits) to a standard deviation of
    LOGIT_STD. The fan-in scaling alone leaves gains that compound over the depth (ShuffleNet's grouped
    convolutions grew the activations 1e30-fold, ResNet-50's shrank 10-fold); one measuring pass, then the logits."""
    import onnxruntime as ort

    graph = model.graph
    stored = {tensor.name: tensor for tensor in graph.initializer}
    weighted = [n for n in graph.node if n.op_type in _WEIGHTED and _weight_initializer(n, stored, graph) is not None]
    last = weighted[-1]
    probes = sorted({n.input[0] for n in weighted} | {n.output[0] for n in weighted})
    feed = inputs(model, np.random.default_rng(SEED))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    for step in range(passes + 1):
        probe = onnx.ModelProto()
        probe.CopyFrom(model)
        probe.graph.output.extend([onnx.ValueInfoProto(name=name) for name in probes])
        session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
        seen = {name: value.astype(np.float64) for name, value in zip(probes, session.run(probes, feed), strict=True)}
        for node in weighted:
            out = seen[node.output[0]]
            if node is last:
                factor = LOGIT_STD / max(float(out.std()), 1e-12) if step == passes else 1.0
            elif step < passes:
                gain = _rms(out) / max(_rms(seen[node.input[0]]), 1e-12)
                factor = float(np.sqrt(2.0) / max(gain, 1e-12))
            else:
                factor = 1.0
            weight = _weight_initializer(node, stored, graph)
            assert weight is not None
            _assign(weight, numpy_helper.to_array(weight) * factor)
            if len(node.input) > 2 and node.input[2] in stored:
                _assign(stored[node.input[2]], numpy_helper.to_array(stored[node.input[2]]) * factor)


def _rms(array: np.ndarray) -> float:
    return float(np.sqrt(np.mean(array**2)))


LOGIT_STD = 2.0  # softmax over 1000 classes then tops out at a few percent to a few tens: not degenerate


def _weight_initializer(
    node: onnx.NodeProto, stored: dict[str, onnx.TensorProto], graph: onnx.GraphProto
) -> onnx.TensorProto | None:
    """The initializer holding a weighted node's weight, looking through a Reshape of it (Inception's classifier)."""
    name = node.input[1]
    for producer in graph.node:
        if name in producer.output and producer.op_type in _PASS_THROUGH:
            name = producer.input[0]
    return stored.get(name)


def _assign(tensor: onnx.TensorProto, value: np.ndarray) -> None:
    tensor.CopyFrom(numpy_helper.from_array(np.asarray(value, np.float32).reshape(tuple(tensor.dims)), tensor.name))


def _rng(name: str) -> np.random.Generator:
    return np.random.default_rng([SEED, zlib.crc32(name.encode())])


def _draw(
    name: str,
    shape: tuple[int, ...],
    consumers: dict[str, list[tuple[onnx.NodeProto, int]]],
    producers: dict[str, onnx.NodeProto],
    weights: dict[str, np.ndarray],
    graph: onnx.GraphProto,
) -> np.ndarray:
    rng = _rng(name)
    role, node, index = _role(name, consumers)
    noise = rng.standard_normal(shape)
    if role in _WEIGHTED and index == 1:
        fan_in = _fan_in(node, shape)
        value = noise * np.sqrt(2.0 / fan_in)
    elif role == "BatchNormalization":
        if index == 1:
            residual = _ends_residual_branch(node, consumers, weights)
            value = (0.3 + 0.02 * noise) if residual else (1.0 + 0.05 * noise)
        elif index == 4:
            value = 1.0 + np.abs(0.05 * noise)
        else:
            value = 0.02 * noise
    elif role == "Mul":
        value = 1.0 + 0.05 * noise
    else:  # biases, additive constants, anything else
        value = 0.02 * noise
    return value.astype(np.float32)


def _role(name: str, consumers: dict[str, list[tuple[onnx.NodeProto, int]]]) -> tuple[str, onnx.NodeProto | None, int]:
    """The op that consumes the tensor (looking through Unsqueeze/Reshape), the node and the input index."""
    for _ in range(4):
        uses = consumers.get(name, [])
        if not uses:
            return "", None, -1
        node, index = uses[0]
        if node.op_type not in _PASS_THROUGH:
            return node.op_type, node, index
        name = node.output[0]
    return "", None, -1


def _fan_in(node: onnx.NodeProto | None, shape: tuple[int, ...]) -> int:
    if node is None:
        return int(np.prod(shape[1:])) or 1
    if node.op_type in ("Conv", "ConvTranspose"):
        return int(np.prod(shape[1:]))  # (out, in / group, kh, kw): the group's input channels times the kernel
    if node.op_type == "Gemm":
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return int(shape[1] if trans_b else shape[0])
    return int(shape[0])  # MatMul: (K, N)


def _ends_residual_branch(
    node: onnx.NodeProto | None, consumers: dict[str, list[tuple[onnx.NodeProto, int]]], weights: dict[str, np.ndarray]
) -> bool:
    """Whether a BatchNormalization's output is summed with another activation (a ResNet block's last BN)."""
    if node is None:
        return False
    for user, _ in consumers.get(node.output[0], []):
        if user.op_type in ("Sum", "Add") and all(name not in weights for name in user.input):
            return True
    return False


def main() -> int:
    """Each seeded model's output on a fresh image: finite, and (where it ends in Softmax) neither one-hot nor
    uniform. Exits 1 when a model is not."""
    import onnxruntime as ort

    failed = []
    for name in NAMES:
        model = float32_model(name)
        softmax = model.graph.node[-1].op_type == "Softmax"
        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        (output,) = session.run(None, inputs(model, np.random.default_rng(0)))
        flat = output.reshape(-1).astype(np.float64)
        finite = bool(np.isfinite(flat).all())
        if softmax:
            entropy = float(-(flat * np.log(np.maximum(flat, 1e-30))).sum())
            degenerate = flat.max() > 0.9 or entropy > 0.99 * np.log(flat.size)
            detail = f"max probability {flat.max():.3g}, entropy {entropy:.2f} of {np.log(flat.size):.2f} nats"
        else:
            degenerate = float(flat.std()) < 1e-3
            detail = f"logits std {flat.std():.3g}"
        print(f"{name:13s} {'finite' if finite else 'NOT FINITE'}, {detail}{' DEGENERATE' if degenerate else ''}")
        if not finite or degenerate:
            failed.append(name)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
