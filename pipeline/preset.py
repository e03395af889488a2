"""`python -m pipeline.preset FILE`: a preset's overrides as `dvc exp run -S` arguments.

A preset (presets/*.yaml) is a flat mapping of dotted params.yaml keys to values, the shape
`study.set` takes. This checks the params they make (one line naming the key on a bad one, exit
2) and prints `-S ++key=value ...` on one line for `dvc exp run $(python -m pipeline.preset FILE)`.
Values are written as the study writes them (pipeline/overrides.py); a string with a space is
refused, since the shell's word splitting of $(...) would cut the override in two.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common.config import ParamError, read_yaml_file
from common.errors import UserError
from pipeline.common import run_stage
from pipeline.overrides import set_args
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
    """["-S", "++key=value", ...] in the -S grammar (pipeline/overrides.py)."""
    for key, value in preset.items():
        if any(isinstance(v, str) and any(c.isspace() for c in v)
               for v in (value if isinstance(value, list) else [value])):
            raise UserError(f"{key}: {value!r} has a space; -S cannot take it through $(...)")
    return set_args(preset)


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        raise UserError("usage: python -m pipeline.preset presets/NAME.yaml")
    print(" ".join(override_args(read_preset(Path(argv[0])))))


if __name__ == "__main__":
    run_stage(main)
