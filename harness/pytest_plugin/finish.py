"""Finishing: the session's one results document, and what is made of it: the results file, the baselines, the HTML
report, the pytest_harness_report hook and the terminal summary."""

from __future__ import annotations

import traceback
from collections.abc import Generator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from harness import baselines, known_failures, parallel
from harness.backends import DeviceKind
from harness.backends.cuda_rt import device_facts, gpu_problem
from harness.errors import CaseDefinitionError
from harness.pytest_plugin.session import STATE, HarnessState, point_of
from harness.results import document as results_document
from harness.results import html, terminal
from harness.results.document import ResultsDocument, TestResult
from harness.settings import Settings


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report: pytest.TestReport = yield
    message = call.excinfo.exconly() if call.excinfo is not None else None
    results = item.config.stash[STATE].results
    point = point_of(item)
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


def _finish(state: HarnessState, session: pytest.Session) -> None:
    """Build the session's one results document (merged from the workers' parts under xdist) and hand it to the
    results file, the baselines, the HTML report, the pytest_harness_report hook and, later, the summary."""
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
    document = _document(state, parts)
    if not document.tests and not document.input_errors:
        return
    state.document = document
    if document.problem is not None:
        _fail(state, session, document.problem)
    settings = state.settings
    try:
        results_document.write(settings.results_path, document.raw)
    except OSError as error:
        # The tests already ran: say where the results could not go, and fail the session, not crash it.
        _fail(state, session, f"could not write the results file: {error}; pass --results a writable path")
    if settings.gate.update:
        _update_baselines(state, session, document)
    if settings.html_path is not None:
        _write_html_report(state, session, settings.html_path, document)
    _call_report_hook(state, session, document)


def _document(state: HarnessState, parts: list[tuple[str, dict[str, Any]]]) -> ResultsDocument:
    """The one typed document of the session's parts. Workers of one session may own GPUs of different models: one
    document still, each record says which device it ran on."""
    settings_record = _settings_record(state.settings)
    contents = results_document.merge(
        [
            (name, results_document.assemble(part["tests"], part["backends"], settings_record, part.get("errors", [])))
            for name, part in parts
        ],
        allow_mixed=True,
    )
    if state.interrupted is not None:
        results_document.mark_interrupted(contents, state.running)
    return results_document.from_session(contents, str(state.settings.results_path))


def _fail(state: HarnessState, session: pytest.Session, error: str) -> None:
    """An error of the results themselves: said in the summary, and the session fails."""
    state.results_error = f"{state.results_error}; {error}" if state.results_error else error
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _call_report_hook(state: HarnessState, session: pytest.Session, document: ResultsDocument) -> None:
    """pytest_harness_report, last: a plugin's report that fails costs nothing written before it, and fails the
    session naming where it failed."""
    try:
        session.config.hook.pytest_harness_report(config=session.config, document=document)
    except Exception as error:  # noqa: BLE001 - a plugin's bug, whatever it is, is said, not raised
        where = traceback.extract_tb(error.__traceback__)[-1]
        state.report_errors.append(
            f"a pytest_harness_report implementation failed ({where.filename}:{where.lineno}): "
            f"{type(error).__name__}: {error}; the results file and the other reports are written; fix that plugin"
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


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


def _write_html_report(state: HarnessState, session: pytest.Session, path: Path, document: ResultsDocument) -> None:
    """The run's HTML report, after the results file: a report that cannot be written costs nothing else (the
    results file is written already), and fails the session naming the path and the fix, like the results file."""
    if document.problem is not None:  # the report reads what the checks refused: said, not rendered
        state.report_errors.append(f"could not write the HTML report {path}: {document.problem}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        return
    try:
        html.write(path, document)
    except OSError as error:
        fix = "pass --harness-html a writable path, or --harness-html=off"
        state.report_errors.append(f"could not write the HTML report {path}: {error}; {fix}")
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
        "profile_layers": settings.profile_layers,
        "spec_paths": [str(path) for path in settings.spec_paths],
    }


def _update_baselines(state: HarnessState, session: pytest.Session, document: ResultsDocument) -> None:
    """Write the tests that ran and passed into their backend's baseline file (a build test: its build time and plan
    size, which its cost gate reads); keep every other entry."""
    groups: dict[tuple[str, str, str], list[TestResult]] = {}
    for test in document.tests:
        if test.verdict == "skip" or test.backend_device is None:
            continue
        groups.setdefault((test.backend, test.backend_device, str(test.backend_version)), []).append(test)
    for (short_id, device, version), tests in groups.items():
        passed = {test.id: dict(test.raw) for test in tests if test.verdict == "pass"}
        path = baselines.baseline_path(state.settings.gate.baselines, device, short_id, version)
        try:
            written = baselines.update(path, device, short_id, version, passed)
        except (baselines.BaselineError, OSError) as error:
            state.baseline_notes.append(f"baselines NOT updated: {error}")
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
            continue
        not_written = len(tests) - written
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
    if state is None or (state.document is None and not state.results_error):
        return
    document = state.document
    terminal.write_summary(
        terminalreporter,
        document.tests if document else (),
        str(state.settings.results_path),
        state.baseline_notes,
        error=state.results_error,
        input_errors=document.input_errors if document else (),
        html_report=state.html_report,
        report_errors=state.report_errors,
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
