"""Render a structured persona (a JSON object) as a short, readable profile section."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

EMPTY_PROFILE = "(no profile information)"


def _label(key: Any) -> str:
    return " ".join(str(key).replace("_", " ").split())


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return " ".join(str(value).split())


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str | list | tuple | dict) and not value)


def _inline(value: Any) -> str:
    """One-line text for a value nested inside a list."""
    if isinstance(value, Mapping):
        parts = [f"{_label(k)}: {_inline(v)}" for k, v in value.items() if not _is_empty(v)]
        return ", ".join(parts)
    if isinstance(value, list | tuple):
        items = [_inline(v) for v in value if not _is_empty(v)]
        nested = any(isinstance(v, Mapping | list | tuple) for v in value)
        return ("; " if nested else ", ").join(i for i in items if i)
    return _scalar(value)


def _flatten(value: Any, path: tuple[str, ...], lines: list[str]) -> None:
    if isinstance(value, Mapping):
        for key, sub in value.items():
            _flatten(sub, (*path, _label(key)), lines)
        return
    if _is_empty(value):
        return
    text = _inline(value)
    if not text:
        return
    if not path:
        lines.append(f"- {text}")
        return
    label = " / ".join(path)
    lines.append(f"- {label[:1].upper()}{label[1:]}: {text}")


def format_persona(persona: Mapping[str, Any] | str | None) -> str:
    """Readable, deterministic profile text: one ``- Key / subkey: value`` line per leaf.

    Nested objects become ``/``-joined labels, lists are joined with commas (``;`` when
    their items are themselves objects), empty values are skipped, key order is kept.
    """
    if persona is None:
        return EMPTY_PROFILE
    if isinstance(persona, str):
        return persona.strip() or EMPTY_PROFILE
    lines: list[str] = []
    if isinstance(persona, list | tuple):
        for item in persona:
            _flatten(item, (), lines)
    else:
        _flatten(persona, (), lines)
    return "\n".join(lines) or EMPTY_PROFILE
