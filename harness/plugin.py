"""The pytest plugin: options, the matrix, the per-test fixture, the results file and the summary.

Registered through the `pytest11` entry point. Importing it has no side effects and imports no
inference library; session state lives in `config.stash`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Generator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import filelock
import numpy as np
import pytest

from harness import atomic, baselines, hookspecs, known_failures, parallel
from harness.backends import (
    Backend,
    BackendDescriptor,
    BackendDescriptorError,
    BuildRequest,
    DeviceKind,
    Engine,
    Registry,
)
from harness.backends.cuda_rt import device_facts, gpu_problem, visible_gpus
from harness.build import BuildRecord, EngineStore
from harness.case import DEFAULT_MEAN_REL, Case, Precision, ReferenceKind, check_case
from harness.compare import OutputErrors
from harness.errors import BuildError, CaseDefinitionError, HarnessError, ModelRefusedError
from harness.gate import GatePolicy
from harness.matrix import Point, build_matrix
from harness.measure import MeasurePolicy
from harness.precision.convert import named_nodes
from harness.precision.derive import DerivedModel, node_names
from harness.precision.names import check_node_names
from harness.precision.proof import EXPECTED, Proof, prove
from harness.precision.table import row
from harness.results import html, schema, terminal
from harness.results.schema import ResultsLog, TestRecord
from harness.settings import Settings, add_options, resolve
from harness.spec import load_specs
from harness.spec.load import FOLDER_MODEL

if TYPE_CHECKING:
    from harness.precision.localize import Localization, Runner

GPU_MARKER = "gpu: needs a CUDA GPU; runs only with --gpu"
LOCKS_DIR = Path(".harness") / "locks"  # per-device locks that keep latency tests alone on their device
# The fixtures of the matrix tests that run engines; a build-only session skips them.
RUN_FIXTURES = ("harness_point", "harness_pair", "harness_fuzz")
# Marks the matrix tests that compare with the case's reference (skipped where that comparison is tautological).
REFERENCE_MARK = "harness_reference"


@dataclass
class HarnessState:
    config: pytest.Config
    settings: Settings
    registry: Registry
    store: EngineStore
    results: ResultsLog = field(default_factory=ResultsLog)
    _cases: tuple[Case, ...] | None = None
    _backends: dict[str, Backend | Exception] = field(default_factory=dict)  # a backend, or why it can't load
    _runtime_problems: dict[str, str | None] = field(default_factory=dict)  # why its engines cannot run here
    _baselines: dict[str, baselines.Selection | baselines.BaselineError] = field(default_factory=dict)
    results_error: str | None = None
    baseline_notes: list[str] = field(default_factory=list)  # said once in the summary
    final_tests: list[Mapping[str, object]] = field(default_factory=list)  # as written to the results file
    final_input_errors: list[dict[str, str]] = field(default_factory=list)  # as written to the results file
    results_lock: filelock.BaseFileLock | None = None  # held while this session owns its results path
    spec_errors: tuple[str, ...] = ()  # spec entries that could not become cases: one error item each
    spec_cases: int = 0  # the cases the spec files hold (the entries that became cases)
    suite_file: Path | None = None  # the spec file (resolved) that holds the matrix tests: the first that exists
    suite_collected: bool = False  # the matrix tests were collected from it (no Python test module needed)
    matrix_collected: bool = False  # some matrix test was collected, from a spec file or a Python module
    input_errors: list[dict[str, str]] = field(default_factory=list)  # {id, message} of each error item added
    html_report: str | None = None  # where the HTML report was written, for the summary
    html_error: str | None = None  # why it could not be, with the fix
    started: bool = False  # the start-up checks ran (_start): the session uses the harness
    running: str | None = None  # the node id of the test running now, until it ends
    interrupted: str | None = None  # what interrupted the session ("interrupted by KeyboardInterrupt (SIGINT)")

    def cases(self, config: pytest.Config) -> tuple[Case, ...]:
        if self._cases is None:
            found = [case for cases in config.hook.pytest_harness_cases(config=config) for case in cases]
            names = [case.name for case in found]
            duplicates = sorted({name for name in names if names.count(name) > 1})
            if duplicates:
                raise CaseDefinitionError(
                    duplicates[0], "two registered cases share this name; give every case a unique name"
                )
            if self.settings.spec_paths:
                loaded = load_specs(self.settings.spec_paths, self.settings.engine_cache, taken=names)
                found += loaded.cases
                self.spec_errors = loaded.errors
                self.spec_cases = len(loaded.cases)
            self._cases = tuple(found)
        return self._cases

    def backend(self, short_id: str) -> Backend | str:
        """The loaded backend, or why it cannot load (a test skips with that)."""
        error = self.load_error(short_id)
        if error is not None:
            return f"backend '{short_id}' is not installed here ({error})"
        backend = self._backends[short_id]
        assert not isinstance(backend, Exception)
        return backend

    def load_error(self, short_id: str) -> Exception | None:
        """Loads the backend once per session; the error that prevented it, if any."""
        if short_id not in self._backends:
            try:
                options, own = self.settings.backend_options, self.settings.backend_own_options
                self._backends[short_id] = self.registry.load(short_id, options, own)
            except (ImportError, OSError) as error:  # OSError: a library whose shared objects are missing
                self._backends[short_id] = error
        outcome = self._backends[short_id]
        return outcome if isinstance(outcome, Exception) else None

    def runtime_problem(self, short_id: str, backend: Backend) -> str | None:
        """Asked of the backend once per session, before its first engine is loaded."""
        if short_id not in self._runtime_problems:
            self._runtime_problems[short_id] = backend.runtime_problem()
        return self._runtime_problems[short_id]

    def baseline(self, short_id: str, backend: Backend) -> baselines.Selection:
        """The baseline this session compares a backend's tests with; BaselineError if it is unusable."""
        if short_id not in self._baselines:
            gate = self.settings.gate
            try:
                selection = baselines.select(
                    gate.baselines,
                    backend.device(),
                    short_id,
                    backend.version(),
                    gate.baseline_from,
                    self.registry.descriptor(short_id).library,
                )
                self.baseline_notes.append(f"{short_id}: {selection.note}")
                self._baselines[short_id] = selection
            except baselines.BaselineError as error:
                self._baselines[short_id] = error
        outcome = self._baselines[short_id]
        if isinstance(outcome, baselines.BaselineError):
            raise outcome
        return outcome

    def loaded_baselines(self) -> list[baselines.BaselineFile]:
        return [
            outcome.baseline
            for outcome in self._baselines.values()
            if isinstance(outcome, baselines.Selection) and outcome.baseline is not None
        ]

    def backend_versions(self) -> dict[str, dict[str, object]]:
        """Name, version, device and descriptor of every backend this session loaded, for the results file."""
        return {short_id: self.backend_info(short_id, backend) for short_id, backend in self.loaded_backends()}

    def loaded_backends(self) -> list[tuple[str, Backend]]:
        return [
            (short_id, backend) for short_id, backend in self._backends.items() if not isinstance(backend, Exception)
        ]

    def backend_info(self, short_id: str, backend: Backend) -> dict[str, object]:
        return {
            "name": backend.name,
            "version": backend.version(),
            "device": backend.device(),
            **self.registry.descriptor(short_id).facts(),
        }


