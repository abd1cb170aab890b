"""The contexts a matrix test gets and the per-point fixtures that open them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np
import pytest

from harness import parallel
from harness.backends import Backend, BuildRequest, Engine
from harness.build import BuildRecord, EngineStore
from harness.case import DEFAULT_MEAN_REL, Precision, ReferenceKind, check_case
from harness.compare import OutputErrors
from harness.errors import BuildError, CaseDefinitionError, HarnessError, ModelRefusedError
from harness.gate import CostPolicy, GatePolicy, Resolution
from harness.matrix import Point
from harness.measure import MeasurePolicy
from harness.precision.convert import named_nodes
from harness.precision.derive import DerivedModel
from harness.precision.proof import EXPECTED, Proof, prove
from harness.precision.table import row
from harness.pytest_plugin.session import REFERENCE_MARK, STATE, HarnessState, point_of
from harness.results import terminal
from harness.results.record import TestRecord

if TYPE_CHECKING:
    from harness.precision.localize import Localization, Runner


@dataclass(frozen=True)
class PointContext:
    """What a matrix test gets: its point, the built engine, seeded inputs and its results record."""

    point: Point
    engine: Engine
    inputs: dict[str, np.ndarray]
    record: TestRecord
    measure_policy: MeasurePolicy
    state: HarnessState
    gate: GateContext

    def __repr__(self) -> str:  # pytest shows a failing test's arguments: the point, not every array and record
        return f"PointContext({self.point.id})"

    @property
    def fuzz_settings(self) -> Any:
        """Hypothesis settings for this session's fuzz tests (--hypothesis-profile, --fuzz-examples)."""
        from harness import fuzz  # Hypothesis is imported by the sessions that fuzz, not by every session

        config = self.state.config
        return fuzz.fuzz_settings(config.getoption("hypothesis_profile", None), self.state.settings.fuzz_examples)

    def prove_precision(self) -> Proof:
        """The per-layer precision the point runs (recorded) and why it does not hold its label (harness/precision)."""
        derived = self.state.store.derived(self.point.case, self.point.precision)
        proof = prove(derived, self.engine.layer_precisions())
        self.record.layers = proof.to_json()
        return proof

    def judge_labels(
        self,
        errors: list[OutputErrors],
        outputs: Mapping[str, np.ndarray],
        reference: Mapping[str, np.ndarray],
        inputs: Mapping[str, np.ndarray] | None = None,
    ) -> list[OutputErrors]:
        """`errors` with integer label outputs that differ judged again (harness/precision/labels.py): a label may
        differ only where the reference's top-1/top-2 margin is inside the precision's error on its scores.
        `inputs`: those the outputs were made from (default: the point's own)."""
        if self.point.precision is Precision.FP32 or not any(e.failure and e.tolerance.exact for e in errors):
            return errors
        import onnx

        from harness.precision.labels import exempt_labels

        point = self.point
        derived = onnx.load_from_string(self.state.store.model_bytes(point.case, point.precision))
        float_model = named_nodes(point.case.model())
        given = self.inputs if inputs is None else inputs
        return exempt_labels(errors, point.precision, float_model, derived, given, outputs, reference)

    def localize(self, engine_outputs: Mapping[str, np.ndarray] | None = None) -> tuple[Localization, str] | None:
        """The first layer of the derived model beyond the precision's tolerance against the float32 model
        (recorded), on the point's own backend where it builds ONNX models (a TensorRT engine with every
        tensor marked as an output), else on unoptimized ONNX Runtime, with where it ran; None at fp32/tf32,
        which derive nothing. `engine_outputs`, what the point's engine produced for these inputs, are checked
        against the localizer's own outputs: a failure of the engine's optimized kernels alone is said so."""
        point = self.point
        if point.precision not in EXPECTED:
            return None
        import onnx

        from harness.precision.localize import localize

        reference = named_nodes(point.case.model())
        candidate = onnx.load_from_string(self.state.store.model_bytes(point.case, point.precision))
        tolerance = min(
            (
                limit
                for spec in point.case.outputs
                if (limit := point.case.tolerance(point.precision, spec.name).mean_rel) is not None
            ),
            default=DEFAULT_MEAN_REL[point.precision],  # only integer outputs (a label): the precision's own limit
        )
        backend = self.state.backend(point.backend)
        runner, ran_on = (
            _localization_runner(self.state, backend, point) if not isinstance(backend, str) else (None, "")
        )
        engine = point.backend if isinstance(backend, str) else backend.name
        found = localize(reference, candidate, self.inputs, tolerance, runner, engine_outputs, engine)
        ran_on = ran_on or "onnxruntime, unoptimized"
        self.record.localization = {**asdict(found), "summary": found.summary(), "ran_on": ran_on}
        return found, ran_on


