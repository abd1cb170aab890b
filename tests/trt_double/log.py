"""trt.ILogger (subclassed by callers) and trt.Logger (TensorRT's stderr logger)."""

from __future__ import annotations

import sys
from typing import Any

from .strict import StrictObject

_LETTERS = {"INTERNAL_ERROR": "F", "ERROR": "E", "WARNING": "W", "INFO": "I", "VERBOSE": "V"}


class ILogger(StrictObject):
    """Subclass it, call ILogger.__init__(self) from __init__, and override log()."""

    def __init__(self) -> None:
        # TensorRT's constructors refuse a logger whose subclass skipped this (pybind11 does the same).
        self._initialized = True

    def log(self, severity: Any, msg: str) -> None:
        raise RuntimeError('Tried to call pure virtual function "ILogger::log"')


class Logger(ILogger):
    """Writes messages at or above min_severity to stderr, like TensorRT's own Logger."""

    def __init__(self, min_severity: Any = None) -> None:
        ILogger.__init__(self)
        self._min_severity = self._api.severity.WARNING if min_severity is None else min_severity

    @property
    def min_severity(self) -> Any:
        return self._min_severity

    @min_severity.setter
    def min_severity(self, value: Any) -> None:
        self._min_severity = value

    def log(self, severity: Any, msg: str) -> None:
        if int(severity) <= int(self._min_severity):
            sys.stderr.write(f"[TRT] [{_LETTERS[severity.name]}] {msg}\n")
