"""PersonaMem benchmark: multiple-choice questions over long shared conversations.

Published as pairs of files per context size:

* ``questions_<size>.csv``: one question per row; used columns are ``question_id``
  (optional: without the column the id is the 1-based data row number), ``question``
  (or ``user_question_or_message``), ``all_options`` (a Python literal list such as
  ``"['(a) foo', '(b) bar']"``), ``correct_answer`` (``(a)``), ``shared_context_id``,
  ``end_index_in_shared_context`` and ``question_type``; the other columns go to
  ``meta``. Errors name the physical line where the row starts (the row number
  + 1 for the header, unless a quoted field spans lines).
* ``shared_contexts_<size>.jsonl``: each line maps one context id to a list of
  chat messages ``{"role": ..., "content": ...}``.

A question sees the prefix of its context up to ``end_index_in_shared_context``:
``messages = context[:end]`` (END_INDEX_INCLUSIVE False), as PersonaMem's own
inference scripts slice it.

Scoring a model's replies (:func:`read_answer_letter`, :func:`accuracy_by_type`)
lives in :mod:`cpe.data.persona_mem_answers` and is re-exported here.
"""

from __future__ import annotations

import ast
import csv
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cpe.data.errors import DataError, DataValidationError, ErrorList
from cpe.data.fields import (
    SURROGATE_MESSAGE,
    FieldProblem,
    IdRegistry,
    RowCheck,
    as_id,
    as_text,
    json_type,
    quoted,
    surrogate_path,
)
from cpe.data.persona_mem_answers import accuracy_by_type, read_answer_letter
from cpe.data.sources import read_rows

__all__ = [
    "END_INDEX_INCLUSIVE",
    "PersonaMemItem",
    "accuracy_by_type",
    "load_persona_mem",
    "read_answer_letter",
]

PathLike = str | os.PathLike[str]

END_INDEX_INCLUSIVE = False  # True would make end_index the last message included
QUESTION_COLUMNS = ("question", "user_question_or_message")
REQUIRED_COLUMNS = (
    "all_options",
    "correct_answer",
    "shared_context_id",
    "end_index_in_shared_context",
    "question_type",
)
_NOT_META = frozenset({"question_id", "all_options", "correct_answer", "question_type"})
_OPTION_LETTER = re.compile(r"\s*\(([a-zA-Z])\)")
_ANSWER_LETTER = re.compile(r"\s*\(?([a-zA-Z])\)?\s*")
_WHOLE_NUMBER = re.compile(r"\s*[0-9]+\s*")

Messages = list[dict[str, Any]]


@dataclass(frozen=True)
class PersonaMemItem:
    id: str
    messages: Messages  # the conversation the question is asked after
    question: str
    options: list[str]  # as written, "(a) ..." prefixes included
    correct: str  # lower-case letter, e.g. "b"
    question_type: str
    meta: dict[str, str] = field(default_factory=dict)


@dataclass
class _Contexts:
    path: Path
    by_id: dict[str, Messages]
    broken: set[str]  # ids whose messages had errors, already reported


def load_persona_mem(questions_csv: PathLike, contexts_jsonl: PathLike) -> list[PersonaMemItem]:
    """Reads and validates both files, raising every problem of both at once."""
    questions_csv = Path(questions_csv)
    if not questions_csv.is_file():
        raise DataError("file not found", path=questions_csv)
    contexts, context_errors = _read_contexts(Path(contexts_jsonl))
    items, question_errors = _read_questions(questions_csv, contexts)
    errors = context_errors.errors + question_errors.errors
    if errors:
        raise DataValidationError(errors)
    return items


# --- contexts ----------------------------------------------------------------


def _read_contexts(path: Path) -> tuple[_Contexts, ErrorList]:
    row_set = read_rows(path, fmt="jsonl", what="contexts")
    errors = row_set.errors
    contexts = _Contexts(path, {}, set())
    ids = IdRegistry("shared_context_id", "line")
    for row in row_set.rows:
        if not row.data:
            errors.add("empty object (expected {context_id: [messages]})", line=row.line)
        for context_id, messages in row.data.items():
            check = RowCheck(errors, row.line)
            check(ids.claim, context_id, row.line)
            if check.failed:
                continue
            if _messages_ok(messages, context_id, check):
                contexts.by_id[context_id] = messages
            else:
                contexts.broken.add(context_id)
    errors.errors.sort(key=lambda error: error.line or 0)
    return contexts, errors


def _messages_ok(messages: Any, context_id: str, check: RowCheck) -> bool:
    if not isinstance(messages, list):
        check(_fail, context_id, f"must be a list of messages, got {json_type(messages)}")
        return False
    problems = [(i, _message_problem(message)) for i, message in enumerate(messages)]
    for i, problem in problems:
        if problem is not None:
            check(_fail, context_id, f"message {i}: {problem}")
    return not check.failed


def _message_problem(message: Any) -> str | None:
    if not isinstance(message, dict):
        return f"expected an object, got {json_type(message)}"
    role, content = message.get("role"), message.get("content")
    if not isinstance(role, str) or not role.strip():
        return f"'role' must be a non-empty string, got {json_type(role)}"
    if not isinstance(content, str):
        return f"'content' must be a string, got {json_type(content)}"
    return None


def _fail(field_name: str, message: str) -> None:
    raise FieldProblem(field_name, message)


# --- questions ---------------------------------------------------------------


