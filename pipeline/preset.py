"""`python -m pipeline.preset FILE [--run [-- DVC_ARGS] | --plan]`: a preset's overrides as
`dvc exp run -S` arguments.

A preset (presets/*.yaml) is a flat mapping of dotted params.yaml keys to values, the shape
`study.set` takes. This checks the params they make (one line naming the key on a bad one, exit
2) and prints `-S ++key=value ...` on one line for `dvc exp run $(python -m pipeline.preset FILE)`.
Values are written as the study writes them (pipeline/overrides.py); a string with a space is
refused, since the shell's word splitting of $(...) would cut the override in two.

A bad preset (or bad flags) also prints NOT_RUNNABLE on stdout: `$(...)` cannot carry an exit
code into `dvc exp run`, and an empty expansion would run params.yaml's defaults. `--run` is the
form that needs no care: it runs `dvc exp run` with the overrides itself, only if they are good.
`--plan` runs nothing: it checks the data the params point at (pipeline/check.py) and prints the
frames, disk and GPU-hours each stage would take (pipeline/plan.py); exit 1 if the data would
fail the run.
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
               "  python -m pipeline.preset presets/original_study.yaml --plan   (cost only)\n"
               f"    (a bad preset prints {NOT_RUNNABLE}, which dvc refuses)")
    parser.add_argument("preset", type=Path, help="presets/NAME.yaml")
    parser.add_argument("--run", action="store_true",
                        help="run `dvc exp run` with the overrides; arguments after `--` are "
                             "passed on to it (later -S win)")
    parser.add_argument("--plan", action="store_true",
                        help="run nothing: check the data and print the frames, disk and "
                             "GPU-hours each stage would take with the preset")
    return parser


def print_plan(path: Path, preset: dict[str, Any], params_yaml: Path = Path("params.yaml")
               ) -> int:
    """The preset's plan on the data found; 1 (and the check's report) if the data would fail
    the run."""
    from pipeline.check import check_real_data, format_check  # the data readers: --plan only
    from pipeline.plan import format_plan, plan

    params = params_from_raw(with_overrides(read_yaml_file(params_yaml), preset))
    check = check_real_data(params)
    if not check.ok:
        print(format_check(check))
        return 1
    cfg = params.detector
    title = (f"plan: {path} on {params_yaml} (translator {params.translator}, weathers "
             f"{', '.join(params.weathers)}; detector {cfg.model} at {cfg.imgsz} px, "
             f"{cfg.epochs} epochs)")
    print(format_plan(plan(params, check), title))
    unused = sorted({key.split(".")[1] for key in preset if key.startswith("translators.")
                     and key.split(".")[1] not in ("device", params.translator)})
    if unused:  # e.g. CycleGAN's reference sizes while params.yaml chooses cut
        print(f"note: the preset sets translators.{', translators.'.join(unused)}.* but the "
              f"translator is {params.translator}: those settings go unused (add "
              f"`translator: {unused[0]}` to the preset, or -S translator={unused[0]})")
    return 0


def main(argv: list[str]) -> None:
    # what follows `--` is dvc's, kept out of argparse (it would read dvc's -n / -S as ours)
    ours, dvc_args = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv \
        else (argv, [])
    try:
        args = _parser().parse_args(ours)
        if dvc_args and not args.run:
            raise UserError(f"arguments after -- ({' '.join(dvc_args)}) are for dvc exp run: "
                            "add --run")
        if args.plan and (args.run or dvc_args):
            raise UserError("--plan runs nothing: leave out --run and what follows --")
        preset = read_preset(args.preset)
        overrides = override_args(preset)
    except (UserError, SystemExit) as err:
        if not isinstance(err, SystemExit) or err.code:  # --help exits 0 and prints the help
            print(NOT_RUNNABLE)
        raise
    if args.plan:
        sys.exit(print_plan(args.preset, preset))
    if not args.run:
        print(" ".join(overrides))
        return
    command = [sys.executable, "-m", "dvc", "exp", "run", *overrides, *dvc_args]
    print("running: dvc " + " ".join(command[3:]), file=sys.stderr)
    sys.exit(subprocess.run(command).returncode)


if __name__ == "__main__":
    run_stage(main)
