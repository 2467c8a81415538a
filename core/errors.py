"""The one exception type for bad user input: it always names the file (or item) and the problem."""
from __future__ import annotations

from os import PathLike


class InputError(ValueError):
    """Raised for input a user supplied that cannot be used as it is (file, calibration, checkpoint, ...)."""

    def __init__(self, source: str | PathLike | None, problem: str):
        self.source = None if source is None else str(source)
        self.problem = problem
        super().__init__(f"{self.source}: {problem}" if self.source else problem)
