"""The durable state of a labelling folder: ``labels.jsonl`` (one line per labelled
answer, appended, flushed and fsynced as each teacher reply arrives) and
``label_settings.json`` (what the labels were made with, so a continued run cannot mix
two teachers' labels).

A kill can only cut the last line short: it is dropped on load and its answer asked
again. A label counts as done only for the answer text it was made from (``digest``),
so an edited pairs file gets its changed answers labelled anew. Only answers the
teacher answered are stored; the rows of transport failures that an earlier version
wrote are skipped on load, so those answers are asked again.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from cpe.eval.cache import digest
from cpe.reward.base import GRMResult

LABELS_FILE = "labels.jsonl"
SETTINGS_FILE = "label_settings.json"
SIDES = ("chosen", "rejected")
# An answer the teacher did answer, with an empty output, carries one of these errors
# (cpe.reward: openai and vllm backends); any other empty invalid row is a transport failure.
EMPTY_OUTPUT_ERRORS = ("empty completion", "empty output")


class SettingsMismatch(ValueError):
    """The folder holds labels made with other settings."""


@dataclass(frozen=True)
class Label:
    """The teacher's verdict on one answer of one pair (one line of labels.jsonl)."""

    pair_id: str
    side: str  # chosen | rejected: the answer's place in the pair as read (or sampled)
    digest: str  # of question and answer: the text this label belongs to
    output: str  # the teacher's raw output
    valid: bool
    error: str | None
    helpfulness: int | None
    personalization: int | None
    naturalness: int | None
    reward: float | None
    attempts: int

    @property
    def key(self) -> tuple[str, str]:
        return (self.pair_id, self.side)

    @property
    def answered(self) -> bool:
        """False for a transport failure (a row of an earlier version): ask again."""
        if self.valid or self.output.strip():
            return True
        return (self.error or "").startswith(EMPTY_OUTPUT_ERRORS)

    @classmethod
    def from_row(cls, row: Any, where: str) -> Label:
        """The label of one labels.jsonl row; ``where`` (path:line) names a bad one."""
        if not isinstance(row, dict):
            raise ValueError(f"{where}: not a JSON object but {type(row).__name__}")
        names = [f.name for f in fields(cls)]
        missing = [n for n in names if n not in row]
        extra = sorted(set(row) - set(names))
        if missing or extra:
            raise ValueError(
                f"{where}: not a label row (missing keys: {missing or 'none'}; "
                f"unknown keys: {extra or 'none'})"
            )
        for name in names:
            check, expected = _ROW_TYPES[name]
            if not check(row[name]):
                raise ValueError(f"{where}: {name}={row[name]!r} is not {expected}")
        if row["valid"] and row["reward"] is None:
            raise ValueError(f"{where}: valid=true with reward=null")
        return cls(**row)

    @classmethod
    def from_result(cls, pair_id: str, side: str, fingerprint: str, result: GRMResult) -> Label:
        judgement = result.judgement
        scores = judgement.scores if result.valid and judgement is not None else (None,) * 3
        return cls(
            pair_id,
            side,
            fingerprint,
            result.text,
            bool(result.valid),
            result.error,
            *scores,
            result.reward if result.valid else None,
            result.attempts,
        )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _optional(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda value: value is None or check(value)


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_number(value: Any) -> bool:
    return _is_int(value) or isinstance(value, float)


# labels.jsonl key -> (check, what it must be)
_ROW_TYPES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "pair_id": (_is_str, "a string"),
    "side": (lambda value: value in SIDES, f"one of {', '.join(SIDES)}"),
    "digest": (_is_str, "a string"),
    "output": (_is_str, "a string"),
    "valid": (lambda value: isinstance(value, bool), "true or false"),
    "error": (_optional(_is_str), "a string or null"),
    "helpfulness": (_optional(_is_int), "an integer or null"),
    "personalization": (_optional(_is_int), "an integer or null"),
    "naturalness": (_optional(_is_int), "an integer or null"),
    "reward": (_optional(_is_number), "a number or null"),
    "attempts": (lambda value: _is_int(value) and value >= 1, "an integer >= 1"),
}


def answer_digest(question: str, answer: str) -> str:
    return digest(question, answer)


class LabelStore:
    """labels.jsonl, read once on open; later lines of the same answer win. Appends may
    come from several threads (a backend's reply callbacks)."""

    def __init__(self, folder: Path):
        self.path = folder / LABELS_FILE
        self.labels: dict[tuple[str, str], Label] = {}
        self._lock = threading.Lock()
        for number, row in read_lines(self.path):
            label = Label.from_row(row, f"{self.path}:{number}")
            if label.answered:
                self.labels[label.key] = label

    def done(self, pair_id: str, side: str, fingerprint: str) -> Label | None:
        label = self.labels.get((pair_id, side))
        return label if label is not None and label.digest == fingerprint else None

    def append(self, labels: Iterable[Label]) -> None:
        labels = list(labels)
        if not labels:
            return
        text = "".join(json.dumps(asdict(label), ensure_ascii=False) + "\n" for label in labels)
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            for label in labels:
                self.labels[label.key] = label


def read_lines(path: Path) -> list[tuple[int, Any]]:
    """(line number, value) of every complete JSON line; a last line cut short by a kill
    is removed from the file, so the next append starts on a fresh line."""
    if not path.exists():
        return []
    data = path.read_bytes()
    cut = data.rfind(b"\n") + 1
    if cut < len(data):
        with path.open("r+b") as fh:
            fh.truncate(cut)
    rows = []
    for number, line in enumerate(data[:cut].decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append((number, json.loads(line)))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{number}: not a JSON line ({exc.msg})") from None
    return rows


def check_settings(folder: Path, settings: Mapping[str, Any]) -> None:
    """Raise SettingsMismatch naming every key whose value differs from the folder's."""
    path = folder / SETTINGS_FILE
    if not path.exists():
        return
    saved = json.loads(path.read_text())
    differing = sorted(k for k in set(saved) | set(settings) if saved.get(k) != settings.get(k))
    if differing:
        shown = ", ".join(f"{k}={saved.get(k)!r} (now {settings.get(k)!r})" for k in differing)
        raise SettingsMismatch(
            f"label.output_dir={str(folder)!r} holds labels made with {shown}: use a new "
            f"label.output_dir, or the same settings to continue it"
        )


def save_settings(folder: Path, settings: Mapping[str, Any]) -> None:
    """Write the settings on a folder's first run (a continued run was checked before)."""
    path = folder / SETTINGS_FILE
    if path.exists():
        return
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(dict(settings), indent=1, sort_keys=True) + "\n")


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
