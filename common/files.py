"""Atomic writes: a reader (or a later stage after a kill) never sees half a file or directory.
Also the one file hash (`file_sha256`) the stages record and compare.

Everything is written to a temp name in the destination's own directory (so the final rename is
atomic on one filesystem), and the temp is removed if writing fails. A SIGKILL gives no chance to
clean up, so the next write to the same destination first removes what a killed one left: one
writer per destination at a time is assumed (DVC runs one stage per output at a time).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temp file path next to `final` (same suffix, so encoders that look at it work);
    after the block it replaces `final` in one rename, or is deleted if the block failed."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(final.parent, f".{final.stem}.tmp-*{final.suffix}")
    tmp = final.with_name(f".{final.stem}.tmp-{os.getpid()}{final.suffix}")
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: Path, text: str) -> None:
    """UTF-8 with \\n line ends on every platform."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any, *, indent: int | None = 2,
                      sort_keys: bool = True) -> None:
    """Deterministic JSON (sorted keys by default) with a final newline; NaN is refused, since
    DVC and most JSON readers reject it."""
    text = json.dumps(obj, indent=indent, sort_keys=sort_keys, allow_nan=False)
    atomic_write_text(path, text + "\n")


def file_sha256(path: Path) -> str:
    """The sha256 hex digest of a file, read in 1 MiB blocks (checkpoints are large)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_torch_save(obj: Any, path: Path) -> None:
    """torch.save, atomically. Serialised in memory first: torch names the archive inside the
    file after the file, and a temp name (with a pid) would make equal objects differ in bytes."""
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


@contextlib.contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Yield a fresh temp dir next to `final`; on success it replaces `final` in one rename.

    A killed or failed block leaves `final` as it was (or absent), never half-written.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(final.parent, f".{final.name}.tmp-*")
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


def _remove_leftovers(directory: Path, pattern: str) -> None:
    """Temp files or dirs of an earlier, killed write to the same destination."""
    for stale in directory.glob(pattern):
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)
