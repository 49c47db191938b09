"""Adapter for PersonaFeedback-format data.

Rows carry ``user_id``, ``question``, ``chosen`` and ``reject`` (the dispreferred
answer, which becomes ``Record.rejected``), and optionally ``id``; without one the
id is ``"{split or file stem}-{line or row number}"``, stable across loads. Personas
come from a separate profiles file (see :mod:`cpe.data.personas` for its layouts).
"""

from __future__ import annotations

import os

from cpe.data.errors import ErrorList
from cpe.data.fields import IdRegistry, RowCheck, as_id, as_text, collect_meta
from cpe.data.personas import PersonaTable, load_personas
from cpe.data.records import Record
from cpe.data.sources import Row, read_rows

_RECORD_FIELDS = frozenset({"id", "user_id", "question", "chosen", "reject"})

PathLike = str | os.PathLike[str]


def load_persona_feedback(
    path: PathLike,
    profiles_path: PathLike,
    fmt: str | None = None,
    split: str | None = None,
) -> list[Record]:
    """Reads PersonaFeedback rows and their profiles, validating every row.

    ``fmt`` and ``split`` work as in :func:`cpe.data.load_records`. Raises DataError
    for unreadable or empty files and DataValidationError listing every invalid row.
    """
    profiles = load_personas(profiles_path)
    row_set = read_rows(path, fmt=fmt, split=split)
    ids = IdRegistry("id", row_set.unit)
    records = []
    for row in row_set.rows:
        record = _record_from_row(row, row_set.name, profiles, ids, row_set.errors)
        if record is not None:
            records.append(record)
    row_set.errors.raise_if_any()
    return records


def _record_from_row(
    row: Row, id_prefix: str, profiles: PersonaTable, ids: IdRegistry, errors: ErrorList
) -> Record | None:
    data = row.data
    check = RowCheck(errors, row.line)
    raw_id = data.get("id")
    record_id = f"{id_prefix}-{row.line}" if raw_id is None else check(as_id, raw_id)
    if record_id is not None:
        check(ids.claim, record_id, row.line)
    user_id = check(as_id, data.get("user_id"), "user_id")
    persona = None if user_id is None else check(profiles.lookup, user_id)
    question = check(as_text, data.get("question"), "question")
    chosen = check(as_text, data.get("chosen"), "chosen")
    rejected = check(as_text, data.get("reject"), "reject")
    meta = check(collect_meta, data, _RECORD_FIELDS)
    if check.failed:
        return None
    meta["user_id"] = user_id
    return Record(
        id=record_id,
        persona=persona,
        question=question,
        chosen=chosen,
        rejected=rejected,
        meta=meta,
    )
