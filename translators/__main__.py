"""Command line for the translators (the DVC stages call the same functions).

    python -m translators summary cyclegan [--size H W] [--set ngf=8 ...]
    python -m translators train --translator cyclegan --source DIR --target DIR --out DIR \
        [--set key=value ...] [--seed 0] [--device auto]
    python -m translators translate --translator cyclegan --model DIR --input DIR --output DIR \
        [--device auto] [--batch-size 4]
"""

from __future__ import annotations

import argparse
import inspect
import sys
from pathlib import Path
from typing import Any

import torch

import translators
from common.config import ParamError, build, parse_value
from common.errors import UserError
from common.runtime import resolve_device, seed_everything
from translators.cyclegan.networks import count_parameters
from translators.io import list_images, translate_files

TORCHRUN_HELP = """multi-GPU (DDP, one process per GPU; on CPU it uses gloo):
  torchrun --standalone --nproc_per_node=4 -m translators train --translator cyclegan \\
      --source SIM_DIR --target REAL_DIR --out OUT_DIR --set batch_size=1
each GPU trains on its share of every epoch (the effective batch is batch_size × GPUs)."""


class UsageError(UserError):
    """A bad command line; printed as one line."""


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        args.run(args)
    except UserError as err:  # anything else is a bug: it keeps its traceback
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m translators", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(required=True, dest="command")
    # action=append: `--set a=1 --set b=2` keeps both (as `dvc exp run -S a=1 -S b=2` does)
    sets = {"metavar": "KEY=VALUE", "nargs": "+", "action": "append", "default": [],
            "help": "override params of the translator's Config (values read as params.yaml "
                    "reads them); repeat or list several"}

    summary = commands.add_parser("summary", help="parameters and GMACs of a translator's nets")
    summary.add_argument("name", choices=translators.names())
    summary.add_argument("--size", nargs=2, type=int, metavar=("H", "W"),
                         help="input size (default: crop_size × crop_size)")
    summary.add_argument("--set", **sets)
    summary.set_defaults(run=_summary)

    train = commands.add_parser("train", help="fit a translator on two image directories",
                                epilog=TORCHRUN_HELP,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("--translator", required=True, choices=translators.names())
    train.add_argument("--source", required=True, type=Path, help="sim frames (domain A)")
    train.add_argument("--target", required=True, type=Path, help="real frames (domain B)")
    train.add_argument("--out", required=True, type=Path)
    train.add_argument("--set", **sets)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", default="auto", help="auto | cpu | cuda | a GPU index")
    train.add_argument("--checkpoint-dir", type=Path,
                       help="where resumable checkpoints live (default OUT/checkpoints)")
    train.set_defaults(run=_train)

    translate = commands.add_parser("translate", help="translate a directory of frames")
    translate.add_argument("--translator", required=True, choices=translators.names())
    translate.add_argument("--model", required=True, type=Path, help="the `train --out` dir")
    translate.add_argument("--input", required=True, type=Path)
    translate.add_argument("--output", required=True, type=Path)
    translate.add_argument("--device", default="auto", help="auto | cpu | cuda | a GPU index")
    translate.add_argument("--batch-size", type=int, default=4)
    translate.set_defaults(run=_translate)
    return parser


def _summary(args: argparse.Namespace) -> None:
    from torch.utils.flop_counter import FlopCounterMode

    translator = translators.get(args.name)
    cfg = config_from_sets(args.name, _flat(args.set))
    networks = getattr(translator, "networks", None)
    if networks is None:
        print(f"{args.name}: no trainable networks")
        return
    crop = getattr(cfg, "crop_size", 256)
    h, w = args.size or (crop, crop)
    print(f"{args.name} at {h}×{w} (MACs = torch FlopCounterMode flops / 2)")
    print(f"{'net':<28} {'params':>12} {'GMACs':>9}")
    with torch.device("meta"):  # shapes only: counts any size instantly, allocates nothing
        nets = networks(cfg)
    for label, net in nets.items():
        multiple = getattr(net, "pad_multiple", 1)
        x = torch.zeros(1, 3, h + (-h % multiple), w + (-w % multiple), device="meta")
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            net.eval()(x)
        params = count_parameters(net)
        print(f"{label:<28} {params:>12,} {counter.get_total_flops() / 2e9:>9.3f}")


def _train(args: argparse.Namespace) -> None:
    translator = translators.get(args.translator)
    cfg = config_from_sets(args.translator, _flat(args.set))
    source, target = list_images(args.source), list_images(args.target)
    seed_everything(args.seed)  # what the pipeline does before fit
    extra: dict[str, Any] = {}
    parameters = inspect.signature(translator.fit).parameters
    if "device" in parameters:
        extra["device"] = resolve_device(args.device, "--device")
    if args.checkpoint_dir is not None:
        if "checkpoint_dir" not in parameters:
            raise UsageError(f"translator {args.translator} has no checkpoints")
        extra["checkpoint_dir"] = args.checkpoint_dir
    translator.fit(source, target, args.out, cfg, **extra)


def _flat(groups: list[list[str]]) -> list[str]:
    return [pair for group in groups for pair in group]


def _translate(args: argparse.Namespace) -> None:
    device = resolve_device(args.device, "--device")
    translator = translators.get(args.translator)
    translator.load(args.model, device)
    inputs = list_images(args.input)
    names = [str(p.relative_to(args.input)) for p in inputs]
    outputs = translate_files(translator, inputs, args.output, batch_size=args.batch_size,
                              device=device, names=names)
    print(f"translated {len(outputs)} frames into {args.output}")


def config_from_sets(name: str, pairs: list[str]) -> Any:
    """The translator's Config with `key=value` overrides, each value read as YAML exactly as
    params.yaml reads it and checked by the same builder; a dotted key reaches a nested section
    (`--set fog.alpha_coef=0.1`). Later pairs win, as with repeated `dvc exp run -S`."""
    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--set {pair!r}: expected KEY=VALUE")
        node = overrides
        *sections, last = key.split(".")
        for section in sections:
            node = node.setdefault(section, {})
            if not isinstance(node, dict):
                raise UsageError(f"--set {key}: {section} is set to a value above")
        node[last] = parse_value(text, f"--set {key}")
    try:
        return build(translators.config_class(name), overrides)
    except ParamError as err:
        raise UsageError(f"--set {err} (translator {name})") from None


if __name__ == "__main__":
    sys.exit(main())
