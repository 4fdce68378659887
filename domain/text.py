"""Text hygiene for every text field of a request or a filing: no control characters, bounded length.

A NUL byte or another C0 control character in a reason or a title used to pass the
workflow's validator and then be refused by PostgreSQL in the record activity on every
retry, wedging the case. The constrained string types here are used by the models in
`domain.model`, so such text is refused wherever a model is built: in the console's
forms and API (422 naming the field), in `file_case` before the case number is taken,
and in the workflow, where the Update's argument fails to decode and the Update is
rejected before anything enters history.

`Line(n)`: one line, no control character at all. `Text(n)`: multi-line text, where
newline, carriage return and tab are allowed. Both refuse DEL and the C1 controls
(U+007F..U+009F) too: terminals act on them.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated

from pydantic import AfterValidator, Field

# Length limits (characters), one place so the README and the forms can quote them.
MAX_LINE = 500  # titles, names, references
MAX_NAME = 200  # a unit, a user id, a role reference
MAX_TEXT = 20_000  # problem, target, complaint
MAX_REASON = 4_000  # a reason, a note, one measure
MAX_ITEMS = 200  # list fields (units, measures, evidence references)


def _name(c: str) -> str:
    names = {"\x00": "NUL", "\x1b": "ESC", "\x7f": "DEL", "\n": "newline", "\r": "carriage return", "\t": "tab"}
    return names.get(c) or unicodedata.name(c, "control character")


# The forbidden characters as one class each, so a string is checked by the regex engine (C) rather
# than a loop in Python: every text field of every payload is checked on each decode, replays included.
_LINE_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f]")
_TEXT_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # multi-line text may carry \t \n \r


def control_char(value: str, multiline: bool) -> tuple[int, str] | None:
    """(position, the character) of the first forbidden control character, or None."""
    m = (_TEXT_FORBIDDEN if multiline else _LINE_FORBIDDEN).search(value)
    return None if m is None else (m.start(), m.group())


def check_text(value: str, max_len: int, multiline: bool) -> str:
    """The value, or ValueError saying what is wrong (pydantic prefixes the field name)."""
    if len(value) > max_len:
        raise ValueError(f"text too long: {len(value)} characters, at most {max_len}")
    bad = control_char(value, multiline)
    if bad is not None:
        i, c = bad
        kind = "a control character" if multiline else "a control character or line break"
        raise ValueError(f"contains {kind} U+{ord(c):04X} ({_name(c)}) at position {i}; not allowed")
    return value


def Line(max_len: int = MAX_LINE) -> type[str]:  # noqa: N802 - a type factory
    """A one-line string: no control characters, at most `max_len` characters."""
    return Annotated[str, AfterValidator(lambda v: check_text(v, max_len, multiline=False))]  # type: ignore[return-value]


def Text(max_len: int = MAX_TEXT) -> type[str]:  # noqa: N802 - a type factory
    """Multi-line text: newline, CR and tab allowed, other control characters refused."""
    return Annotated[str, AfterValidator(lambda v: check_text(v, max_len, multiline=True))]  # type: ignore[return-value]


def Lines(max_len: int = MAX_NAME, max_items: int = MAX_ITEMS) -> type[list[str]]:  # noqa: N802
    """A bounded list of one-line strings (units, evidence references)."""
    return Annotated[list[Line(max_len)], Field(max_length=max_items)]  # type: ignore[return-value,valid-type]


def strip_controls(value: str) -> str:
    """For display on a terminal: every control character (escape sequences included) made visible."""
    out = []
    for c in value:
        o = ord(c)
        if c == "\n" or c == "\t":
            out.append(c)
        elif o < 0x20 or 0x7F <= o <= 0x9F:
            out.append(f"\\x{o:02x}")
        else:
            out.append(c)
    return "".join(out)


def printable_one_line(value: str) -> str:
    """Control characters escaped, newlines too (for table cells and log fields)."""
    return strip_controls(value).replace("\n", "\\n").replace("\t", " ")


# The field types the models use.
Ref = Line(128)  # request ids, referral and objection ids, profile names
Name = Line(MAX_NAME)  # a unit, a user id, a leader's role reference
Title = Line(MAX_LINE)  # titles, sources, rounds, jurisdictions, evidence references
Reason = Text(MAX_REASON)  # reasons, notes, one measure, a contact
LongText = Text(MAX_TEXT)  # problem, target, complaint
Names = Lines(MAX_NAME)
Refs = Lines(MAX_LINE)
