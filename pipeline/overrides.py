"""`dvc exp run -S` arguments, one encoder for the study's grid (pipeline/study_grid.py) and the
presets (pipeline/preset.py).

DVC parses -S with Hydra's override grammar: strings are quoted (so '1' stays a string and `null`
is not None), lists in brackets, no spaces. Inside a quoted string only a quote, and backslashes
right before a quote or the closing one, are escaped; any other backslash is kept as it is.
"""

from __future__ import annotations

import re
from typing import Any


def hydra_value(value: Any) -> str:
    """`value` as DVC's -S reads it back: None, bools, numbers, strings and lists of them."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ",".join(hydra_value(v) for v in value) + "]"
    escaped = re.sub(r"(\\*)('|$)", lambda m: m.group(1) * 2 + ("\\'" if m.group(2) else ""),
                     str(value))
    return f"'{escaped}'"


def set_args(overrides: dict[str, Any]) -> list[str]:
    """["-S", "++key=value", ...]: `++` sets a key, or adds it where params.yaml lacks it."""
    return [arg for key, value in overrides.items()
            for arg in ("-S", f"++{key}={hydra_value(value)}")]
