"""Loads prompt records from JSONL, parquet or a saved Hugging Face dataset.

Row schema: ``id`` (string or integer), ``question`` (non-empty string), and either
an inline ``persona`` object (or a JSON string of one) or a ``user_id`` found in the
personas file. ``reference``, ``chosen`` and ``rejected`` are optional strings;
every other key, ``user_id`` included, goes to ``Record.meta``.
"""

from __future__ import annotations

import os
from typing import Any

from cpe.data.errors import ErrorList
from cpe.data.fields import (
    FieldProblem,
    IdRegistry,
    RowCheck,
    as_id,
    as_optional_id,
    as_optional_text,
    as_persona,
    as_text,
    collect_meta,
    quoted,
)
from cpe.data.personas import PersonaTable, load_personas
from cpe.data.records import Record
from cpe.data.sources import Row, read_rows

ANSWER_FIELDS = ("reference", "chosen", "rejected")
_RECORD_FIELDS = frozenset({"id", "persona", "question", "user_id", *ANSWER_FIELDS})

PathLike = str | os.PathLike[str]


def load_records(
    path: PathLike,
    personas_path: PathLike | None = None,
    fmt: str | None = None,
    split: str | None = None,
) -> list[Record]:
    """Reads and validates every row of ``path``.

    ``fmt`` is "jsonl", "parquet" or "hf"; by default it follows the suffix
    (``.jsonl``/``.json``, ``.parquet``) or, for a folder, ``save_to_disk`` output.
    ``split`` picks a split of a saved ``DatasetDict`` that has more than one.

    Raises DataError when a file cannot be read or holds no records, and
    DataValidationError listing every invalid row otherwise.
    """
    personas = None if personas_path is None else load_personas(personas_path)
    row_set = read_rows(path, fmt=fmt, split=split)
    ids = IdRegistry("id", row_set.unit)
    records = []
    for row in row_set.rows:
        record = _record_from_row(row, personas, ids, row_set.errors)
        if record is not None:
            records.append(record)
    row_set.errors.raise_if_any()
    return records


def _record_from_row(
    row: Row, personas: PersonaTable | None, ids: IdRegistry, errors: ErrorList
) -> Record | None:
    data = row.data
    check = RowCheck(errors, row.line)
    record_id = check(as_id, data.get("id"))
    if record_id is not None:
        check(ids.claim, record_id, row.line)
    question = check(as_text, data.get("question"), "question")
    user_id = check(as_optional_id, data.get("user_id"), "user_id")
    persona = None
    if "user_id" not in check.failed_fields:
        persona = check(_resolve_persona, data.get("persona"), user_id, personas)
    answers = {key: check(as_optional_text, data.get(key), key) for key in ANSWER_FIELDS}
    meta = check(collect_meta, data, _RECORD_FIELDS)
    if check.failed:
        return None
    if user_id is not None:
        meta["user_id"] = user_id
    return Record(id=record_id, persona=persona, question=question, meta=meta, **answers)


def _resolve_persona(
    inline: Any, user_id: str | None, personas: PersonaTable | None
) -> dict[str, Any]:
    if inline is not None:
        return as_persona(inline)
    if user_id is None:
        raise FieldProblem("persona", "missing: give an inline 'persona' object or a 'user_id'")
    if personas is None:
        raise FieldProblem(
            "user_id",
            f"cannot resolve user_id {quoted(user_id)} without a personas file (personas_path)",
        )
    return personas.lookup(user_id)