def _read_questions(path: Path, contexts: _Contexts) -> tuple[list[PersonaMemItem], ErrorList]:
    errors = ErrorList(path)
    items: list[PersonaMemItem] = []
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            records = _csv_records(csv.reader(handle))
            header = next(records, None)
            if header is None:
                raise DataError("no questions", path=path)
            columns = _check_header(*header, errors)
            if columns is not None:
                _read_rows(records, columns, contexts, errors, items)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"cannot read CSV file: {exc}", path=path) from exc
    if not items and not errors:
        raise DataError("no questions", path=path)
    return items, errors


def _csv_records(reader: Any) -> Iterator[tuple[int, list[str]]]:
    """(start line, fields) of each non-blank record; a quoted field may span lines."""
    while True:
        start = reader.line_num + 1
        fields = next(reader, None)
        if fields is None:
            return
        if fields:
            yield start, fields


def _check_header(line: int, header: list[str], errors: ErrorList) -> list[str] | None:
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if not any(name in header for name in QUESTION_COLUMNS):
        missing.insert(0, " or ".join(QUESTION_COLUMNS))
    for name in missing:
        errors.add("missing column", line=line, field=name)
    return None if missing else header


def _read_rows(
    records: Iterator[tuple[int, list[str]]],
    columns: list[str],
    contexts: _Contexts,
    errors: ErrorList,
    items: list[PersonaMemItem],
) -> None:
    ids = IdRegistry("question_id", "line")
    for number, (line, fields) in enumerate(records, start=1):
        if len(fields) != len(columns):
            errors.add(f"{len(fields)} fields, but the header has {len(columns)}", line=line)
            continue
        row = dict(zip(columns, fields, strict=True))
        item = _item(row, number, RowCheck(errors, line), ids, contexts)
        if item is not None:
            items.append(item)


def _item(
    row: dict[str, str], number: int, check: RowCheck, ids: IdRegistry, contexts: _Contexts
) -> PersonaMemItem | None:
    item_id = check(as_id, row.get("question_id", str(number)), "question_id")
    if item_id is not None:
        check(ids.claim, item_id, check.line)
    question_column = next(name for name in QUESTION_COLUMNS if name in row)
    question = check(as_text, row[question_column], question_column)
    question_type = check(as_text, row["question_type"], "question_type")
    options = check(_parse_options, row["all_options"])
    correct = check(_parse_correct, row["correct_answer"])
    if options is not None and correct is not None:
        check(_check_among, correct, options)
    messages = _conversation(row, check, contexts)
    if check.failed or messages is None:
        return None
    meta = {key: value for key, value in row.items() if key not in _NOT_META and value}
    meta.pop(question_column, None)
    return PersonaMemItem(item_id, messages, question, options, correct, question_type, meta)


def _conversation(row: dict[str, str], check: RowCheck, contexts: _Contexts) -> Messages | None:
    context_id = check(as_id, row["shared_context_id"], "shared_context_id")
    end = check(_parse_end, row["end_index_in_shared_context"])
    if context_id is None or context_id in contexts.broken:
        return None  # already reported
    context = check(_lookup, contexts, context_id)
    if context is None or end is None:
        return None
    last = len(context) - 1 if END_INDEX_INCLUSIVE else len(context)
    if end > last:
        check(_fail, "end_index_in_shared_context", _out_of_range(end, context_id, len(context)))
        return None
    return context[: end + 1] if END_INDEX_INCLUSIVE else context[:end]


def _out_of_range(end: int, context_id: str, size: int) -> str:
    return f"{end} is out of range: context {quoted(context_id)} has {size} messages"


def _lookup(contexts: _Contexts, context_id: str) -> Messages:
    try:
        return contexts.by_id[context_id]
    except KeyError:
        raise FieldProblem(
            "shared_context_id",
            f"unknown shared_context_id {quoted(context_id)} (not in {contexts.path.name})",
        ) from None


def _parse_options(text: str) -> list[str]:
    name = "all_options"
    try:
        options = ast.literal_eval(text.strip())
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise FieldProblem(name, "not a Python literal list of strings") from None
    if not isinstance(options, list) or not options:
        raise FieldProblem(name, f"must be a non-empty list of strings, got {text[:40]!r}")
    if surrogate_path(options) is not None:
        raise FieldProblem(name, SURROGATE_MESSAGE)
    for i, option in enumerate(options, start=1):
        if not isinstance(option, str):
            raise FieldProblem(name, f"option {i} is not a string")
        if _OPTION_LETTER.match(option) is None:
            raise FieldProblem(name, f"option {i} does not start with a letter like '(a)'")
    letters = _letters(options)
    if len(set(letters)) != len(letters):
        raise FieldProblem(name, f"repeated option letters: {', '.join(letters)}")
    return options


def _letters(options: list[str]) -> list[str]:
    return [_OPTION_LETTER.match(option).group(1).lower() for option in options]


def _parse_correct(text: str) -> str:
    match = _ANSWER_LETTER.fullmatch(text)
    if match is None:
        raise FieldProblem("correct_answer", f"must be an option letter like '(a)', got {text!r}")
    return match.group(1).lower()


def _check_among(correct: str, options: list[str]) -> None:
    letters = _letters(options)
    if correct not in letters:
        raise FieldProblem(
            "correct_answer",
            f"'({correct})' is not among the option letters ({', '.join(letters)})",
        )


def _parse_end(text: str) -> int:
    name = "end_index_in_shared_context"
    if _WHOLE_NUMBER.fullmatch(text) is None:
        raise FieldProblem(name, f"must be a whole number >= 0, got {text!r}")
    return int(text)