STATE = pytest.StashKey[HarnessState]()


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


@dataclass(frozen=True)
class PairContext:
    """What an agreement test gets: the point's context and the engine of the backend it must match."""

    context: PointContext
    twin: Engine
    twin_backend: str

    def __repr__(self) -> str:
        return f"PairContext({self.context.point.id} and {self.twin_backend})"


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)
    terminal.add_options(parser)
    # Our Hypothesis profiles (harness-ci, ...) must exist before Hypothesis's own pytest_configure loads the
    # one --hypothesis-profile names, whatever order plugins configure in: registered here, at option time,
    # not on import. (Hypothesis's pytest plugin imports hypothesis at start-up anyway.)
    from harness import fuzz

    fuzz.register_profiles()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", GPU_MARKER)
    config.addinivalue_line("markers", f"{parallel.TIMING_MARK}: needs its device alone (latency tests)")
    config.addinivalue_line("markers", f"{REFERENCE_MARK}: compares the engine's outputs with the case's reference")
    parallel.take_assigned_gpu(config)  # before anything initialises CUDA in this worker
    parallel.share_cores(config)  # before xdist starts the workers, which inherit the environment
    terminal.quiet_benchmark_table(config)  # before pytest-benchmark's trylast pytest_configure reads it
    extra: dict[str, BackendDescriptor] = {}
    for backends in config.hook.pytest_harness_backends(config=config):
        extra.update(backends)
    try:
        registry = Registry(extra)
    except BackendDescriptorError as error:
        raise pytest.UsageError(f"trt-harness: {error}") from None
    settings = resolve(config, registry)
    state = HarnessState(
        config=config,
        settings=settings,
        registry=registry,
        store=EngineStore(
            settings.engine_cache, settings.precision_options, _terminal_lines(config), settings.engine_cache_size
        ),
    )
    state.suite_file = _suite_file(settings.spec_paths)
    config.stash[STATE] = state
    config.pluginmanager.register(InterruptWatch(state), "trt-harness-interrupt-watch")
    if parallel.is_worker(config) or getattr(config.option, "dist", "no") != "no":
        # An xdist controller collects nothing, so it cannot wait to see harness tests: an xdist session starts now.
        _start(state)


