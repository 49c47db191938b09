"""Per-field checks shared by the loaders.

Each ``as_*`` function returns the cleaned value or raises :class:`FieldProblem`;
:class:`RowCheck` runs them over one row and records every failure, so one load
reports all the problems of a file at once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection
from typing import Any, TypeVar

from cpe.data.errors import ErrorList

T = TypeVar("T")


#: What ``json.loads`` raises besides JSONDecodeError: ValueError for an integer of more
#: digits than ``sys.get_int_max_str_digits()``, RecursionError for deep nesting.
JSON_ERRORS = (ValueError, RecursionError)
#: Deeper personas are refused: the profile renderer recurses once per level.
MAX_PERSONA_DEPTH = 32
SURROGATE_MESSAGE = "not valid Unicode: an unpaired surrogate escape such as \\ud800"

_SURROGATE = re.compile("[\ud800-\udfff]")


class FieldProblem(Exception):
    """One field of one row is invalid; the caller knows the file and line."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def json_type(value: Any) -> str:
    """The JSON name of a value's type, for messages about JSON data."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    names = {dict: "object", list: "array", tuple: "array", str: "string", int: "integer"}
    for kind, name in names.items():
        if isinstance(value, kind):
            return name
    if isinstance(value, float):
        return "number"
    return type(value).__name__


def json_problem(exc: Exception) -> str:
    """One line on why ``json.loads`` failed (an exception from :data:`JSON_ERRORS`)."""
    if isinstance(exc, json.JSONDecodeError):
        return f"invalid JSON: {exc.msg} (column {exc.colno})"
    if isinstance(exc, RecursionError):
        return "invalid JSON: nested too deeply"
    return f"invalid JSON: {str(exc).split(':')[0]}"


def surrogate_path(value: Any) -> str | None:
    """The dotted path of the first string holding an unpaired surrogate, else None
    ("" for the value itself).

    JSON's ``\\ud800`` escapes decode into such strings; no tokenizer or UTF-8 file takes
    them, so they must stop at the loader instead of mid-run. Iterative: parsed JSON may
    nest nearly as deep as the recursion limit.
    """
    pending = [("", value)]
    while pending:
        path, item = pending.pop()
        if isinstance(item, str) and _SURROGATE.search(item):
            return path
        if isinstance(item, list):
            pending.extend((f"{path}[{i}]", child) for i, child in enumerate(item))
        elif isinstance(item, dict):
            for key, child in item.items():
                where = f"{path}.{key}" if path else str(key)
                if _SURROGATE.search(str(key)):
                    return _printable(where)
                pending.append((where, child))
    return None


def _printable(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def quoted(value: str, limit: int = 80) -> str:
    """A value from the data, quoted for a one-line message: escaped when it holds line
    breaks or other unprintable characters, shortened when long."""
    shown = value if value.isprintable() else repr(value)[1:-1]
    if len(shown) > limit:
        shown = f"{shown[: limit - 3]}..."
    return f"'{shown}'"


def as_id(value: Any, field: str = "id") -> str:
    """An identifier: a non-empty string, or an integer turned into one."""
    if value is None:
        raise FieldProblem(field, "missing")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise FieldProblem(field, f"must be a string or integer, got {json_type(value)}")
    if not value.strip():
        raise FieldProblem(field, "must not be empty")
    return value


def as_optional_id(value: Any, field: str) -> str | None:
    return None if value is None else as_id(value, field)


def as_text(value: Any, field: str) -> str:
    """Required text such as a question: a string with something besides whitespace."""
    if value is None:
        raise FieldProblem(field, "missing")
    if not isinstance(value, str):
        raise FieldProblem(field, f"must be a string, got {json_type(value)}")
    if not value.strip():
        raise FieldProblem(field, "must not be empty or whitespace only")
    return value


def as_optional_text(value: Any, field: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise FieldProblem(field, f"must be a string, got {json_type(value)}")
    return value


def as_persona(value: Any, field: str = "persona") -> dict[str, Any]:
    """A persona object; parquet and HF columns may hold it as a JSON string."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except JSON_ERRORS:
            raise FieldProblem(
                field, "must be a JSON object, got a string that is not valid JSON"
            ) from None
        inner = surrogate_path(value)
        if inner is not None:
            raise FieldProblem(field, f"{SURROGATE_MESSAGE} (at {inner or 'the top'})")
        if not isinstance(value, dict):
            raise FieldProblem(
                field, f"must be a JSON object, got a string holding {json_type(value)}"
            )
    if not isinstance(value, dict):
        raise FieldProblem(field, f"must be a JSON object, got {json_type(value)}")
    if nesting_depth(value) > MAX_PERSONA_DEPTH:
        raise FieldProblem(field, f"nested deeper than {MAX_PERSONA_DEPTH} levels")
    return dict(value)


def nesting_depth(value: Any) -> int:
    """Levels of objects and arrays in a JSON value (0 for a scalar); iterative."""
    deepest, pending = 0, [(0, value)]
    while pending:
        depth, item = pending.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth + 1)
            children = item.values() if isinstance(item, dict) else item
            pending.extend((depth + 1, child) for child in children)
    return deepest


def collect_meta(data: dict[str, Any], reserved: Collection[str]) -> dict[str, Any]:
    """Keys a row carries beyond the record fields, merged over its own ``meta`` object.

    Null values are dropped: columnar formats give every row every column, so a
    null there usually means the row never had that key.
    """
    meta: dict[str, Any] = {}
    nested = data.get("meta")
    if nested is not None:
        if not isinstance(nested, dict):
            raise FieldProblem("meta", f"must be a JSON object, got {json_type(nested)}")
        meta.update(nested)
    for key, value in data.items():
        if key not in reserved and key != "meta" and value is not None:
            meta[key] = value
    return meta


class IdRegistry:
    """Remembers where each id first appeared, to name it in duplicate errors."""

    def __init__(self, field: str, unit: str) -> None:
        self.field = field
        self.unit = unit
        self._first_seen: dict[str, int] = {}

    def claim(self, value: str, line: int) -> None:
        first = self._first_seen.setdefault(value, line)
        if first != line:
            raise FieldProblem(
                self.field,
                f"duplicate {self.field} {quoted(value)} (first seen on {self.unit} {first})",
            )


class RowCheck:
    """Runs field checks for one row, recording each failure and carrying on."""

    def __init__(self, errors: ErrorList, line: int) -> None:
        self.errors = errors
        self.line = line
        self.failed_fields: set[str] = set()

    @property
    def failed(self) -> bool:
        return bool(self.failed_fields)

    def __call__(self, check: Callable[..., T], *args: Any) -> T | None:
        try:
            return check(*args)
        except FieldProblem as problem:
            self.failed_fields.add(problem.field)
            self.errors.add(problem.message, line=self.line, field=problem.field)
            return None
