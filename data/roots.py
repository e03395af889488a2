"""Dataset roots: resolved once, and nothing read through them may resolve outside them.

A symlink inside a dataset tree (an image, a label file, a sub-directory) could point anywhere
while the manifest shows its in-root name. By default such a file is a counted skip and such a
directory an error; symlinked image trees are common, so one param allows them.
"""

from __future__ import annotations

import os
from pathlib import Path

from data.errors import BadInputError, SkipLog
from data.manifest import image_size_or_skip

ALLOW_PARAM = "data.allow_symlinks_outside_root"
ALLOW_HINT = (f"set {ALLOW_PARAM}: true in params.yaml (or pass --allow-symlinks-outside-root) "
              "to read it")


class DatasetRoot:
    """A root directory, resolved once; `outside` says whether a path under it escapes it."""

    def __init__(self, root: Path, allow_outside: bool = False) -> None:
        self.path = Path(root)
        self.resolved = Path(os.path.realpath(self.path))
        self.allow_outside = allow_outside

    def outside(self, path: Path, *, parent_checked: bool = False) -> str | None:
        """None if `path` resolves inside the root (or that is allowed), else why not.

        With parent_checked (its directory was checked already) only a symlink can escape, so
        a plain file costs one lstat instead of resolving every component.
        """
        if self.allow_outside or (parent_checked and not os.path.islink(path)):
            return None
        real = Path(os.path.realpath(path))
        if real == self.resolved or real.is_relative_to(self.resolved):
            return None
        return f"{path} resolves to {real}, outside the root {self.resolved}"

    def check_dir(self, directory: Path) -> Path:
        """`directory`, or a BadInputError if it resolves outside the root."""
        problem = self.outside(directory)
        if problem is not None:
            raise BadInputError(f"{problem}; {ALLOW_HINT}")
        return directory

    def skipped_outside(self, file: Path, log: SkipLog, line: int | None = None) -> bool:
        """True (and an `outside_root` skip) if `file`, in a checked directory, escapes."""
        problem = self.outside(file, parent_checked=True)
        if problem is None:
            return False
        log.skip("outside_root", file, line, f"{problem}; {ALLOW_HINT}")
        return True

    def image_size(self, image: Path, log: SkipLog) -> tuple[int, int] | None:
        """(width, height) of an image in a checked directory, or None with a counted skip:
        `outside_root` if it escapes the root, `bad_image` if its header is unusable."""
        return None if self.skipped_outside(image, log) else image_size_or_skip(image, log)
