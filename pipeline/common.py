"""What every stage module shares: output paths, atomic outputs, seeding, clean errors."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

OUTPUTS = Path("outputs")
INGEST = OUTPUTS / "ingest"
TRANSLATORS = OUTPUTS / "translators"
TRANSLATOR_CHECKPOINTS = OUTPUTS / "translator_checkpoints"  # persistent: survives a killed run
TRANSLATE = OUTPUTS / "translate"
DATASET = OUTPUTS / "dataset"
DETECTOR = OUTPUTS / "detector"
PREDICT = OUTPUTS / "predict"
EVAL = OUTPUTS / "eval"
PLOTS = OUTPUTS / "plots"


def run_stage(main: Callable[[list[str]], None]) -> None:
    """Run a stage; bad input or params end it with one clear line and exit code 2."""
    try:
        main(sys.argv[1:])
    except (ValueError, FileNotFoundError, NotADirectoryError, PermissionError) as err:
        name = Path(sys.argv[0]).stem
        print(f"error in stage {name}: {err}", file=sys.stderr)
        sys.exit(2)


@contextlib.contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Yield a fresh temp dir next to `final`; on success it replaces `final` in one rename.

    A killed or failed stage leaves `final` as it was (or absent), never half-written.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        yield tmp
        if final.is_symlink() or final.is_file():
            final.unlink()
        elif final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
