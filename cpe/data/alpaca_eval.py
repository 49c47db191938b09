"""AlpacaEval-format files: a JSON array of ``{instruction, output, generator, dataset}``.

A file whose first non-blank character is ``[`` is read as ONE JSON document (a
pretty-printed array spans many lines and is never split into lines); any other
file is read as JSON lines, one object per line. A ``.json`` file holding a
single object is one item.

Errors name the file and a line: for an array, the line where the item's value
starts (found by scanning the array with ``raw_decode``, so no second parse); for
JSON lines, the item's own line. ``AlpacaItem.index`` is the 0-based position of
the item in the array (or among the non-blank lines).

``instruction`` must be non-empty text; ``output`` must be a string but may be
empty; ``generator`` and ``dataset`` are optional strings. Other keys are kept in
``extra`` and written back by :func:`write_alpaca_eval`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cpe.data.errors import DataError, ErrorList
from cpe.data.fields import (
    JSON_ERRORS,
    SURROGATE_MESSAGE,
    FieldProblem,
    RowCheck,
    as_optional_text,
    as_text,
    json_problem,
    json_type,
    surrogate_path,
)
from cpe.data.records import Record
from cpe.data.sources import read_rows

PathLike = str | os.PathLike[str]

FIELDS = ("instruction", "output", "generator", "dataset")
_BOM = "\ufeff"
_WHITESPACE = re.compile(r"[ \t\n\r]*")


@dataclass(frozen=True)
class AlpacaItem:
    index: int  # 0-based position in the file
    instruction: str
    output: str
    generator: str | None = None
    dataset: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"instruction": self.instruction, "output": self.output}
        for key in ("generator", "dataset"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        for key, value in self.extra.items():
            out.setdefault(key, value)
        return out


@dataclass(frozen=True)
class _Entry:
    index: int
    line: int
    value: Any


def load_alpaca_eval(path: PathLike) -> list[AlpacaItem]:
    """Reads and validates every item, raising all problems of the file at once."""
    path = Path(path)
    text = _read_text(path)
    errors = ErrorList(path)
    if text.startswith("[", _skip(text, 0)):
        entries = _scan_array(text, errors)
    else:
        entries = _single_object(text) or _json_lines(path, errors)
    if not entries and not errors:
        raise DataError("no items", path=path)
    items = [item for entry in entries if (item := _item(entry, errors)) is not None]
    errors.errors.sort(key=lambda error: error.line or 0)
    errors.raise_if_any()
    return items


def alpaca_records(items: Iterable[AlpacaItem]) -> list[Record]:
    """Prompt records with no persona: question = instruction, reference = output."""
    records = []
    for item in items:
        meta = {key: getattr(item, key) for key in ("generator", "dataset")}
        records.append(
            Record(
                id=str(item.index),
                persona={},
                question=item.instruction,
                reference=item.output,
                meta={key: value for key, value in meta.items() if value is not None},
            )
        )
    return records


def write_alpaca_eval(path: PathLike, items: Iterable[AlpacaItem]) -> None:
    """Writes the items as one JSON array (their ``index`` is not written)."""
    path = Path(path)
    text = json.dumps([item.to_json() for item in items], ensure_ascii=False, indent=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.partial")
    partial.write_text(text + "\n", encoding="utf-8")
    os.replace(partial, path)


def _read_text(path: Path) -> str:
    if not path.exists():
        raise DataError("file not found", path=path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read file: {exc.strerror or exc}", path=path) from exc
    try:
        return raw.decode("utf-8").removeprefix(_BOM)
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(f"not UTF-8 text: {exc.reason}", path=path, line=line) from None


def _scan_array(text: str, errors: ErrorList) -> list[_Entry]:
    """The array's items with the line each starts on; a syntax error ends the scan."""
    decoder = json.JSONDecoder()
    lines = _LineCounter(text)
    entries: list[_Entry] = []
    pos = _skip(text, _skip(text, 0) + 1)  # past "["
    if text.startswith("]", pos):
        return _check_end(text, pos + 1, lines, errors, entries)
    while True:
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            errors.add(f"invalid JSON: {exc.msg} (column {exc.colno})", line=exc.lineno)
            return entries
        except JSON_ERRORS as exc:
            errors.add(json_problem(exc), line=lines.at(pos))
            return entries
        entries.append(_Entry(len(entries), lines.at(pos), value))
        pos = _skip(text, end)
        if text.startswith(",", pos):
            pos = _skip(text, pos + 1)
        elif text.startswith("]", pos):
            return _check_end(text, pos + 1, lines, errors, entries)
        else:
            errors.add(
                f"invalid JSON: expected ',' or ']' after item {len(entries) - 1}",
                line=lines.at(pos),
            )
            return entries


def _check_end(
    text: str, pos: int, lines: _LineCounter, errors: ErrorList, entries: list[_Entry]
) -> list[_Entry]:
    pos = _skip(text, pos)
    if pos < len(text):
        errors.add("invalid JSON: extra data after the array", line=lines.at(pos))
    return entries


def _skip(text: str, pos: int) -> int:
    return _WHITESPACE.match(text, pos).end()


class _LineCounter:
    """1-based line of a position, counting forward only (positions must not decrease)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1

    def at(self, pos: int) -> int:
        self.line += self.text.count("\n", self.pos, pos)
        self.pos = pos
        return self.line


def _single_object(text: str) -> list[_Entry] | None:
    """A whole file holding one (possibly pretty-printed) object is one item."""
    try:
        value = json.loads(text)
    except JSON_ERRORS:
        return None
    if not isinstance(value, dict):
        return None
    return [_Entry(0, _LineCounter(text).at(_skip(text, 0)), value)]


def _json_lines(path: Path, errors: ErrorList) -> list[_Entry]:
    row_set = read_rows(path, fmt="jsonl", what="items")
    errors.errors.extend(row_set.errors.errors)
    non_blank = sorted({row.line for row in row_set.rows} | {e.line for e in row_set.errors.errors})
    index = {line: position for position, line in enumerate(non_blank)}
    return [_Entry(index[row.line], row.line, row.data) for row in row_set.rows]


def _item(entry: _Entry, errors: ErrorList) -> AlpacaItem | None:
    data = entry.value
    if not isinstance(data, dict):
        errors.add(
            f"item {entry.index}: expected a JSON object, got {json_type(data)}", line=entry.line
        )
        return None
    bad_text = surrogate_path(data)
    if bad_text is not None:
        errors.add(f"item {entry.index}: {SURROGATE_MESSAGE}", line=entry.line, field=bad_text)
        return None
    check = RowCheck(errors, entry.line)
    instruction = check(as_text, data.get("instruction"), "instruction")
    output = check(_as_string, data.get("output"), "output")
    generator = check(as_optional_text, data.get("generator"), "generator")
    dataset = check(as_optional_text, data.get("dataset"), "dataset")
    if check.failed:
        return None
    extra = {key: value for key, value in data.items() if key not in FIELDS}
    return AlpacaItem(entry.index, instruction, output, generator, dataset, extra)


def _as_string(value: Any, field: str) -> str:
    """A string that may be empty (a model may legitimately answer nothing)."""
    if value is None:
        raise FieldProblem(field, "missing")
    if not isinstance(value, str):
        raise FieldProblem(field, f"must be a string, got {json_type(value)}")
    return value
