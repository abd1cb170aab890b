"""The session: its state in `config.stash`, options resolved, start-up checks, the xdist hooks, and the device
each test holds while it runs."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import filelock
import pytest

from harness import atomic, baselines, hookspecs, parallel
from harness.backends import Backend, BackendDescriptor, BackendDescriptorError, DeviceKind, Registry
from harness.backends.cuda_rt import gpu_problem, visible_gpus
from harness.build import EngineStore
from harness.case import Case
from harness.errors import CaseDefinitionError
from harness.matrix import Point
from harness.results import terminal
from harness.results.document import ResultsDocument
from harness.results.record import ResultsLog
from harness.settings import Settings, add_options, resolve
from harness.spec import load_specs
from harness.spec.load import FOLDER_MODEL

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
    document: ResultsDocument | None = None  # the session's results, once finished: what every report is made of
    results_lock: filelock.BaseFileLock | None = None  # held while this session owns its results path
    spec_errors: tuple[str, ...] = ()  # spec entries that could not become cases: one error item each
    spec_cases: int = 0  # the cases the spec files hold (the entries that became cases)
    suite_file: Path | None = None  # the spec file (resolved) that holds the matrix tests: the first that exists
    suite_collected: bool = False  # the matrix tests were collected from it (no Python test module needed)
    matrix_collected: bool = False  # some matrix test was collected, from a spec file or a Python module
    input_errors: list[dict[str, str]] = field(default_factory=list)  # {id, message} of each error item added
    html_report: str | None = None  # where the HTML report was written, for the summary
    report_errors: list[str] = field(default_factory=list)  # why a report (HTML, a plugin's) was not made, with the fix
    started: bool = False  # the start-up checks ran (start): the session uses the harness
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
        start(state)


def start(state: HarnessState) -> None:
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
    point = point_of(item)
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


def point_of(item: pytest.Item) -> Point | None:
    """The harness point a collected matrix test runs; None for any other test."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    point = next((params[name] for name in ("harness_build", *RUN_FIXTURES) if name in params), None)
    return point if isinstance(point, Point) else None


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is not None and state.results_lock is not None:
        atomic.release_removed(state.results_lock)
