"""Errors the harness raises on bad input, and the warning of a cache it rebuilds from. Each message names the case
(where there is one) and the fix."""

from __future__ import annotations


class HarnessError(Exception):
    """Base of every error the harness raises on purpose."""


class CaseError(HarnessError):
    """Something about one case is wrong; the message starts with the case's name."""

    def __init__(self, case: str, message: str) -> None:
        super().__init__(f"case '{case}': {message}")
        self.case = case


class CaseDefinitionError(CaseError):
    """The case's declaration is inconsistent (profiles, tolerances, names)."""


class ShapeOutsideProfileError(CaseError):
    """A shape handed to an engine lies outside the optimization profile it was built with."""


class OutputMismatchError(CaseError):
    """The engine's outputs and the case's reference disagree in names, shapes or dtypes."""


class BuildError(CaseError):
    """A backend failed to build an engine; the message carries the backend's own log."""


class ModelRefusedError(BuildError):
    """The point cannot be built because of what the model is, not because something broke: an operator the
    backend has no importer for, an opset the converter cannot reach, a shape-tensor input. Its test is skipped
    with the message (a refusal with its reason); every other BuildError fails it."""


class SelectionError(HarnessError):
    """An unknown backend or precision was asked for on the command line or in the ini file."""


class EngineCacheWarning(UserWarning):
    """A cached artifact was unusable and has been rebuilt, or the cache could not be written (an engine cache or
    a timing cache): the session goes on, rebuilding."""