def _start(state: HarnessState) -> None:
    """Once, before any test runs and only in a session that uses the harness (a pytest session of another project
    imports no backend and leaves no file): the selected backends load, the output files can be written, the results
    path is this session's, and what killed sessions left behind is swept."""
    if state.started:
        return
    state.started = True
    _require_libraries(state)
    if parallel.is_worker(state.config):
        return  # the controller writes the results file
    settings = state.settings
    _check_output(settings.results_path, "--results / harness_results", "pass --results a writable file path")
    if settings.html_path is not None:
        fix = "pass --harness-html a writable file path, or --harness-html=off"
        _check_output(settings.html_path, "--harness-html / harness_html", fix)
    harness_folder = state.config.rootpath / ".harness"
    atomic.sweep(folder for folder in (harness_folder, settings.engine_cache) if folder is not None)
    state.results_lock = _own_results_path(settings.results_path)


def _check_output(path: Path, option: str, fix: str) -> None:
    """Refused at start-up, not after the run: a device, FIFO or folder at the path, or a folder it cannot go in."""
    if (reason := atomic.unwritable(path)) is not None:
        raise pytest.UsageError(f"trt-harness: {option}: cannot write {path}: {reason}; {fix}")


def _suite_file(spec_paths: tuple[Path, ...]) -> Path | None:
    """The first spec path that exists (a folder: its model.onnx), resolved: where the matrix tests are collected."""
    declaring = [path / FOLDER_MODEL if path.is_dir() else path for path in spec_paths]
    return next((path.resolve() for path in declaring if path.is_file()), None)


def _terminal_lines(config: pytest.Config) -> Callable[[str], None] | None:
    """Writes a line to the terminal while a test runs (past pytest's output capture), as live logging does:
    long builds say how far they are. None in an xdist worker, which has no terminal of its own."""
    if parallel.is_worker(config):
        return None

    def write(line: str) -> None:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        capture = config.pluginmanager.get_plugin("capturemanager")
        if reporter is None:
            return
        with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
            reporter.write_line(f"trt-harness: {line}")

    return write


