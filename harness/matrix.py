"""The test matrix: case × precision × shape point × backend, with stable, readable ids.

Ids are the keys of results and baselines, so an id depends only on its own point: adding a case,
a precision or a backend never renames an existing test.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from harness.case import Case, Precision, ShapePoint
from harness.naming import point_name, shape_label


@dataclass(frozen=True)
class Point:
    case: Case
    precision: Precision
    profile_index: int
    shape_point: ShapePoint
    backend: str  # the backend's short id
    per_profile: str | None = None  # "fuzz" or "build": one point per profile instead of one per corner

    @property
    def shape_label(self) -> str:
        return shape_label(self.profile_index, self.per_profile or self.shape_point.value)

    @property
    def id(self) -> str:
        return point_name(self.case.name, self.precision.value, self.shape_label, self.backend)


def build_matrix(
    cases: Iterable[Case], precisions: Sequence[Precision], backends: Sequence[str], per_profile: str | None = None
) -> list[Point]:
    """Every point, in a fixed order: one per profile corner, or one per profile labelled `per_profile`
    (the fuzz tests draw shapes across the profile; the build test builds the profile's one engine). A
    case without profiles still gets profile 0, whose tests then report the case's definition error
    instead of vanishing from the run. A fixed profile (min = opt = max) gets its opt point alone: the id its
    opt corner always had, so its baselines are still found."""
    return [
        Point(case, precision, profile_index, shape_point, backend, per_profile)
        for case in cases
        for precision in precisions
        if precision in case.precisions
        for profile_index in range(max(1, len(case.profiles)))
        for shape_point in _corners(case, profile_index, per_profile)
        for backend in backends
    ]


def _corners(case: Case, profile_index: int, per_profile: str | None) -> list[ShapePoint]:
    fixed = profile_index < len(case.profiles) and case.profiles[profile_index].is_fixed
    return [ShapePoint.OPT] if per_profile or fixed else list(ShapePoint)
