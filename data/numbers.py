"""Strict number parsing for the text label formats (KITTI label_2/label_02, vKITTI2 textgt).

Python's int() and float() accept more than these formats ever hold: `1_0` (read as 10),
non-ASCII digits ('٣' is 3), surrounding whitespace and any number of digits. A
field that is not plain ASCII decimal is a corrupt field, so these raise ValueError (the readers
count the line as `non_numeric`) instead of guessing a value.
"""

from __future__ import annotations

import re

# [sign] digits [. digits] [exponent], or .digits; ASCII only (no re.UNICODE \d).
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
# nan / inf are kept as numbers: the readers count them as `non_finite`, a more useful reason.
_NON_FINITE = re.compile(r"[+-]?(?:nan|inf|infinity)", re.ASCII | re.IGNORECASE)
_INTEGER = re.compile(r"[+-]?[0-9]+", re.ASCII)
MAX_INT_DIGITS = 18  # every 18-digit integer fits the manifest's int64 columns
MAX_DECIMAL_CHARS = 64  # far more than any real coordinate; bounds the work per field


def plain_float(text: str) -> float:
    """A plain decimal (or nan/inf) as float; ValueError for anything else."""
    if len(text) <= MAX_DECIMAL_CHARS and (_DECIMAL.fullmatch(text)
                                           or _NON_FINITE.fullmatch(text)):
        return float(text)
    raise ValueError(f"{text[:40]!r} is not a plain decimal number")


def plain_int(text: str) -> int:
    """A plain ASCII decimal integer of at most MAX_INT_DIGITS digits; ValueError otherwise."""
    if _INTEGER.fullmatch(text) and len(text.lstrip("+-")) <= MAX_INT_DIGITS:
        return int(text)
    raise ValueError(f"{text[:40]!r} is not a plain decimal integer")


def is_frame_number(text: str) -> bool:
    """True for a file stem like `000123`: ASCII digits only, small enough for int64."""
    return bool(_INTEGER.fullmatch(text)) and text[0] not in "+-" and len(text) <= MAX_INT_DIGITS