def _own_results_path(path: Path) -> filelock.BaseFileLock:
    """Lock the results path for this session: a second live session writing the same file is
    refused at once instead of overwriting the first's results at the end."""
    lock = filelock.FileLock(path.with_name(f".{path.name}.lock"), timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise pytest.UsageError(
            f"trt-harness: {path} is being written by another live session (it holds {lock.lock_file}); "
            "pass --results another path, or wait for that session to end"
        ) from None
    except OSError as error:  # the path passed _check_output: a cause of its own (a full disk), said as it is
        raise pytest.UsageError(
            f"trt-harness: --results / harness_results: cannot lock {lock.lock_file} ({error}); "
            "pass --results a writable file path"
        ) from None
    return lock


def _require_libraries(state: HarnessState) -> None:
    """Stop at once, with the fix, rather than run a session whose tests of a selected backend would
    all skip: --gpu promises GPU results where this session needs a GPU; a build-only run of a backend
    that builds only on a GPU needs --gpu (else it would pass having built nothing); and a backend
    that builds without a GPU (TensorRT for RTX) runs its build tests on any machine."""
    settings = state.settings
    descriptors = {short_id: state.registry.descriptor(short_id) for short_id in settings.backends}
    needs_gpu = {
        short_id
        for short_id, descriptor in descriptors.items()
        if descriptor.build_needs_gpu or (descriptor.run_needs_gpu and not settings.build_only)
    }
    problems = [problem] if settings.gpu and needs_gpu and (problem := gpu_problem()) else []
    if settings.build_only and not settings.gpu:
        gpu_builders = [short_id for short_id in settings.backends if descriptors[short_id].build_needs_gpu]
        if gpu_builders:
            problems.append(
                f"--build-only with {_backends_phrase(gpu_builders)} builds on a GPU: add --gpu on a GPU machine "
                "(without it every build would be skipped and the run would pass having built nothing)"
            )
    unloadable: dict[tuple[str, str, str], list[str]] = {}  # (library, load error, install hint) → backends
    for short_id, descriptor in descriptors.items():
        if descriptor.build_needs_gpu and not settings.gpu:
            continue  # every test of it skips without --gpu anyway
        if (error := state.load_error(short_id)) is not None:
            unloadable.setdefault((descriptor.library, str(error), descriptor.install_hint), []).append(short_id)
    problems += [
        f"{_backends_phrase(ids)} {'needs' if len(ids) == 1 else 'need'} {library}, which cannot be loaded here "
        f"({error}); install it with: {hint}"
        for (library, error, hint), ids in unloadable.items()
    ]
    if problems:
        raise pytest.UsageError("trt-harness: " + "; ".join(problems))


def _backends_phrase(short_ids: list[str]) -> str:
    return f"backend {short_ids[0]}" if len(short_ids) == 1 else f"backends {', '.join(short_ids)}"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    for fixture in ("harness_build", *RUN_FIXTURES):
        if fixture in metafunc.fixturenames:
            _parametrize(metafunc, fixture)


def _parametrize(metafunc: pytest.Metafunc, fixture: str) -> None:
    state = metafunc.config.stash[STATE]
    settings = state.settings
    per_profile = {"harness_fuzz": "fuzz", "harness_build": "build"}.get(fixture)
    points = build_matrix(state.cases(metafunc.config), settings.precisions, settings.backends, per_profile)
    if fixture == "harness_pair":  # only backends that have a twin to agree with
        points = [point for point in points if state.registry.descriptor(point.backend).agrees_with]
    if not points:
        reason = (
            "no selected backend has a twin to agree with (test_agreement compares e.g. trt-net with trt)"
            if fixture == "harness_pair"
            and build_matrix(state.cases(metafunc.config), settings.precisions, settings.backends)
            else "no harness cases or backends selected for this test: check pytest_harness_cases, --backend, "
            "--precision"
        )
        metafunc.parametrize(fixture, [pytest.param(None, marks=pytest.mark.skip(reason=reason))], ids=["none"])
        return
    params = [
        pytest.param(point, id=point.id, marks=_marks(metafunc.config, state.registry, point, fixture))
        for point in points
    ]
    metafunc.parametrize(fixture, params, indirect=True)


def _marks(config: pytest.Config, registry: Registry, point: Point, fixture: str) -> list[pytest.MarkDecorator]:
    descriptor = registry.descriptor(point.backend)
    needs_gpu = descriptor.build_needs_gpu if fixture == "harness_build" else descriptor.run_needs_gpu
    marks = [pytest.mark.gpu] if needs_gpu else []
    if config.pluginmanager.hasplugin("xdist"):
        marks.append(pytest.mark.xdist_group(parallel.engine_group(point)))
    return marks


class SpecModule(pytest.Module):
    """The matrix tests of harness/suite.py, collected from a spec file: a spec needs no Python test module."""

    def _getobj(self) -> Any:
        from harness import suite

        return suite


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    """The first existing spec path given (a folder: its model.onnx) holds the matrix tests, where collection visits
    it: every test is parametrized over all cases, so one module is enough."""
    state = parent.config.stash.get(STATE, None)
    if state is None or state.suite_file is None or state.suite_collected or file_path.resolve() != state.suite_file:
        return None
    state.suite_collected = True
    return SpecModule.from_parent(parent, path=file_path)


def pytest_itemcollected(item: pytest.Item) -> None:
    state = item.config.stash.get(STATE, None)
    if state is not None and _point_of(item) is not None:
        state.matrix_collected = True


def _uncollected_spec(state: HarnessState, config: pytest.Config) -> str | None:
    """Why spec cases will not run: no matrix test was collected at all, because collection never visited the
    spec file that holds them (it lies outside the paths pytest collects) and no test module imports them. A spec
    whose every entry is bad has no case to run: its entries' own errors say so, nothing more."""
    if state.matrix_collected or not state.spec_cases:
        return None
    first = Path(os.path.relpath(state.settings.spec_paths[0], config.invocation_params.dir))  # as the user wrote it
    where = " ".join(str(arg) for arg in config.args) or str(config.rootpath)
    elsewhere = f"run pytest in {first.parent}, or " if first.parent != Path() else ""
    return (
        f"{first}: no test of its cases was collected: the spec file holds them, and it lies outside what pytest "
        f"collects here ({where}); {elsewhere}name the spec as a path to collect too: pytest {first} --harness-spec "
        f"{first}"
    )


def _without_duplicate_suite(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A repository that imports the matrix tests into its own module runs every spec case there, with the tests it
    chose: the spec file's tests go (deselected), so that no test runs twice."""
    if not any(_point_of(item) is not None and not isinstance(item.parent, SpecModule) for item in items):
        return
    duplicates = [item for item in items if isinstance(item.parent, SpecModule)]
    if duplicates:
        config.hook.pytest_deselected(items=duplicates)
        items[:] = [item for item in items if not isinstance(item.parent, SpecModule)]


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    # An unknown name on the command line fails its own item, while every valid selection still runs.
    # trylast: appended after -k / -m / --deselect have deselected, so that no selection hides the typo.
    state = config.stash[STATE]
    settings = state.settings
    _without_duplicate_suite(config, items)
    messages = [*settings.unknown_selections, *_mark_known_failures(settings, items)]
    cases = {point.case.name: point.case for item in items if (point := _point_of(item)) is not None}
    if settings.precision_options.keep_fp32 and cases:
        messages += _unknown_kept_nodes(list(cases.values()), settings.precision_options.keep_fp32)
    for index, message in enumerate(messages):
        items.append(_error_item(state, session, SelectionErrorItem, f"harness-selection-error-{index}", message))
    if settings.spec_paths:
        state.cases(config)  # loads the specs, when no collected test asked for the cases
    uncollected = _uncollected_spec(state, config)
    for index, message in enumerate((*state.spec_errors, *([uncollected] if uncollected else []))):
        items.append(_error_item(state, session, SpecErrorItem, f"harness-spec-error-{index}", message))
    if not config.option.collectonly and (state.input_errors or any(_point_of(item) for item in items)):
        _start(state)


def _mark_known_failures(settings: Settings, items: list[pytest.Item]) -> list[str]:
    """Mark each selected harness test that the reviewed list names xfail, strictly (a listed test that passes fails
    until its entry goes); the list's problem as a message, for an item of its own."""
    selected = [item for item in items if _point_of(item) is not None]
    if not selected:
        return []
    try:
        known = known_failures.load(settings.gate.baselines / known_failures.FILE_NAME)
    except known_failures.KnownFailuresError as error:
        return [str(error)]
    for item in selected:
        if (entry := known.listed(item.name)) is not None:
            item.add_marker(pytest.mark.xfail(reason=known_failures.xfail_reason(known, entry), strict=True))
    return []


def _error_item(
    state: HarnessState, session: pytest.Session, kind: type[SelectionErrorItem], name: str, message: str
) -> pytest.Item:
    """An item that fails for bad input found outside the matrix; the results file and the summary list it too."""
    state.input_errors.append({"id": name, "message": message})
    return kind.from_parent(session, name=name, message=message)


def _unknown_kept_nodes(cases: list[Case], names: tuple[str, ...]) -> list[str]:
    """--keep-fp32 applies each name to every selected case that has such a node; a name no selected case has
    is a typo, reported once (with each case's close names) instead of silently keeping nothing."""
    models = {case.name: named_nodes(case.model()) for case in cases}
    unknown = [name for name in names if not any(name in node_names(model) for model in models.values())]
    if not unknown:
        return []
    per_case = []
    for case_name, model in models.items():
        try:
            check_node_names(model, unknown, case_name=case_name)
        except CaseDefinitionError as error:
            per_case.append(str(error))
    return [f"--keep-fp32: no selected case has a node named {', '.join(map(repr, unknown))}. " + " | ".join(per_case)]


class SelectionErrorItem(pytest.Item):
    def __init__(self, *, message: str, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.message = message

    def runtest(self) -> None:
        pytest.fail(f"trt-harness: {self.message}", pytrace=False)

    def reportinfo(self) -> tuple[str, int | None, str]:
        return "trt-harness options", None, self.name


class SpecErrorItem(SelectionErrorItem):
    """A spec entry that could not become a case; the other cases run."""

    def reportinfo(self) -> tuple[str, int | None, str]:
        return "trt-harness spec", None, self.name


def pytest_runtest_setup(item: pytest.Item) -> None:
    settings = item.config.stash[STATE].settings
    point = _point_of(item)
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
    return BuildContext(point, backend, record, state.store)


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
    return GateContext(policy, entry, selection.note, enforce=not settings.update, require=settings.require)


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


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report: pytest.TestReport = yield
    message = call.excinfo.exconly() if call.excinfo is not None else None
    results = item.config.stash[STATE].results
    point = _point_of(item)
    if report.skipped and item.nodeid not in results.records and point is not None:
        # Skipped before its fixture opened a record (a build-only run, a marker): recorded all the same, so that
        # the results file, the summary and the report count what pytest counts.
        results.open(item.name, item.nodeid, point)
    outcome, message = known_failures.settled(
        report.when, report.outcome, message, getattr(report, "wasxfail", None), report.longrepr
    )
    results.settle(item.nodeid, report.when, outcome, message)
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    state = config.stash.get(STATE, None)
    if state is None:
        return
    state.store.close()
    _note_stale_entries(state, config)
    if parallel.is_worker(config):
        # The controller writes the one results file: a worker hands it what it recorded.
        parallel.send(config, _session_part(state))
        return
    _finish(state, session)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: give each worker its GPU when the session runs GPU backends."""
    state = node.config.stash[STATE]
    kinds = {state.registry.descriptor(short_id).device_kind for short_id in state.settings.backends}
    if DeviceKind.GPU in kinds:
        parallel.assign_gpu(node, visible_gpus())


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    parallel.receive(node.config, node, error)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, object, object]:
    """A harness test holds its device while it runs: a latency test alone, any other shared. The test that runs is
    noted (any test: an interrupted session names the one it stopped in)."""
    state = item.config.stash[STATE]
    state.running = item.nodeid
    point = _point_of(item)
    if point is None:
        outcome = yield
    else:
        kind = state.registry.descriptor(point.backend).device_kind
        alone = item.get_closest_marker(parallel.TIMING_MARK) is not None
        with parallel.device_held(item.config.rootpath / LOCKS_DIR, parallel.device_key(kind), alone=alone):
            outcome = yield
    state.running = None  # not reached when the session is interrupted: then it names the test that was running
    return outcome


@dataclass(frozen=True)
class InterruptWatch:
    """Registered per session (pytest_keyboard_interrupt is given no config): Ctrl-C (SIGINT) or pytest.exit is
    noted, so that the results file says the run was interrupted, and in which test."""

    state: HarnessState

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        cause = "KeyboardInterrupt (SIGINT)" if excinfo.errisinstance(KeyboardInterrupt) else excinfo.exconly()
        self.state.interrupted = f"interrupted by {cause}"


def _point_of(item: pytest.Item) -> Point | None:
    params = getattr(getattr(item, "callspec", None), "params", {})
    point = next((params[name] for name in ("harness_build", *RUN_FIXTURES) if name in params), None)
    return point if isinstance(point, Point) else None


def _finish(state: HarnessState, session: pytest.Session) -> None:
    """Write the session's one results file (merged from the workers' under xdist) and the baselines."""
    settings = state.settings
    _note_interrupted(state)  # before the records are taken
    parts: list[tuple[str, dict[str, Any]]] = [("this session", _session_part(state))]
    if parallel.is_controller(session.config):
        parts = parallel.received(session.config)
        state.baseline_notes = list(dict.fromkeys(note for _, part in parts for note in part.get("notes", [])))
        if lost := parallel.lost(session.config):
            state.results_error = "; ".join(lost)
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if not parts or session.config.option.collectonly:  # --co runs nothing: no results file, no report
        return
    # Workers of one session may own GPUs of different models: one results file still, each record
    # says which device it ran on.
    settings_record = _settings_record(settings)
    contents = schema.merge(
        [
            (name, schema.document(part["tests"], part["backends"], settings_record, part.get("errors", [])))
            for name, part in parts
        ],
        allow_mixed=True,
    )
    if state.interrupted is not None:
        schema.mark_interrupted(contents, state.running)
    state.final_tests = list(contents["tests"])  # type: ignore[call-overload]
    state.final_input_errors = list(contents["input_errors"])  # type: ignore[call-overload]
    if not state.final_tests and not state.final_input_errors:
        return
    try:
        schema.write(settings.results_path, contents)
    except OSError as error:
        # The tests already ran: say where the results could not go, and fail the session, not crash it.
        unwritten = f"could not write the results file: {error}; pass --results a writable path"
        state.results_error = f"{state.results_error}; {unwritten}" if state.results_error else unwritten
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if settings.gate.update:
        _update_baselines(state, session)
    if settings.html_path is not None:
        _write_html_report(state, session, settings.html_path, contents)


def _note_interrupted(state: HarnessState) -> None:
    """The test that was running when the session was interrupted: an error that says so (pytest reports no phase
    of it, so its record would say only `error`)."""
    if state.interrupted is None or state.running is None:
        return
    record = state.results.records.get(state.running)
    if record is not None:
        record.verdict, record.message = "error", f"{state.interrupted} while running"


def _session_part(state: HarnessState) -> dict[str, Any]:
    """What this process recorded, as an xdist worker hands it to the controller and as _finish merges it."""
    return {
        "tests": state.results.tests(),
        "backends": state.backend_versions(),
        "notes": state.baseline_notes,
        "errors": state.input_errors,
    }


def _write_html_report(state: HarnessState, session: pytest.Session, path: Path, contents: dict[str, object]) -> None:
    """The run's HTML report, after the results file: a report that cannot be written costs nothing else (the
    results file is written already), and fails the session naming the path and the fix, like the results file."""
    try:
        html.write(path, schema.from_session(contents, str(state.settings.results_path)))
    except OSError as error:
        fix = "pass --harness-html a writable path, or --harness-html=off"
        state.html_error = f"could not write the HTML report {path}: {error}; {fix}"
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    except schema.ResultsFileError as error:  # the session's own records fail the schema's checks: said, not raised
        state.html_error = f"could not write the HTML report {path}: {error}"
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    else:
        state.html_report = str(path)


def _settings_record(settings: Settings) -> dict[str, object]:
    return {
        "backends": list(settings.backends),
        "precisions": [p.value for p in settings.precisions],
        "seed": settings.seed,
        "engine_cache": str(settings.engine_cache) if settings.engine_cache else None,
        "build_only": settings.build_only,
        "measure": asdict(settings.measure),
        # what conditions the timing (threads, copies, graphs, sync, launches); the cache folder is not a setting of it
        "backend_options": {k: v for k, v in asdict(settings.backend_options).items() if k != "cache_dir"},
        "keep_fp32": list(settings.precision_options.keep_fp32),
        "calibrator": settings.precision_options.calibrator,
        "localize": settings.localize,
        "spec_paths": [str(path) for path in settings.spec_paths],
    }


def _update_baselines(state: HarnessState, session: pytest.Session) -> None:
    """Write the tests that ran and passed into their backend's baseline file; keep every other entry.
    Build tests measure nothing the gate compares: they stay in the results file only."""
    groups: dict[tuple[str, str, str], list[Mapping[str, object]]] = {}
    for test in state.final_tests:
        device, version = test.get("backend_device"), test.get("backend_version")
        if test.get("verdict") == "skip" or schema.is_build_record(test) or device is None:
            continue
        groups.setdefault((str(test.get("backend")), str(device), str(version)), []).append(test)
    for (short_id, device, version), records in groups.items():
        passed = {str(r["id"]): dict(r) for r in records if r.get("verdict") == "pass"}
        path = baselines.baseline_path(state.settings.gate.baselines, device, short_id, version)
        try:
            written = baselines.update(path, device, short_id, version, passed)
        except (baselines.BaselineError, OSError) as error:
            state.baseline_notes.append(f"baselines NOT updated: {error}")
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
            continue
        not_written = len(records) - written
        unwritten = f"; {not_written} failing tests not written" if not_written else ""
        state.baseline_notes.append(f"updated {path}: {written} entries written, other entries kept{unwritten}")


def _note_stale_entries(state: HarnessState, config: pytest.Config) -> None:
    """Entries of cases this session does not register are kept (nothing is lost) but said plainly: the case may be
    gone, or only not part of this session (another spec file, another conftest)."""
    try:
        registered = {case.name for case in state.cases(config)}
    except CaseDefinitionError:
        return  # the registry itself is broken; the tests already say so
    for baseline in state.loaded_baselines():
        stale = sorted(test_id for test_id, entry in baseline.entries.items() if entry.get("case") not in registered)
        if stale:
            shown = ", ".join(stale[:5]) + (" …" if len(stale) > 5 else "")
            state.baseline_notes.append(
                f"{baseline.path}: {len(stale)} entries for cases not registered in this session, kept: {shown}; "
                "if those cases are gone for good, delete their entries by hand"
            )


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is not None and state.results_lock is not None:
        atomic.release_removed(state.results_lock)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> Generator[None]:
    """The outermost wrapper: the trt-harness section is written after every other plugin's summary and after
    pytest's own short test summary, so that it is the last thing before pytest's final count line."""
    try:
        return (yield)
    finally:
        _write_summary(terminalreporter, config)


def _write_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is None or not (state.final_tests or state.final_input_errors or state.results_error):
        return
    tests = [schema.TestResult.from_json(test) for test in state.final_tests]
    input_errors = schema.input_errors(state.final_input_errors)
    results = str(state.settings.results_path)
    terminal.write_summary(
        terminalreporter,
        tests,
        results,
        state.baseline_notes,
        error=state.results_error,
        input_errors=input_errors,
        html_report=state.html_report,
        html_error=state.html_error,
    )


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict[str, object]) -> None:
    """pytest-benchmark's machine info gains the backends, and the GPU, driver and CUDA versions."""
    state = config.stash.get(STATE, None)
    if state is None:
        return
    machine_info["trt_harness_backends"] = state.backend_versions()
    kinds = {state.registry.descriptor(short_id).device_kind for short_id, _ in state.loaded_backends()}
    if DeviceKind.GPU in kinds and gpu_problem() is None:
        machine_info["gpu"] = device_facts()
