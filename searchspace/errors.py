"""The roots of the errors hwnas raises on purpose, and the exit code the ``hwnas`` command gives each.

Every tier raises them (a config key in ``searchspace``, a storage in ``results``, a picked point, ...), so
they live in the lowest one; ``hwnas`` re-exports them as its public exception hierarchy and the command
line turns any of them into one line on stderr and ``exit_code``:

* ``HwnasError``: the base. ``except hwnas.HwnasError`` catches every error hwnas raises on purpose.
* ``InputError`` (also a ``ValueError``): bad input, found before anything ran or was written: a config
  key or value, a profile, a file that is not what it should be, a storage that cannot be used, an
  experiment folder that holds results or is in use. Exit code 2.
* ``NotFoundError`` (an ``InputError`` and a ``FileNotFoundError``): a file, folder or experiment that
  does not exist. Exit code 2.
* ``SaveError`` (also an ``OSError``): results that could not be written (a storage that went away
  during the run, a full disk). Exit code 3.

Plain ``ValueError`` / ``OSError`` raised by code underneath (the standard library, pyarrow) keep the same
codes on the command line: 2 for a ``ValueError`` or a file that is missing or unreadable, 3 for another
``OSError`` or an Arrow error. No torch, no Ray.
"""
from __future__ import annotations

from typing import ClassVar

#: the ``hwnas`` command's exit codes (docs: Reference, "Errors and exit codes")
EXIT_OK = 0
EXIT_NOT_COMPLETED = 1  # hwnas search: the tables are written, some trial failed, is incomplete or was interrupted
EXIT_BAD_INPUT = 2  # InputError: bad input found before anything ran
EXIT_NOT_SAVED = 3  # SaveError: results that could not be written
EXIT_INTERRUPTED = 130  # Ctrl-C / SIGTERM before anything could be saved (128 + SIGINT)


class HwnasError(Exception):
    """Base of every error hwnas raises on purpose; its message is one line naming the culprit."""

    #: what the ``hwnas`` command exits with when this error ends it
    exit_code: ClassVar[int] = EXIT_BAD_INPUT


class InputError(HwnasError, ValueError):
    """Bad input, found before anything ran or was written (exit code 2): the message names the key, value
    or file and what would be accepted."""

    exit_code: ClassVar[int] = EXIT_BAD_INPUT


class NotFoundError(FileNotFoundError, InputError):
    """A file, folder or experiment that does not exist (exit code 2); also a ``FileNotFoundError``."""

    exit_code: ClassVar[int] = EXIT_BAD_INPUT


class SaveError(HwnasError, OSError):
    """Results that could not be written to their storage after the checks passed (exit code 3): the
    message says where and why."""

    exit_code: ClassVar[int] = EXIT_NOT_SAVED


__all__ = ["EXIT_BAD_INPUT", "EXIT_INTERRUPTED", "EXIT_NOT_COMPLETED", "EXIT_NOT_SAVED", "EXIT_OK", "HwnasError",
           "InputError", "NotFoundError", "SaveError"]
