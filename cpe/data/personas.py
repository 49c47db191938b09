"""Persona (profile) files: user_id -> persona object.

Accepted layouts:

* rows (JSONL, parquet or a saved HF dataset) of ``{"user_id": ..., "persona": {...}}``,
  with the object under ``profile`` instead of ``persona`` also accepted;
* a ``.json`` file holding one object that maps each user_id to its persona.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cpe.data.errors import DataError, ErrorList
from cpe.data.fields import FieldProblem, IdRegistry, RowCheck, as_id, as_persona
from cpe.data.sources import Row, read_rows

PERSONA_KEYS = ("persona", "profile")


@dataclass(frozen=True)
class PersonaTable:
    path: str
    by_user: dict[str, dict[str, Any]]

    def __len__(self) -> int:
        return len(self.by_user)

    def lookup(self, user_id: str) -> dict[str, Any]:
        try:
            return self.by_user[user_id]
        except KeyError:
            raise FieldProblem(
                "user_id", f"unknown user_id '{user_id}' (not in {Path(self.path).name})"
            ) from None


def load_personas(path: str | os.PathLike[str], fmt: str | None = None) -> PersonaTable:
    """Reads and validates a persona file, raising every problem found at once."""
    path = Path(path)
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
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
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
        try:
            by_user[as_id(user_id, "user_id")] = as_persona(value)
        except FieldProblem as problem:
            errors.add(f"for user_id '{user_id}': {problem.message}", field=problem.field)
    errors.raise_if_any()
    return PersonaTable(str(path), by_user)
