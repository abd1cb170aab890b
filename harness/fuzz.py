"""Shape fuzzing inside (and just outside) optimization profiles, with Hypothesis.

Dynamic dimensions are drawn per *name*, so dimensions a case ties together (the batch shared by two
inputs, spatial dims that must match) always take one value. The profile's min, opt and max are
always tried too, as explicit examples.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.case import Case, Shape, ShapePoint

# Registered by the plugin's pytest_addoption, so that Hypothesis's own pytest_configure can load the one
# --hypothesis-profile names, and by fuzz_settings for use without pytest. Failures print the
# @reproduce_failure blob.
PROFILES: Mapping[str, Mapping[str, Any]] = {
    "harness-ci": {
        "derandomize": True,  # the same examples on every CI run: a red build is reproducible
        "database": None,  # nothing written into the checkout
        "deadline": None,  # engine builds and first runs are slow; latency is measured elsewhere
        "max_examples": 20,
        "print_blob": True,
    },
    "harness-dev": {"deadline": None, "max_examples": 50, "print_blob": True},
    "harness-nightly": {"deadline": None, "max_examples": 1000, "print_blob": True},
}
DEFAULT_PROFILE = "harness-dev"  # for the fuzz tests when no --hypothesis-profile is given


def register_profiles() -> None:
    for name, options in PROFILES.items():
        settings.register_profile(name, **options)


def fuzz_settings(profile: str | None, max_examples: int | None) -> settings:
    """The chosen Hypothesis profile (ours by default), with the example count from the command line."""
    register_profiles()  # idempotent: the profiles exist however the session started
    base = settings.get_profile(profile or DEFAULT_PROFILE)
    # The engine fixture is built once per test and reused by every example: that is the point.
    checks = [*base.suppress_health_check, HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
    if max_examples is None:
        return settings(base, suppress_health_check=checks)
    return settings(base, max_examples=max_examples, suppress_health_check=checks)


def dim_ranges(case: Case, profile_index: int) -> dict[str, tuple[int, int]]:
    """[min, max] of every named dynamic dimension (check_case guarantees tied ones agree)."""
    profile = case.profiles[profile_index]
    ranges: dict[str, tuple[int, int]] = {}
    for spec in case.inputs:
        for axis, dim in enumerate(spec.shape):
            if isinstance(dim, str):
                ranges.setdefault(dim, (profile.min[spec.name][axis], profile.max[spec.name][axis]))
    return ranges


def shapes_from_dims(case: Case, dims: Mapping[str, int]) -> dict[str, Shape]:
    return {spec.name: tuple(dims[d] if isinstance(d, str) else d for d in spec.shape) for spec in case.inputs}


def shapes_inside(case: Case, profile_index: int) -> st.SearchStrategy[dict[str, Shape]]:
    dims = {name: st.integers(low, high) for name, (low, high) in dim_ranges(case, profile_index).items()}
    return st.fixed_dictionaries(dims).map(lambda drawn: shapes_from_dims(case, drawn))


def shapes_outside(case: Case, profile_index: int) -> st.SearchStrategy[tuple[dict[str, Shape], str]]:
    """Shapes the profile does not cover, each with the input it breaks: one dynamic dimension below
    min or above max, a fixed dimension changed, an input of the wrong rank, tied dimensions split."""
    ranges = dim_ranges(case, profile_index)
    inside = shapes_inside(case, profile_index)
    strategies = [st.tuples(inside, st.sampled_from(case.inputs)).map(lambda pair: _wrong_rank(*pair))]
    if ranges:
        strategies.append(_dim_out_of_range(case, ranges))
    fixed = [(spec, axis) for spec in case.inputs for axis, dim in enumerate(spec.shape) if isinstance(dim, int)]
    if fixed:
        strategies.append(
            st.tuples(inside, st.sampled_from(fixed), st.integers(1, 64)).map(lambda t: _fixed_changed(*t))
        )
    tied = [name for name in ranges if sum(name in spec.shape for spec in case.inputs) > 1]
    if tied:
        strategies.append(st.tuples(inside, st.sampled_from(tied)).flatmap(lambda t: _tied_split(case, ranges, *t)))
    return st.one_of(strategies)


def _dim_out_of_range(
    case: Case, ranges: Mapping[str, tuple[int, int]]
) -> st.SearchStrategy[tuple[dict[str, Shape], str]]:
    def build(name: str, value: int, others: Mapping[str, int]) -> tuple[dict[str, Shape], str]:
        shapes = shapes_from_dims(case, {**others, name: value})
        return shapes, next(spec.name for spec in case.inputs if name in spec.shape)

    def draw_for(name: str) -> st.SearchStrategy[tuple[dict[str, Shape], str]]:
        low, high = ranges[name]
        outside = st.integers(high + 1, high + 64) | (st.integers(0, low - 1) if low > 0 else st.nothing())
        others = st.fixed_dictionaries({n: st.integers(lo, hi) for n, (lo, hi) in ranges.items()})
        return st.tuples(st.just(name), outside, others).map(lambda t: build(*t))

    return st.sampled_from(sorted(ranges)).flatmap(draw_for)


def _wrong_rank(shapes: dict[str, Shape], spec: Any) -> tuple[dict[str, Shape], str]:
    shape = shapes[spec.name]
    changed = shape[:-1] if len(shape) > 1 else (*shape, 1)
    return {**shapes, spec.name: changed}, spec.name


def _fixed_changed(shapes: dict[str, Shape], fixed: tuple[Any, int], delta: int) -> tuple[dict[str, Shape], str]:
    spec, axis = fixed
    shape = list(shapes[spec.name])
    shape[axis] = shape[axis] + delta
    return {**shapes, spec.name: tuple(shape)}, spec.name


def _tied_split(
    case: Case, ranges: Mapping[str, tuple[int, int]], shapes: dict[str, Shape], name: str
) -> st.SearchStrategy[tuple[dict[str, Shape], str]]:
    """The last input carrying a tied dimension gets another value of it, still inside the range."""
    low, high = ranges[name]
    spec = [spec for spec in case.inputs if name in spec.shape][-1]
    axis = spec.shape.index(name)
    current = shapes[spec.name][axis]
    if low == high:
        return st.nothing()
    others = st.integers(low, high).filter(lambda value: value != current)
    return others.map(
        lambda value: (
            {**shapes, spec.name: (*shapes[spec.name][:axis], value, *shapes[spec.name][axis + 1 :])},
            spec.name,
        )
    )


def corners(case: Case, profile_index: int) -> list[dict[str, Shape]]:
    profile = case.profiles[profile_index]
    return [{name: tuple(shape) for name, shape in profile.shapes(point).items()} for point in ShapePoint]


def run_property(
    strategy: st.SearchStrategy[Any],
    check: Callable[[Any], None],
    config: settings,
    examples: list[Any] | None = None,
) -> None:
    """Run `check` as a Hypothesis property over `strategy`, then on every explicit example.

    The drawn phase comes first: Hypothesis never shrinks a failing @example, so a failure found there
    is reported at its minimal shape; the explicit examples (the profile's corners) still always run."""
    settings(config)(given(strategy)(check))()
    for value in examples or []:
        try:
            check(value)
        except AssertionError as error:
            raise AssertionError(f"explicit example {value!r} failed: {error}") from error
