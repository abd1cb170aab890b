"""Collection: the matrix parametrization, the matrix tests from a spec file, and selection errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from harness import known_failures, parallel
from harness.backends import Registry
from harness.case import Case
from harness.errors import CaseDefinitionError
from harness.matrix import Point, build_matrix
from harness.precision.convert import named_nodes
from harness.precision.derive import node_names
from harness.precision.names import check_node_names
from harness.pytest_plugin.session import RUN_FIXTURES, STATE, HarnessState, point_of, start
from harness.settings import Settings


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
    if state is not None and point_of(item) is not None:
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
    if not any(point_of(item) is not None and not isinstance(item.parent, SpecModule) for item in items):
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
    cases = {point.case.name: point.case for item in items if (point := point_of(item)) is not None}
    if settings.precision_options.keep_fp32 and cases:
        messages += _unknown_kept_nodes(list(cases.values()), settings.precision_options.keep_fp32)
    for index, message in enumerate(messages):
        items.append(_error_item(state, session, SelectionErrorItem, f"harness-selection-error-{index}", message))
    if settings.spec_paths:
        state.cases(config)  # loads the specs, when no collected test asked for the cases
    uncollected = _uncollected_spec(state, config)
    for index, message in enumerate((*state.spec_errors, *([uncollected] if uncollected else []))):
        items.append(_error_item(state, session, SpecErrorItem, f"harness-spec-error-{index}", message))
    if not config.option.collectonly and (state.input_errors or any(point_of(item) for item in items)):
        start(state)


def _mark_known_failures(settings: Settings, items: list[pytest.Item]) -> list[str]:
    """Mark each selected harness test that the reviewed list names xfail, strictly (a listed test that passes fails
    until its entry goes); the list's problem as a message, for an item of its own."""
    selected = [item for item in items if point_of(item) is not None]
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
