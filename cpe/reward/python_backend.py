"""A GRM backed by a plain Python function, for rule-based rewards and tests.

The function is named in ``grm.python_function`` as ``"package.module:function"`` and
called as ``fn(persona: dict, question: str, answer: str) -> str``, returning
GRM-format text (``<critique>…</critique><scores>…</scores>``).
"""

from __future__ import annotations

import pkgutil
from collections.abc import Callable, Sequence
from typing import Any

from cpe.reward.base import GRMBackend, GRMError, Item, Reply

GRMFunction = Callable[[dict[str, Any], str, str], str]
CONFIG_KEY = "grm.python_function"


def load_function(spec: str) -> GRMFunction:
    """Resolve ``"package.module:function"``; errors name the config key and the problem."""
    module_name, sep, attr = (spec or "").partition(":")
    if not sep or not module_name or not attr:
        raise GRMError(f"{CONFIG_KEY}={spec!r} must look like 'package.module:function'")
    try:
        target = pkgutil.resolve_name(spec)
    except ImportError as exc:
        raise GRMError(
            f"{CONFIG_KEY}={spec!r}: cannot import module {module_name!r}: {exc}"
        ) from exc
    except AttributeError as exc:
        raise GRMError(
            f"{CONFIG_KEY}={spec!r}: module {module_name!r} has no attribute {attr!r}"
        ) from exc
    except ValueError as exc:
        raise GRMError(f"{CONFIG_KEY}={spec!r} is not a valid name: {exc}") from exc
    if not callable(target):
        raise GRMError(f"{CONFIG_KEY}={spec!r}: {attr!r} is not callable")
    return target


def _describe(fn: Callable[..., Any]) -> str:
    return f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', repr(fn))}"


class PythonBackend(GRMBackend):
    """Runs ``fn(persona, question, answer)`` for each item; temperature is ignored.

    An exception or a non-string return is a bug in the user's function, not a bad
    sample, so it propagates (naming the function) instead of becoming an invalid result.
    """

    def __init__(self, fn: GRMFunction | str):
        self.fn = load_function(fn) if isinstance(fn, str) else fn
        self.name = fn if isinstance(fn, str) else _describe(fn)

    def generate(self, items: Sequence[Item], temperature: float) -> list[Reply]:
        return [
            Reply(self._call(record.persona, record.question, answer)) for record, answer in items
        ]

    def _call(self, persona: dict[str, Any], question: str, answer: str) -> str:
        try:
            text = self.fn(persona, question, answer)
        except Exception as exc:
            raise GRMError(
                f"{CONFIG_KEY} function {self.name} raised {type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(text, str):
            raise GRMError(
                f"{CONFIG_KEY} function {self.name} returned {type(text).__name__}, expected str"
            )
        return text

    def __repr__(self) -> str:
        return f"PythonBackend({self.name})"
