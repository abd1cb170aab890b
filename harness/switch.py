"""The words a yes/no setting takes, wherever it is written: an option, an ini line, a backend's own option."""

from __future__ import annotations

# An ini file may also hold TOML's booleans, which pytest hands over as "True"/"False": compared lower-cased.
_WORDS = {"yes": True, "true": True, "on": True, "1": True, "no": False, "false": False, "off": False, "0": False}


def switch_value(text: str) -> bool | None:
    """What a switch's text means; None for text that is not a switch word."""
    return _WORDS.get(text.lower())
