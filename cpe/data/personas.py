"""Persona (profile) files: user_id -> persona object.

Accepted layouts:

* rows (JSONL, parquet or a saved HF dataset) of ``{"user_id": ..., "persona": {...}}``,
  with the object under ``profile`` instead of ``persona`` also accepted;
* a ``.json`` file holding one object that maps each user_id to its persona;
* ``layout="line_numbered"`` (PersonaFeedback's ``all_personas.jsonl``): one persona
  object per line with no id field; the user_id is the 1-based line number, so blank
  lines in the middle of the file are errors (they would hide a shifted numbering).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cpe.data.errors import DataError, ErrorList
from cpe.data.fields import (
    JSON_ERRORS,
    SURROGATE_MESSAGE,
    FieldProblem,
    IdRegistry,
    RowCheck,
    as_id,
    as_persona,
    quoted,
    surrogate_path,
)
from cpe.data.sources import Row, read_rows

PERSONA_KEYS = ("persona", "profile")
KEYED = "keyed"  # rows with a user_id, or a .json user_id -> persona mapping
LINE_NUMBERED = "line_numbered"  # one persona per line; the line number is the user_id
LAYOUTS = (KEYED, LINE_NUMBERED)


@dataclass(frozen=True)
class PersonaTable:
    path: str
    by_user: dict[str, dict[str, Any]]
    layout: str = KEYED

    def __len__(self) -> int:
        return len(self.by_user)

    def lookup(self, user_id: str) -> dict[str, Any]:
        try:
            return self.by_user[user_id]
        except KeyError:
            name = Path(self.path).name
            if self.layout == LINE_NUMBERED:
                message = (
                    f"unknown user_id {quoted(user_id)} ({name} has no persona on line {user_id})"
                )
            else:
                message = f"unknown user_id {quoted(user_id)} (not in {name})"
            raise FieldProblem("user_id", message) from None


def load_personas(
    path: str | os.PathLike[str], fmt: str | None = None, layout: str = KEYED
) -> PersonaTable:
    """Reads and validates a persona file, raising every problem found at once.

    ``layout`` is ``"keyed"`` (the default: rows with a ``user_id``, or a ``.json``
    mapping) or ``"line_numbered"`` (one persona per line, numbered from 1).
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown persona layout {layout!r}; expected one of {', '.join(LAYOUTS)}")
    path = Path(path)
    if layout == LINE_NUMBERED:
        return _load_line_numbered(path, fmt)
    mapping = _json_mapping(path) if fmt is None else None
    if mapping is not None:
        return _table_from_mapping(path, mapping)
    row_set = read_rows(path, fmt=fmt, what="personas")
    registry = IdRegistry("user_id", row_set.unit)
    by_user: dict[str, dict[str, Any]] = {}
    for row in row_set.rows:
        _add_row(row, registry, row_set.errors, by_user)
    row_set.errors.raise_if_any()
    return PersonaTable(str(path), by_user)


def _add_row(
    row: Row, registry: IdRegistry, errors: ErrorList, by_user: dict[str, dict[str, Any]]
) -> None:
    check = RowCheck(errors, row.line)
    user_id = check(as_id, row.data.get("user_id"), "user_id")
    if user_id is not None:
        check(registry.claim, user_id, row.line)
    persona = check(_persona_of, row.data)
    if not check.failed:
        by_user[user_id] = persona


def _persona_of(data: dict[str, Any]) -> dict[str, Any]:
    for key in PERSONA_KEYS:
        if data.get(key) is not None:
            return as_persona(data[key], key)
    raise FieldProblem("persona", "missing (expected a 'persona' or 'profile' object)")


def _json_mapping(path: Path) -> dict[str, Any] | None:
    """The whole-file user_id -> persona object of a ``.json`` file, if it is one."""
    if path.suffix.lower() != ".json" or not path.is_file():
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, *JSON_ERRORS):
        # Not one JSON document: read it as JSON lines, which reports errors per line.
        return None
    # A one-line JSONL file is also a single JSON document; its row has a user_id.
    if isinstance(document, dict) and "user_id" not in document:
        return document
    return None


def _table_from_mapping(path: Path, mapping: dict[str, Any]) -> PersonaTable:
    if not mapping:
        raise DataError("no personas", path=path)
    errors = ErrorList(path)
    by_user: dict[str, dict[str, Any]] = {}
    for user_id, value in mapping.items():
        bad_text = surrogate_path({user_id: value})
        if bad_text is not None:
            errors.add(SURROGATE_MESSAGE, field=bad_text)
            continue
        try:
            by_user[as_id(user_id, "user_id")] = as_persona(value)
        except FieldProblem as problem:
            errors.add(f"for user_id {quoted(user_id)}: {problem.message}", field=problem.field)
    errors.raise_if_any()
    return PersonaTable(str(path), by_user)


def _load_line_numbered(path: Path, fmt: str | None) -> PersonaTable:
    row_set = read_rows(path, fmt=fmt, what="personas")
    errors = row_set.errors
    by_user: dict[str, dict[str, Any]] = {}
    for row in row_set.rows:
        if not row.data:
            errors.add("empty persona object", line=row.line)
        elif "user_id" in row.data:
            errors.add(
                "personas in this layout are numbered by line and carry no user_id; "
                "is this a keyed persona file (layout='keyed')?",
                line=row.line,
                field="user_id",
            )
        else:
            persona = RowCheck(errors, row.line)(as_persona, row.data)
            if persona is not None:
                by_user[str(row.line)] = persona
    if row_set.unit == "line":
        _report_blank_lines(row_set.rows, errors)
    errors.errors.sort(key=lambda error: error.line or 0)
    errors.raise_if_any()
    return PersonaTable(str(path), by_user, LINE_NUMBERED)


def _report_blank_lines(rows: list[Row], errors: ErrorList) -> None:
    """Blank lines before the last persona: each would shift the numbering by one."""
    used = {row.line for row in rows} | {error.line for error in errors.errors if error.line}
    for line in range(1, max(used, default=0)):
        if line not in used:
            errors.add("blank line: personas are numbered by line, one per line", line=line)