def _localization_runner(state: HarnessState, backend: Backend, point: Point) -> tuple[Runner | None, str]:
    """A runner that builds each exposed model with the point's backend, where the backend builds ONNX models
    in their own types (`builds_exposed_onnx`: TensorRT's strongly typed parser workflow); (None, "") means
    ONNX Runtime.

    The debug engine marks every tensor as an output, which keeps TensorRT from fusing across them: its
    numbers are those of layer-by-layer execution (as Polygraphy's `--trt-outputs mark all`), not of the
    fused engine under test."""
    builds_exposed_onnx = state.registry.descriptor(point.backend).builds_exposed_onnx
    if not builds_exposed_onnx or state.settings.backend_options.weak_typing:
        return None, ""

    def run(model: Any, feeds: Mapping[str, np.ndarray], names: list[str]) -> Mapping[str, np.ndarray]:
        # FP32: TF32 off; a strongly typed network takes its precision from the model's types.
        exposed = DerivedModel(Precision.FP32, model.SerializeToString())
        request = BuildRequest(point.case, Precision.FP32, point.profile_index, exposed)
        engine = backend.load(backend.build(request).data, request)
        try:
            outputs = engine.infer(feeds)
        finally:
            engine.close()
        return {name: outputs[name] for name in names}

    return run, f"{backend.name} {backend.version()}, every tensor marked as an output"


@dataclass(frozen=True)
class GateContext:
    """How this test is judged against its baseline."""

    policy: GatePolicy
    baseline: dict[str, object] | None  # this test's entry in the selected baseline file
    note: str  # which baseline, or why there is none
    enforce: bool  # False while updating baselines: verdicts are reported, not enforced
    require: bool  # a missing baseline fails
    costs: CostPolicy  # the cost thresholds: a build test's build time and plan size, a latency test's device memory
    resolution: Resolution | None = None  # the smallest threshold the baseline's machine supports, where recorded


@dataclass(frozen=True)
class PairContext:
    """What an agreement test gets: the point's context and the engine of the backend it must match."""

    context: PointContext
    twin: Engine
    twin_backend: str

    def __repr__(self) -> str:
        return f"PairContext({self.context.point.id} and {self.twin_backend})"


def pytest_runtest_setup(item: pytest.Item) -> None:
    settings = item.config.stash[STATE].settings
    point = point_of(item)
    if settings.build_only and point is not None and point.per_profile != "build":
        pytest.skip(terminal.BUILD_ONLY_REASON)
    if item.get_closest_marker("gpu") and not settings.gpu:
        pytest.skip("needs a GPU: run with --gpu (--build-only builds without running where the backend can)")


def _tautology(state: HarnessState, point: Point) -> str | None:
    """Why comparing this point with its case's reference would prove nothing: ONNX Runtime at float32 compared
    with ONNX Runtime at float32 on the same model."""
    library = state.registry.descriptor(point.backend).library
    same = point.case.reference_kind is ReferenceKind.ONNXRUNTIME_FP32 and point.precision is Precision.FP32
    if not (same and library == "onnxruntime"):
        return None
    return (
        f"tautological: {point.case.name}'s reference is ONNX Runtime at float32 on the same model "
        "(a spec case without stored outputs); its latency is still measured"
    )


