"""Reads raw rows (JSON objects) from JSONL, parquet or a saved Hugging Face dataset."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cpe.data.errors import DataError, ErrorList
from cpe.data.fields import JSON_ERRORS, SURROGATE_MESSAGE, json_problem, json_type, surrogate_path

FORMATS = ("jsonl", "parquet", "hf")
_SUFFIX_FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet"}
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Row:
    line: int  # 1-based line (JSONL) or row number (parquet, HF)
    data: dict[str, Any]


@dataclass
class RowSet:
    path: str
    rows: list[Row]
    errors: ErrorList  # rows that could not be read at all (bad JSON, not an object)
    unit: str  # "line" or "row": how messages point back at another row
    name: str  # the split, or else the file's stem: a prefix for generated ids


def read_rows(
    path: str | os.PathLike[str],
    fmt: str | None = None,
    split: str | None = None,
    what: str = "records",
) -> RowSet:
    """Rows of a data file; raises DataError when the file cannot be read or is empty."""
    path = Path(path)
    if not path.exists():
        raise DataError("file not found", path=path)
    fmt = detect_format(path, fmt)
    if fmt == "jsonl":
        rows, errors = _read_jsonl(path)
        row_set = RowSet(str(path), rows, errors, "line", split or path.stem)
    elif fmt == "parquet":
        rows = _read_parquet(path)
        row_set = RowSet(str(path), rows, ErrorList(path), "row", split or path.stem)
    else:
        rows, split_name = _read_hf(path, split)
        row_set = RowSet(str(path), rows, ErrorList(path), "row", split_name or path.name)
    if not row_set.rows and not row_set.errors:
        raise DataError(f"no {what}", path=path)
    return row_set


def detect_format(path: Path, fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown data format {fmt!r}; expected one of {', '.join(FORMATS)}")
        return fmt
    if path.is_dir():
        return "hf"
    try:
        return _SUFFIX_FORMATS[path.suffix.lower()]
    except KeyError:
        raise DataError(
            f"cannot tell the format from the suffix {path.suffix!r}; "
            f"pass fmt= one of {', '.join(FORMATS)}",
            path=path,
        ) from None


def _read_jsonl(path: Path) -> tuple[list[Row], ErrorList]:
    rows: list[Row] = []
    errors = ErrorList(path)
    try:
        # Binary, decoded line by line, so a bad byte is reported on its own line.
        with path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                _parse_line(raw.removeprefix(_BOM) if number == 1 else raw, number, rows, errors)
    except OSError as exc:
        raise DataError(f"cannot read file: {exc.strerror or exc}", path=path) from exc
    return rows, errors


def _parse_line(raw: bytes, number: int, rows: list[Row], errors: ErrorList) -> None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        errors.add(f"not UTF-8 text: {exc.reason} (byte {exc.start + 1})", line=number)
        return
    if not text.strip():
        return
    try:
        value = json.loads(text)
    except JSON_ERRORS as exc:
        errors.add(json_problem(exc), line=number)
        return
    if not isinstance(value, dict):
        errors.add(f"expected a JSON object, got {json_type(value)}", line=number)
        return
    bad_text = surrogate_path(value) if "\\u" in text else None
    if bad_text is not None:
        errors.add(SURROGATE_MESSAGE, line=number, field=bad_text)
        return
    rows.append(Row(number, value))


def _read_parquet(path: Path) -> list[Row]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"cannot read parquet file: {exc}", path=path) from exc
    return [Row(number, data) for number, data in enumerate(table.to_pylist(), start=1)]


def _read_hf(path: Path, split: str | None) -> tuple[list[Row], str | None]:
    # Imported here: `datasets` takes seconds to import and most runs never need it.
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot load a saved Hugging Face dataset: {exc}", path=path) from exc
    if isinstance(loaded, datasets.DatasetDict):
        split = _pick_split(path, list(loaded.keys()), split)
        loaded = loaded[split]
    rows = [Row(number, data) for number, data in enumerate(loaded.to_list(), start=1)]
    return rows, split


def _pick_split(path: Path, splits: list[str], split: str | None) -> str:
    if split is None and len(splits) == 1:
        return splits[0]
    if split in splits:
        return split
    listed = ", ".join(repr(name) for name in splits)
    if split is None:
        raise DataError(f"the dataset has several splits ({listed}); pass split=", path=path)
    raise DataError(f"no split {split!r} in the dataset; it has {listed}", path=path)
