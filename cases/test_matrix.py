"""The harness's matrix tests over this repository's cases (registered in ../conftest.py)."""

from harness.suite import (
    test_accuracy,
    test_agreement,
    test_build,
    test_fuzz_inside_profile,
    test_fuzz_outside_profile,
    test_latency,
)

__all__ = [
    "test_accuracy",
    "test_agreement",
    "test_build",
    "test_fuzz_inside_profile",
    "test_fuzz_outside_profile",
    "test_latency",
]
