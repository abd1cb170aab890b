"""The reviewed list of known failures: `known-failures.toml` in the baselines folder, beside the baselines.

    [[known]]
    test = "test_accuracy[squeezenet-int8-*-ort]"  # a test id; `*` matches any run of characters
    reason = "int8 calibration of squeezenet's last conv is off by 3 %, issue #812"  # mandatory
    verdict = "fail"  # optional: only a failure of this kind ("fail" or "error") is known

`compare` reports a listed failure as a known failure (it does not fail the gate) and an unlisted one that OLD had
too as an unchanged failure (it still fails: NEW failed); the pytest session marks a listed test xfail with its
reason, strictly, so that a listed test that passes again fails the run until its entry is removed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError

FILE_NAME = "known-failures.toml"
_KINDS = ("fail", "error")
_FIELDS = frozenset({"test", "reason", "verdict"})


class KnownFailuresError(HarnessError):
    """A known-failures file that cannot be used; the message names the file, the entry and the fix."""


@dataclass(frozen=True)
class KnownFailure:
    test: str  # the id or pattern as written
    reason: str
    verdict: str | None  # the failure's kind, None: any failure
    pattern: re.Pattern[str]

    def matches(self, test_id: str, verdict: str) -> bool:
        """Whether this entry covers a test with this id that ended with this verdict."""
        return self.pattern.fullmatch(test_id) is not None and (self.verdict is None or verdict == self.verdict)


@dataclass(frozen=True)
class KnownFailures:
    source: str  # the file, for messages
    entries: tuple[KnownFailure, ...]

    def find(self, test_id: str, verdict: str) -> KnownFailure | None:
        """The first entry that makes this failure known (its id matches, and its kind where it names one)."""
        return next((entry for entry in self.entries if entry.matches(test_id, verdict)), None)

    def listed(self, test_id: str) -> KnownFailure | None:
        """The first entry naming this test, whatever the failure's kind."""
        return next((entry for entry in self.entries if entry.pattern.fullmatch(test_id)), None)


NONE = KnownFailures("no known-failures file", ())


def load(path: Path) -> KnownFailures:
    """The list in `path`; an empty list where the file does not exist. KnownFailuresError for a file that
    cannot be read, is not TOML, or holds an entry without a test or a reason."""
    from harness.tomlfile import tomllib

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return KnownFailures(str(path), ())
    except (OSError, UnicodeDecodeError) as error:
        raise KnownFailuresError(f"cannot read the known failures {path} ({error}); check the file") from None
    except tomllib.TOMLDecodeError as error:
        raise KnownFailuresError(
            f"{path} is not valid TOML ({error}); fix it: each entry is a [[known]] table with test and reason"
        ) from None
    unknown = set(data) - {"known"}
    listed = data.get("known", [])
    if unknown or not isinstance(listed, list):
        raise KnownFailuresError(
            f"{path}: expected only [[known]] tables (found {', '.join(sorted(unknown)) or 'known as a value'}); "
            'write each known failure as [[known]] with test = "ID" and reason = "WHY"'
        )
    return KnownFailures(str(path), tuple(_entry(path, index, entry) for index, entry in enumerate(listed)))


def _entry(path: Path, index: int, entry: object) -> KnownFailure:
    where = f"{path}: [[known]] entry {index + 1}"
    if not isinstance(entry, dict):
        raise KnownFailuresError(f"{where} must be a table with test and reason")
    unknown = set(entry) - _FIELDS
    if unknown:
        raise KnownFailuresError(
            f"{where} has unknown field(s) {', '.join(sorted(unknown))}; the fields are test, reason and verdict"
        )
    test, reason, verdict = entry.get("test"), entry.get("reason"), entry.get("verdict")
    if not isinstance(test, str) or not test.strip():
        raise KnownFailuresError(f'{where} needs test = "TEST ID" (a test id, `*` matching any characters)')
    if not isinstance(reason, str) or not reason.strip():
        raise KnownFailuresError(
            f"{where} ({test}) needs a reason: say why the failure is accepted and where it is tracked"
        )
    if verdict is not None and verdict not in _KINDS:
        raise KnownFailuresError(f"{where} ({test}): verdict must be one of {', '.join(_KINDS)}, got {verdict!r}")
    return KnownFailure(test, reason.strip(), verdict, _pattern(test))


def _pattern(test: str) -> re.Pattern[str]:
    """Only `*` is a wildcard: test ids are full of brackets, which fnmatch would read as character classes."""
    return re.compile(".*".join(re.escape(part) for part in test.split("*")))


# The xfail reason of a listed test starts so: the results file tells a known failure from pytest's own xfails.
_PREFIX = "known failure"


def xfail_reason(known: KnownFailures, entry: KnownFailure) -> str:
    return f"{_PREFIX} ({known.source}: {entry.test}): {entry.reason}"


def settled(
    when: str, outcome: str, message: str | None, wasxfail: str | None, longrepr: object
) -> tuple[str, str | None]:
    """(outcome, message) for the results file of a report of a listed test: a known failure (pytest's xfail) is
    recorded as the failure it is, with the reason, so that `compare` judges it against the list; a listed test that
    passes (pytest's strict XPASS) fails with the fix. Other reports are recorded as they are."""
    if outcome == "skipped" and wasxfail is not None and wasxfail.startswith(_PREFIX) and when == "call":
        return "failed", f"{wasxfail}; {message}"
    xpass = f"[XPASS(strict)] {_PREFIX}"
    if outcome == "failed" and isinstance(longrepr, str) and longrepr.startswith(xpass):
        reason = longrepr.removeprefix("[XPASS(strict)] ")
        return outcome, f"passes, yet listed as a {reason}: remove its entry so that the list stays reviewed"
    return outcome, message
