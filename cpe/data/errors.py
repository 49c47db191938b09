"""Errors raised by the data loaders, each pointing at a file, line and field."""

from __future__ import annotations

import os
from collections.abc import Sequence

MAX_SHOWN_ERRORS = 20


class DataError(Exception):
    """A problem with a data file, rendered as ``path:line: field 'f': message``.

    ``line`` is 1-based (for parquet and Hugging Face datasets it is the row number);
    ``path``, ``line`` and ``field`` are None when they do not apply.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | os.PathLike[str] | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = None if path is None else os.fspath(path)
        self.line = line
        self.field = field

    def __str__(self) -> str:
        parts = []
        location = _location(self.path, self.line)
        if location:
            parts.append(location)
        if self.field is not None:
            parts.append(f"field '{self.field}'")
        parts.append(self.message)
        return ": ".join(parts)

    def __reduce__(self):
        # Keyword-only arguments are lost by the default pickling, and Ray pickles
        # exceptions raised inside actors.
        return (_rebuild, (type(self), self.message, self.path, self.line, self.field))


class DataValidationError(DataError):
    """Every problem found in one load, reported together instead of one per run."""

    def __init__(self, errors: Sequence[DataError]) -> None:
        if not errors:
            raise ValueError("DataValidationError needs at least one error")
        self.errors = list(errors)
        paths = {error.path for error in self.errors}
        path = paths.pop() if len(paths) == 1 else None
        count = len(self.errors)
        super().__init__(f"{count} data error{'' if count == 1 else 's'}", path=path)

    def __str__(self) -> str:
        where = "" if self.path is None else f" in {self.path}"
        lines = [f"{self.message}{where}:"]
        lines.extend(f"  {error}" for error in self.errors[:MAX_SHOWN_ERRORS])
        hidden = len(self.errors) - MAX_SHOWN_ERRORS
        if hidden > 0:
            lines.append(f"  ... and {hidden} more ({len(self.errors)} in total)")
        return "\n".join(lines)

    def __reduce__(self):
        return (type(self), (self.errors,))


class ErrorList:
    """Collects the problems of one file so they can be raised together."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.errors: list[DataError] = []

    def add(self, message: str, *, line: int | None = None, field: str | None = None) -> None:
        self.errors.append(DataError(message, path=self.path, line=line, field=field))

    def __len__(self) -> int:
        return len(self.errors)

    def raise_if_any(self) -> None:
        if self.errors:
            raise DataValidationError(self.errors)


def _location(path: str | None, line: int | None) -> str:
    if path is None:
        return "" if line is None else f"line {line}"
    return path if line is None else f"{path}:{line}"


def _rebuild(cls, message, path, line, field):
    return cls(message, path=path, line=line, field=field)