@dataclass(frozen=True)
class BuildContext:
    """What the build test gets: a point of one profile, its backend and its results record."""

    point: Point
    backend: Backend
    record: TestRecord
    store: EngineStore
    gate: GateContext  # its build time and plan size against its baseline's

    def __repr__(self) -> str:
        return f"BuildContext({self.point.id})"

    def build(self) -> BuildRecord:
        """Build the point's engine, or find it in the engine cache; a failure fails with the builder's log."""
        point = self.point
        try:
            built = self.store.artifact(self.backend, point.case, point.precision, point.profile_index)
        except ModelRefusedError as error:
            _skip_refused(self.backend, point, error)
        except (BuildError, CaseDefinitionError) as error:  # the builder's log, or the case's own function
            failure = str(error)
        else:
            self.record.build = built.record
            self.record.derivation = _derivation(self.store, point)
            return built.record
        pytest.fail(failure, pytrace=False)  # outside the except block: the log once, without a chained trace


@pytest.fixture
def harness_build(request: pytest.FixtureRequest) -> BuildContext:
    """The point's backend, loaded; the build itself happens in the test, so that it fails, not errors."""
    point, state, record, backend = _open_point(request, _loaded_backend)
    return BuildContext(point, backend, record, state.store, _gate_context(state, point, backend, request.node.name))


@pytest.fixture
def harness_point(request: pytest.FixtureRequest) -> PointContext:
    """Builds (or reuses) the engine for this test's point and generates its seeded inputs."""
    return _point_context(request)


@pytest.fixture
def harness_fuzz(request: pytest.FixtureRequest) -> PointContext:
    """The engine of one optimization profile, shared by every shape Hypothesis draws in it."""
    return _point_context(request)


@pytest.fixture
def harness_pair(request: pytest.FixtureRequest) -> PairContext:
    """A point's engine and the engine of the backend it must agree with, on the same inputs."""
    context = _point_context(request)
    twin_id = context.state.registry.descriptor(context.point.backend).agrees_with
    assert twin_id is not None  # only such points are parametrized
    twin = _runnable_backend(context.state, twin_id, context.point)
    built = context.state.store.get(twin, context.point.case, context.point.precision, context.point.profile_index)
    context.record.compared_with = twin_id
    return PairContext(context, built.engine, twin_id)


def _open_point(
    request: pytest.FixtureRequest, loader: Callable[[HarnessState, str, Point], Backend]
) -> tuple[Point, HarnessState, TestRecord, Backend]:
    """The test's point, its results record, and its backend as `loader` gets it (or a skip saying why not)."""
    point: Point = request.param
    state = request.config.stash[STATE]
    record = state.results.open(request.node.name, request.node.nodeid, point)
    record.worker = parallel.worker_id(request.config)
    check_case(point.case)
    backend = loader(state, point.backend, point)
    record.backend_info = state.backend_info(point.backend, backend)
    return point, state, record, backend


def _point_context(request: pytest.FixtureRequest) -> PointContext:
    point, state, record, backend = _open_point(request, _runnable_backend)
    record.compared_with = point.case.reference_kind.value  # an agreement test names its twin backend instead
    if request.node.get_closest_marker(REFERENCE_MARK) and (reason := _tautology(state, point)):
        pytest.skip(reason)  # before the build: nothing to compare
    record.backend_info = {**record.backend_info, "clock": backend.clock}
    try:
        built = state.store.get(backend, point.case, point.precision, point.profile_index)
    except ModelRefusedError as error:
        _skip_refused(backend, point, error)
    record.build = built.record
    record.derivation = _derivation(state.store, point)
    shapes = point.case.profiles[point.profile_index].shapes(point.shape_point)
    rng = np.random.default_rng(point.case.input_seed(point.profile_index, point.shape_point, state.settings.seed))
    inputs = point.case.make_inputs(shapes, rng)
    record.input_shapes = {name: list(array.shape) for name, array in inputs.items()}
    gate = _gate_context(state, point, backend, request.node.name)
    # Only an explicit threshold travels with the record: `python -m harness compare` applies the
    # backend's default (recorded with it) or its own command-line thresholds to the rest.
    record.latency_threshold = point.case.latency_threshold or state.settings.gate.latency_threshold
    return PointContext(point, built.engine, inputs, record, state.settings.measure, state, gate)


