"""User-facing errors: one sentence naming the key or file and what is expected."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)


class BenchError(Exception):
    """A mistake in user input (config value, file, name). Printed as one line, no traceback."""


class ConfigError(BenchError):
    """An invalid configuration value."""

    def __init__(self, key: str, value: object, expected: str):
        self.key, self.value, self.expected = key, value, expected
        super().__init__(f"{key}={value!r}: expected {expected}")


def os_error_line(err: OSError) -> str:
    """A file-system error as one line: the file, then what the system said."""
    return f"{err.filename}: {err.strerror or err}" if err.filename else str(err.strerror or err)


def exit_on_user_error(fn: F) -> F:
    """Wrap a console entry point so a `BenchError` prints one line and exits with status 2, and a
    file-system refusal (full disk, read-only folder) one line naming the file, with status 1."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except BenchError as err:
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(2) from None
        except OSError as err:
            print(f"error: {os_error_line(err)}", file=sys.stderr)
            raise SystemExit(1) from None

    return wrapper  # type: ignore[return-value]
