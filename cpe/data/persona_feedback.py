"""Adapters for PersonaFeedback data.

Rows carry ``user_id``, ``question``, ``chosen`` and ``reject`` (the dispreferred
answer, which becomes ``Record.rejected``); other keys go to ``Record.meta``.

* :func:`load_persona_feedback` reads one file of rows plus a profiles file (see
  :mod:`cpe.data.personas` for its layouts). A row may carry an ``id``; without one
  the id is ``"{split or file stem}-{line or row number}"``, stable across loads.
* :func:`load_persona_feedback_dir` reads the benchmark in its published layout::

      root/persona/all_personas.jsonl       one persona per line; user_id = line number
      root/data/general/<tier>.jsonl        tiers are file stems: easy, medium, hard
      root/data/spedific/<tier>.jsonl       (the folder really is spelled "spedific")

  Record ids are ``"{folder}/{tier}-{line}"`` (``general/easy-12``), unique across
  folders and tiers; ``reference`` is the chosen answer, so the records also serve
  as an evaluation set; ``meta`` carries ``folder``, ``tier`` and ``user_id``.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cpe.data.errors import DataError, DataValidationError, ErrorList
from cpe.data.fields import IdRegistry, RowCheck, as_id, as_text, collect_meta
from cpe.data.personas import LINE_NUMBERED, PersonaTable, load_personas
from cpe.data.records import Record
from cpe.data.sources import Row, read_rows

PathLike = str | os.PathLike[str]

FOLDERS = ("general", "spedific")
PERSONAS_FILE = Path("persona", "all_personas.jsonl")
DATA_DIR = "data"
TIER_ORDER = ("easy", "medium", "hard")  # known tiers first, in this order; others after

_PAIR_FIELDS = frozenset({"user_id", "question", "chosen", "reject"})
_RECORD_FIELDS = _PAIR_FIELDS | {"id"}


@dataclass(frozen=True)
class _Pair:
    user_id: str
    persona: dict[str, Any]
    question: str
    chosen: str
    rejected: str
    meta: dict[str, Any]


@dataclass(frozen=True)
class _TierFile:
    folder: str
    tier: str
    path: Path


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


def load_persona_feedback_dir(
    root: PathLike,
    folders: Sequence[str] = FOLDERS,
    tiers: Sequence[str] | None = None,
) -> list[Record]:
    """Reads the published PersonaFeedback layout under ``root`` (see the module doc).

    ``folders`` picks the folders under ``root/data``; ``tiers`` picks tier files by
    stem (all ``*.jsonl`` files of each folder when None). A missing personas file,
    folder or tier file is a DataError naming ``root``, raised before any row is read;
    every invalid row of every tier file is then reported together.
    """
    root = Path(root)
    tier_names = None if tiers is None else _names(tiers, "tiers")
    files = _tier_files(root, _names(folders, "folders"), tier_names)
    personas = load_personas(root / PERSONAS_FILE, layout=LINE_NUMBERED)
    errors: list[DataError] = []
    records: list[Record] = []
    for tier_file in files:
        records.extend(_read_tier(tier_file, personas, errors))
    if errors:
        raise DataValidationError(errors)
    return records


def _names(values: Sequence[str], what: str) -> tuple[str, ...]:
    names = (values,) if isinstance(values, str) else tuple(values)
    if not names:
        raise ValueError(f"{what} must name at least one entry")
    return names


def _tier_files(
    root: Path, folders: tuple[str, ...], tiers: tuple[str, ...] | None
) -> list[_TierFile]:
    if not root.is_dir():
        raise DataError("not a folder (expected the PersonaFeedback layout)", path=root)
    problems = ErrorList(root)
    if not (root / PERSONAS_FILE).is_file():
        problems.add(f"missing {PERSONAS_FILE.as_posix()}")
    files = [
        tier_file
        for folder in folders
        for tier_file in _folder_tiers(root, folder, tiers, problems)
    ]
    problems.raise_if_any()
    return files


def _folder_tiers(
    root: Path, folder: str, tiers: tuple[str, ...] | None, problems: ErrorList
) -> list[_TierFile]:
    where = f"{DATA_DIR}/{folder}"
    directory = root / DATA_DIR / folder
    if not directory.is_dir():
        problems.add(f"missing folder {where}{_suggestion(root / DATA_DIR, folder)}")
        return []
    present = {path.stem: path for path in directory.glob("*.jsonl") if path.is_file()}
    if tiers is None:
        if not present:
            problems.add(f"no tier files (*.jsonl) in {where}")
        return [_TierFile(folder, tier, present[tier]) for tier in _tier_order(present)]
    missing = [tier for tier in tiers if tier not in present]
    for tier in missing:
        available = ", ".join(_tier_order(present)) or "none"
        problems.add(f"missing tier file {where}/{tier}.jsonl (tiers there: {available})")
    return [_TierFile(folder, tier, present[tier]) for tier in tiers if tier in present]


def _tier_order(tiers: Collection[str]) -> list[str]:
    known = {tier: rank for rank, tier in enumerate(TIER_ORDER)}
    return sorted(tiers, key=lambda tier: (known.get(tier, len(known)), tier))


def _suggestion(parent: Path, name: str) -> str:
    if not parent.is_dir():
        return ""
    folders = [path.name for path in parent.iterdir() if path.is_dir()]
    close = difflib.get_close_matches(name, folders, n=1)
    return f" (there is {DATA_DIR}/{close[0]})" if close else ""


def _read_tier(
    tier_file: _TierFile, personas: PersonaTable, errors: list[DataError]
) -> list[Record]:
    try:
        row_set = read_rows(tier_file.path, fmt="jsonl")
    except DataError as error:
        errors.append(error)
        return []
    records = []
    for row in row_set.rows:
        pair = _read_pair(RowCheck(row_set.errors, row.line), row.data, personas, _PAIR_FIELDS)
        if pair is not None:
            records.append(_dir_record(tier_file, row.line, pair))
    errors.extend(row_set.errors.errors)
    return records


def _dir_record(tier_file: _TierFile, line: int, pair: _Pair) -> Record:
    meta = {**pair.meta, "folder": tier_file.folder, "tier": tier_file.tier}
    meta["user_id"] = pair.user_id
    return Record(
        id=f"{tier_file.folder}/{tier_file.tier}-{line}",
        persona=pair.persona,
        question=pair.question,
        reference=pair.chosen,
        chosen=pair.chosen,
        rejected=pair.rejected,
        meta=meta,
    )


def _record_from_row(
    row: Row, id_prefix: str, profiles: PersonaTable, ids: IdRegistry, errors: ErrorList
) -> Record | None:
    check = RowCheck(errors, row.line)
    raw_id = row.data.get("id")
    record_id = f"{id_prefix}-{row.line}" if raw_id is None else check(as_id, raw_id)
    if record_id is not None:
        check(ids.claim, record_id, row.line)
    pair = _read_pair(check, row.data, profiles, _RECORD_FIELDS)
    if pair is None or check.failed:
        return None
    return Record(
        id=record_id,
        persona=pair.persona,
        question=pair.question,
        chosen=pair.chosen,
        rejected=pair.rejected,
        meta={**pair.meta, "user_id": pair.user_id},
    )


def _read_pair(
    check: RowCheck, data: dict[str, Any], profiles: PersonaTable, reserved: frozenset[str]
) -> _Pair | None:
    """The fields both layouts share, each failure recorded by ``check``."""
    user_id = check(as_id, data.get("user_id"), "user_id")
    persona = None if user_id is None else check(profiles.lookup, user_id)
    question = check(as_text, data.get("question"), "question")
    chosen = check(as_text, data.get("chosen"), "chosen")
    rejected = check(as_text, data.get("reject"), "reject")
    meta = check(collect_meta, data, reserved)
    if check.failed:
        return None
    return _Pair(user_id, persona, question, chosen, rejected, meta)
