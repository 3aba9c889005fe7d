"""The one error type for bad user input.

Raise :class:`UserError` with one line that names the input and says how to fix it. The ``labkit`` command
prints it as ``labkit <command>: error: <message>`` and exits with code 2, without a traceback
(``labkit --debug ...`` shows the traceback). A notebook that fails while running is not a user error: its
command exits with code 1.
"""
from __future__ import annotations


class UserError(ValueError):
    """Bad input from the user (a file, a parameter, an option): one line naming the input and the fix."""


#: Set by ``labkit --debug``: handlers that report errors themselves (``labkit eval``) re-raise instead.
DEBUG = False
