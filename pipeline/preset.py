"""`python -m pipeline.preset FILE`: a preset's overrides as `dvc exp run -S` arguments.

A preset (presets/*.yaml) is a flat mapping of dotted params.yaml keys to values, the shape
`study.set` takes. This checks the params they make (one line naming the key on a bad one, exit
2) and prints `-S ++key=value ...` on one line for `dvc exp run $(python -m pipeline.preset FILE)`.
Values are written in the override grammar DVC parses -S with (Hydra's): strings quoted, lists
in brackets, no spaces, so the shell's word splitting keeps each override whole.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from common.config import ParamError, read_yaml_file
from common.errors import UserError
from pipeline.common import run_stage
from pipeline.params import params_from_raw, with_overrides


def read_preset(path: Path, params_yaml: Path = Path("params.yaml")) -> dict[str, Any]:
    """The preset's overrides, after checking the params they give when applied to
    params_yaml."""
    preset = read_yaml_file(path)
    if not isinstance(preset, dict) or not preset:
        raise UserError(f"{path}: expected a mapping of dotted params.yaml keys to values")
    try:
        params_from_raw(with_overrides(read_yaml_file(params_yaml), preset))
    except ParamError as err:
        raise UserError(f"{path}: {err}") from None
    return preset


def override_args(preset: dict[str, Any]) -> list[str]:
    """["-S", "++key=value", ...] with each value in the -S grammar."""
    args = []
    for key, value in preset.items():
        args += ["-S", f"++{key}={_override_value(value, key)}"]  # ++: set, or add if absent
    return args


def _override_value(value: Any, key: str) -> str:
    if isinstance(value, str):
        if any(c.isspace() or c in "'\\" for c in value):
            raise UserError(f"{key}: {value!r} has a space, quote or backslash; -S cannot take it "
                            "through $(...)")
        return f"'{value}'"
    if isinstance(value, list):
        return "[" + ",".join(_override_value(v, key) for v in value) + "]"
    return json.dumps(value)  # numbers, true/false, null


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        raise UserError("usage: python -m pipeline.preset presets/NAME.yaml")
    print(" ".join(override_args(read_preset(Path(argv[0])))))


if __name__ == "__main__":
    run_stage(main)
