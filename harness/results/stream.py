"""Reading a results file one test record at a time, for a reader that keeps less than the whole file.

A fleet's merged results file (100,000 tests from many CI shards) is hundreds of MB of JSON, mostly latency
samples; json.loads of it holds the text and every sample as a Python float at once, well over a GB. read()
parses the top-level object with the standard library's own decoder (json.JSONDecoder.raw_decode), a chunk of
the file at a time, and hands each record of "tests" to `each` as soon as it is parsed, so that only what
`each` returns is kept. The result is what json.loads would give, with each record replaced by `each`'s.

`prepare`, where given, rewrites each chunk of text as read, before it is decoded: a reader that needs less than
a long array of numbers can replace it by the little it needs (the HTML report keeps a latency test's percentiles,
not its samples), which spares decoding it. It must keep the chunk's length (spaces fill in), so that an error's
character position is the file's, and leave anything it does not recognise whole (a value cut by the chunk's
end is decoded as it is).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NoReturn, TextIO

from harness.results.document import ResultsFileError

_CHUNK = 1 << 22  # characters read at a time: 4 M, a few hundred records
_WHITESPACE = " \t\n\r"


def read(
    path: Path,
    each: Callable[[Mapping[str, object]], Mapping[str, object]],
    prepare: Callable[[str], str] = str,
) -> object:
    """The JSON document in `path`, each record of its top-level "tests" list replaced by `each(record)`.
    ResultsFileError names the file and the fix when it cannot be read or is not JSON."""
    try:
        with path.open(encoding="utf-8") as handle:
            return _Reader(handle, path, prepare).document(each)
    except (OSError, UnicodeDecodeError) as error:
        raise ResultsFileError(
            f"cannot read {path} ({error}); check the path, or re-run the tests to write it"
        ) from None


class _Reader:
    def __init__(self, handle: TextIO, path: Path, prepare: Callable[[str], str]) -> None:
        self.handle, self.path, self.prepare = handle, path, prepare
        self.buffer, self.pos = "", 0
        self.consumed = 0  # characters of the file before self.buffer
        self.eof = False
        self.decoder = json.JSONDecoder()

    def document(self, each: Callable[[Mapping[str, object]], Mapping[str, object]]) -> object:
        if self._next_char() != "{":
            return self._value()  # not an object: no "tests" to stream, the caller says what it expected
        self.pos += 1
        document: dict[str, object] = {}
        while self._next_char() != "}":
            if document:
                self._expect(",")
            key = self._value()
            self._expect(":")
            document[str(key)] = self._records(each) if key == "tests" and self._next_char() == "[" else self._value()
        self.pos += 1
        if self._next_char() != "":
            self._fail("Extra data")
        return document

    def _records(self, each: Callable[[Mapping[str, object]], Mapping[str, object]]) -> list[object]:
        self.pos += 1  # the "["
        records: list[object] = []
        while self._next_char() != "]":
            if records:
                self._expect(",")
            record = self._value()
            records.append(each(record) if isinstance(record, Mapping) else record)  # from_json says what is wrong
        self.pos += 1
        return records

    def _value(self) -> object:
        """The JSON value at the current position: decoded where it ends before the buffer does (a number cut
        by the chunk's end would parse as a shorter one), else decoded again with more of the file."""
        self._next_char()
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buffer, self.pos)
            except json.JSONDecodeError as error:
                if self.eof:
                    self._fail(error.msg, error.pos)
            else:
                if end < len(self.buffer) or self.eof:
                    self.pos = end
                    return value
            self._fill()

    def _next_char(self) -> str:
        """The next character that is not whitespace (not consumed); "" at the end of the file."""
        while True:
            while self.pos < len(self.buffer) and self.buffer[self.pos] in _WHITESPACE:
                self.pos += 1
            if self.pos < len(self.buffer):
                return self.buffer[self.pos]
            if self.eof:
                return ""
            self._fill()

    def _expect(self, char: str) -> None:
        if self._next_char() != char:
            self._fail(f"Expecting '{char}' delimiter")
        self.pos += 1

    def _fill(self) -> None:
        """More of the file after what is left unread: the buffer holds one record, or one top-level value, at most."""
        chunk = self.prepare(self.handle.read(max(_CHUNK, len(self.buffer) - self.pos)))  # doubling for a long value
        self.consumed += self.pos
        self.buffer = self.buffer[self.pos :] + chunk
        self.pos = 0
        self.eof = not chunk

    def _fail(self, message: str, pos: int | None = None) -> NoReturn:
        where = self.consumed + (self.pos if pos is None else pos)
        raise ResultsFileError(
            f"{self.path} is not valid JSON ({message}: character {where}): the file is truncated or corrupted; "
            "re-run the tests to write it again, or restore it from version control"
        )
