"""The one exception type for bad user input: it always names the file (or item) and the problem."""
from __future__ import annotations

from contextlib import contextmanager
from os import PathLike, sep
from typing import Iterator


class InputError(ValueError):
    """Raised for input a user supplied that cannot be used as it is (file, calibration, checkpoint, ...)."""

    def __init__(self, source: str | PathLike | None, problem: str):
        self.source = None if source is None else str(source)
        self.problem = problem
        super().__init__(f"{self.source}: {problem}" if self.source else problem)


# What a reader's parsing raises when a file's structure or values are not what the format says: at a reader's
# boundary these become an InputError that names the file.
MALFORMED = (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError, OverflowError, SystemError,
             UnicodeError)


@contextmanager
def reading(source: str | PathLike, what: str) -> Iterator[None]:
    """Turn any `MALFORMED` exception raised while reading ``source`` into an `InputError` naming it (and what
    was being read); an InputError raised inside passes unchanged if it names a file, and gets ``source`` put
    before it if it names only an item (a camera, say)."""
    try:
        yield
    except InputError as exc:
        if exc.source is None or sep not in exc.source:
            raise InputError(source, str(exc)) from exc
        raise
    except MALFORMED as exc:
        detail = str(exc).splitlines()[0] if str(exc) else ""
        raise InputError(source, f"malformed {what} ({type(exc).__name__}{': ' + detail if detail else ''})") from exc
