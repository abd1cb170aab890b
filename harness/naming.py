"""The one place that spells a point's name: `case-precision-<shape>-backend`, the key of results, baselines and
known failures. Ids depend only on their own point, so adding a case, a precision or a backend never renames an
existing test.

An engine is named like the points that share it, with `p<profile>` where a point has its shape label (one engine
per profile serves all its corners): the engine cache's file stem, the xdist group and the build progress label.
"""

from __future__ import annotations


def shape_label(profile_index: int, label: str) -> str:
    """A corner ("min", "opt", "max") or a whole-profile label ("fuzz", "build") within its profile: profile 0 is
    the common case and keeps the short label; later profiles are prefixed ("p1.max")."""
    return label if profile_index == 0 else f"p{profile_index}.{label}"


def point_name(case: str, precision: str, shape: str, backend: str) -> str:
    """A test's point: `mnist-fp16-p1.max-ort`."""
    return f"{case}-{precision}-{shape}-{backend}"


def engine_name(case: str, precision: str, profile_index: int) -> str:
    """The engine all corners of one profile share: `mnist-fp16-p1`."""
    return f"{case}-{precision}-p{profile_index}"
