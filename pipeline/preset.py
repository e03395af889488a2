"""`python -m pipeline.preset FILE [--run [-- DVC_ARGS]]`: a preset's overrides as `dvc exp run -S`
arguments.

A preset (presets/*.yaml) is a flat mapping of dotted params.yaml keys to values, the shape
`study.set` takes. This checks the params they make (one line naming the key on a bad one, exit
2) and prints `-S ++key=value ...` on one line for `dvc exp run $(python -m pipeline.preset FILE)`.
Values are written as the study writes them (pipeline/overrides.py); a string with a space is
refused, since the shell's word splitting of $(...) would cut the override in two.

A bad preset (or bad flags) also prints NOT_RUNNABLE on stdout: `$(...)` cannot carry an exit
code into `dvc exp run`, and an empty expansion would run params.yaml's defaults. `--run` is the
form that needs no care: it runs `dvc exp run` with the overrides itself, only if they are good.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

from common.config import ParamError, read_yaml_file
from common.errors import UserError
from pipeline.common import run_stage
from pipeline.overrides import set_args
from pipeline.params import params_from_raw, with_overrides

# What a failed run prints on stdout: an option dvc does not know, so `dvc exp run $(...)` stops
# with "ERROR: unrecognized arguments: --invalid-preset" instead of running the defaults.
NOT_RUNNABLE = "--invalid-preset"


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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.preset", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Check a preset against params.yaml and print it as `dvc exp run -S` "
                    "arguments (or run them).",
        epilog="safe forms (a bad preset never runs params.yaml's defaults):\n"
               "  python -m pipeline.preset presets/original_study.yaml --run\n"
               "  python -m pipeline.preset presets/original_study.yaml --run -- -n NAME "
               "-S ++detector.epochs=10\n"
               "  dvc exp run $(python -m pipeline.preset presets/original_study.yaml)\n"
               f"    (a bad preset prints {NOT_RUNNABLE}, which dvc refuses)")
    parser.add_argument("preset", type=Path, help="presets/NAME.yaml")
    parser.add_argument("--run", action="store_true",
                        help="run `dvc exp run` with the overrides; arguments after `--` are "
                             "passed on to it (later -S win)")
    return parser


def main(argv: list[str]) -> None:
    # what follows `--` is dvc's, kept out of argparse (it would read dvc's -n / -S as ours)
    ours, dvc_args = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv \
        else (argv, [])
    try:
        args = _parser().parse_args(ours)
        if dvc_args and not args.run:
            raise UserError(f"arguments after -- ({' '.join(dvc_args)}) are for dvc exp run: "
                            "add --run")
        overrides = override_args(read_preset(args.preset))
    except (UserError, SystemExit) as err:
        if not isinstance(err, SystemExit) or err.code:  # --help exits 0 and prints the help
            print(NOT_RUNNABLE)
        raise
    if not args.run:
        print(" ".join(overrides))
        return
    command = [sys.executable, "-m", "dvc", "exp", "run", *overrides, *dvc_args]
    print("running: dvc " + " ".join(command[3:]), file=sys.stderr)
    sys.exit(subprocess.run(command).returncode)


if __name__ == "__main__":
    run_stage(main)
