"""Bad-input handling shared by every reader: one error type, and the skip log behind report.json.

Readers never drop data silently: a record that cannot be used is either a counted skip (with the
file, the line and what was wrong) or, when nothing sensible can be read at all, a BadInputError
whose message names the file or field.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from common.errors import UserError

MAX_EXAMPLES = 20  # per skip reason: enough to find the problem, small enough for report.json


class BadInputError(UserError):
    """Input that cannot be read at all (missing labels file, JSON of the wrong shape, ...)."""


class BadImageError(BadInputError):
    """An image file that is missing, unreadable, truncated or too large to decode.

    The one image error of the project: the readers count it as a skip, the translators stop
    with it (both name the file).
    """


class SkipLog:
    """Counts skips by reason (with up to MAX_EXAMPLES file/line examples) and other tallies."""

    def __init__(self) -> None:
        self.skipped: dict[str, dict[str, Any]] = {}
        self.dropped_by_class_map: Counter[str] = Counter()
        self.clipped = 0
        self.files_read = 0

    def skip(self, reason: str, file: str | Path, line: int | None = None,
             detail: str = "") -> None:
        entry = self.skipped.setdefault(reason, {"count": 0, "examples": []})
        entry["count"] += 1
        if len(entry["examples"]) < MAX_EXAMPLES:
            entry["examples"].append({"file": str(file), "line": line, "detail": detail})

    def count(self, reason: str) -> int:
        return self.skipped.get(reason, {}).get("count", 0)

    def report(self, dataset: str, images_kept: int, objects_kept: int, **extra: Any) -> dict:
        """The report.json dict; keys sorted so that equal runs give byte-identical files."""
        return {
            "dataset": dataset,
            "files_read": self.files_read,
            "images_kept": images_kept,
            "objects_kept": objects_kept,
            "skipped": {reason: self.skipped[reason] for reason in sorted(self.skipped)},
            "skipped_total": sum(entry["count"] for entry in self.skipped.values()),
            "clipped": self.clipped,
            "dropped_by_class_map": dict(sorted(self.dropped_by_class_map.items())),
            **extra,
        }
