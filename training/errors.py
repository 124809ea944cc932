"""The two kinds of error a training command reports, and the exit status of each.

- ``UsageError`` (exit 2): what the user asked for is wrong: an argument, a config key, a value of the
  wrong type or out of range. The message names the file or flag, the field and what was expected.
- ``RunError`` (exit 1): the request was well-formed but cannot be carried out: data that is missing or
  unreadable, a model file that is not a model, an output directory that cannot be written, a run that
  failed. The message names the file and what is wrong with it.

``training.cli`` turns either into one ``error: ...`` line on stderr, never a traceback (its docstring gives
the rule for other exceptions: ``ValueError`` and ``FileNotFoundError`` exit 2, other ``OSError`` exit 1).
``UsageError`` derives from ``ValueError`` so config checks that raise ``ValueError`` stay usage errors.
"""

from __future__ import annotations


class UsageError(ValueError):
    """A bad argument, config key, type or value (exit status 2)."""

    exit_code = 2


class RunError(RuntimeError):
    """Valid input that cannot be used, or a run that failed (exit status 1)."""

    exit_code = 1