def _skip_refused(backend: Backend, point: Point, error: ModelRefusedError) -> NoReturn:
    """A refusal (harness.errors.ModelRefusedError): the test is skipped with the model's reason, not failed."""
    pytest.skip(f"{backend.name} cannot run {point.case.name} at {point.precision.value}: {error}")


def _derivation(store: EngineStore, point: Point) -> dict[str, object]:
    """The results' `derivation`: how the point's model was derived, and where a spec case's ONNX Runtime reference
    ran an upgraded copy of the model (below ONNX Runtime's opset), what was converted."""
    derivation = store.derived(point.case, point.precision).to_json()
    reference_conversion = getattr(point.case.reference, "opset_conversion", None)
    if point.case.reference_kind is ReferenceKind.ONNXRUNTIME_FP32 and reference_conversion is not None:
        derivation["reference_opset"] = str(reference_conversion)
    return derivation


def _gate_context(state: HarnessState, point: Point, backend: Backend, test_id: str) -> GateContext:
    settings = state.settings.gate
    default = state.registry.descriptor(point.backend).latency_threshold
    threshold = point.case.latency_threshold or settings.latency_threshold or default
    policy = GatePolicy(
        threshold,
        settings.alpha,
        accuracy_factor=settings.accuracy_factor,
        fail_on_improvement=settings.fail_on_improvement,
    )
    selection = state.baseline(point.backend, backend)
    entry = selection.baseline.entries.get(test_id) if selection.baseline else None
    return GateContext(
        policy,
        entry,
        selection.note,
        enforce=not settings.update,
        require=settings.require,
        resolution=selection.resolution,
        costs=settings.costs,
    )


def _loaded_backend(state: HarnessState, short_id: str, point: Point) -> Backend:
    """The backend, or a skip saying why it cannot run this point."""
    backend = state.backend(short_id)
    if isinstance(backend, str):
        pytest.skip(backend)
    reason = backend.unsupported_reason(point.case, point.precision)
    if reason:
        pytest.skip(f"{backend.name} cannot run {point.case.name} at {point.precision.value}: {reason}")
    kept = _kept_nodes(state, point)
    if kept and state.registry.descriptor(short_id).builds_from_code:
        pytest.skip(
            f"{backend.name} ({point.backend}) builds {point.case.name} from its define_network, which cannot keep "
            f"{', '.join(kept)} in float32 (--keep-fp32 / keep_fp32 apply to the derived ONNX model)"
        )
    return backend


def _kept_nodes(state: HarnessState, point: Point) -> tuple[str, ...]:
    """The nodes the point's derived model keeps in float32; () where nothing is asked to be kept, or where
    the derivation fails (the build reports that failure)."""
    if not row(point.precision).keeps_fp32:
        return ()
    if not (state.settings.precision_options.keep_fp32 or point.case.keep_fp32):
        return ()
    try:
        return state.store.derived(point.case, point.precision).kept_fp32
    except HarnessError:
        return ()


def _runnable_backend(state: HarnessState, short_id: str, point: Point) -> Backend:
    """The backend, or a skip with the runtime's own reason when its engines cannot run on this machine."""
    backend = _loaded_backend(state, short_id, point)
    problem = state.runtime_problem(short_id, backend)
    if problem:
        pytest.skip(f"backend '{short_id}' cannot run engines here: {problem}")
    return backend
