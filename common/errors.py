"""The one user-error type.

Code raises a `UserError` (or a subclass) on purpose, for input the user can fix: a bad param, a
missing or malformed file. Its message is one line that names the file or key at fault. Entry
points (stages, CLIs) print such errors as one line and exit with code 2; any other exception is a
bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(ValueError):
    """Bad input or params; the message names the file, line or key at fault."""


class MissingInputError(UserError, FileNotFoundError):
    """A file or directory the user must provide (or an earlier stage must write) is absent.
    Also a FileNotFoundError, so code that handles missing files keeps working."""
