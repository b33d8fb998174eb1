"""Errors a user can fix: printed as one line by the entry points, never as a traceback."""
from __future__ import annotations

import os


class UserError(ValueError):
    """Wrong input or configuration; the message names the thing and the fix."""


class RunFolderError(UserError):
    """The run folder belongs to another run (finished or still running): nothing may be written into it."""


_OFF = ("", "0", "false", "no", "off", "n", "f")


def env_flag(name: str) -> bool:
    """An environment switch such as ``GMF_DEBUG``: ``0``, ``false``, ``no``, ``off`` or empty are off, the rest on.

    Reading the string's truthiness would make ``GMF_DEBUG=0`` mean "on".
    """
    return os.environ.get(name, "").strip().lower() not in _OFF
