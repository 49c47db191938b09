"""Key lookup shared by every registry: unknown keys fail loudly with the valid ones."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

T = TypeVar("T")


def choose(table: Mapping[str, T], key: str, what: str) -> T:
    """Return ``table[key]``; raise ValueError listing the valid keys if it is absent."""
    try:
        return table[key]
    except (KeyError, TypeError):
        valid = ", ".join(sorted(table))
        raise ValueError(f"unknown {what} {key!r}; valid: {valid}") from None
