"""Command-line errors a person can read: one line naming the problem, non-zero exit.

Every entry point runs its work through :func:`friendly_errors`: an exception becomes
``<command>: error: <message>`` on stderr (the message of inpaintzoo's own errors names the
problem and the fix) and exit status 1; the Python traceback is shown only when asked for with
``HYDRA_FULL_ERROR=1`` or ``INPAINTZOO_DEBUG=1``. ``KeyboardInterrupt`` exits with 130.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["debug_requested", "error_line", "friendly_errors"]

F = TypeVar("F", bound=Callable[..., Any])

#: exception types whose name adds nothing to a message that already says what happened
_PLAIN = {"ValueError", "RuntimeError", "FileNotFoundError", "Exception"}


def debug_requested() -> bool:
    """Whether the user asked for tracebacks (``HYDRA_FULL_ERROR=1`` or ``INPAINTZOO_DEBUG=1``)."""
    flags = ("HYDRA_FULL_ERROR", "INPAINTZOO_DEBUG")
    return any(os.environ.get(flag, "") not in ("", "0") for flag in flags)


def error_line(err: BaseException) -> str:
    """One line for ``err``: its message with newlines folded, prefixed by its type when the
    type says something the message may not (``MissingWeightsError``, ``StageRequirementError``)."""
    message = " ".join(str(err).split()) or repr(err)
    name = type(err).__name__
    if name in _PLAIN or message.startswith(name):
        return message
    return f"{name}: {message}"


def friendly_errors(function: F) -> F:
    """Decorate an entry point's work function (see the module docstring)."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except KeyboardInterrupt:
            print(f"{_program()}: interrupted", file=sys.stderr)
            sys.exit(130)
        except Exception as err:
            if debug_requested():
                raise
            print(f"{_program()}: error: {error_line(err)}", file=sys.stderr)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


def _program() -> str:
    return Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "inpaintzoo"
