"""JSON input files (BDD100K labels, predictions, ground truth) read without decoder tracebacks.

Python's json module has limits that surface as the wrong exceptions: a document nested
thousands deep raises RecursionError, an integer literal of more than 4300 digits raises a
bare ValueError, and one of 400 digits decodes but overflows when a reader turns it into a
float. Here every such file is one error naming the file and line, and an over-long integer
decodes to an OutOfRangeInteger, which no reader accepts as a number (so it is a counted skip or
an error for that field, never an overflow). A UTF-8 byte-order mark is accepted.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from data.errors import BadInputError

MAX_INT_CHARS = 300  # below float's 309-digit range, far above any real coordinate or id
_WHITESPACE = re.compile(r"[ \t\n\r]*")


class OutOfRangeInteger:
    """An integer literal too long to be a number in any input here (see the module doc)."""

    __slots__ = ("digits",)

    def __init__(self, text: str) -> None:
        self.digits = len(text.lstrip("-"))

    def __repr__(self) -> str:
        return f"<integer of {self.digits} digits>"


def _parse_int(text: str) -> int | OutOfRangeInteger:
    return int(text) if len(text) <= MAX_INT_CHARS else OutOfRangeInteger(text)


_DECODER = json.JSONDecoder(parse_int=_parse_int)


def read_json_text(path: Path, error: type[Exception] = BadInputError) -> str:
    """The file as text: UTF-8, with or without a byte-order mark; `error` names the file."""
    try:
        raw = Path(path).read_bytes()
    except OSError as err:
        raise error(f"{path}: cannot read ({err.strerror or err})") from err
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise error(f"{path}: not UTF-8 (byte 0x{raw[err.start]:02x} at offset {err.start}); "
                    "save it as UTF-8") from err


def decode_at(text: str, pos: int, path: Path, error: type[Exception] = BadInputError
              ) -> tuple[object, int]:
    """One JSON value starting at `pos` and the position after it; failures name the file."""
    try:
        return _DECODER.raw_decode(text, pos)
    except json.JSONDecodeError as err:
        raise error(f"{path}: invalid JSON at line {err.lineno} column {err.colno}: "
                    f"{err.msg}") from err
    except RecursionError:
        line = text.count("\n", 0, pos) + 1
        raise error(f"{path}: invalid JSON at line {line}: nested too deeply for a labels or "
                    "predictions file") from None


def skip_whitespace(text: str, pos: int) -> int:
    return _WHITESPACE.match(text, pos).end()


def decode_document(text: str, path: Path, error: type[Exception] = BadInputError) -> object:
    """The whole text as one JSON value (like json.loads, with the limits above)."""
    value, end = decode_at(text, skip_whitespace(text, 0), path, error)
    end = skip_whitespace(text, end)
    if end != len(text):
        line = text.count("\n", 0, end) + 1
        raise error(f"{path}: invalid JSON at line {line}: text after the JSON value")
    return value
