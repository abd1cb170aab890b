"""The one error of spec files, and the key check that turns a typo into a suggestion."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from pathlib import Path

from harness.errors import HarnessError


class SpecError(HarnessError):
    """A spec file (or a model, or test data it names) cannot become a case: names the file, the field, the fix."""

    def __init__(self, file: Path, field: str, message: str) -> None:
        where = f"{file}: {field}" if field else str(file)
        super().__init__(f"{where}: {message}")
        self.file = file
        self.field = field


def close_match(name: str, known: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for a near miss, else the list of what is allowed."""
    options = sorted(known)
    matches = difflib.get_close_matches(name, options, n=1)
    if matches:
        return f"did you mean '{matches[0]}'?"
    return f"allowed: {', '.join(options) or 'none'}"


def check_keys(table: Mapping[str, object], allowed: Iterable[str], file: Path, field: str) -> None:
    """Refuse a key the format does not have (a typo would otherwise be silently ignored)."""
    known = set(allowed)
    for key in table:
        if key not in known:
            raise SpecError(file, f"{field}.{key}" if field else key, f"unknown key '{key}'; {close_match(key, known)}")
