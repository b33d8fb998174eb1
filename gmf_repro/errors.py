"""Errors a user can fix: printed as one line by the entry points, never as a traceback."""


class UserError(ValueError):
    """Wrong input or configuration; the message names the thing and the fix."""
