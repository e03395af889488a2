"""The one error type of the evaluation package."""

from __future__ import annotations

from common.errors import UserError


class EvalInputError(UserError):
    """Input that cannot be evaluated; the message names the file, frame and field at fault."""
