"""The durable state of a labelling folder: ``labels.jsonl`` (one line per labelled
answer, appended chunk by chunk, each chunk flushed and fsynced) and
``label_settings.json`` (what the labels were made with, so a continued run cannot mix
two teachers' labels).

A kill can only cut the last line short: it is dropped on load and its answer asked
again. A label counts as done only for the answer text it was made from (``digest``),
so an edited pairs file gets its changed answers labelled anew.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cpe.eval.cache import digest
from cpe.reward.base import GRMResult

LABELS_FILE = "labels.jsonl"
SETTINGS_FILE = "label_settings.json"
SIDES = ("chosen", "rejected")


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


def answer_digest(question: str, answer: str) -> str:
    return digest(question, answer)


class LabelStore:
    """labels.jsonl, read once on open; later lines of the same answer win."""

    def __init__(self, folder: Path):
        self.path = folder / LABELS_FILE
        self.labels: dict[tuple[str, str], Label] = {}
        for row in read_lines(self.path):
            label = Label(**row)
            self.labels[label.key] = label

    def done(self, pair_id: str, side: str, fingerprint: str) -> Label | None:
        label = self.labels.get((pair_id, side))
        return label if label is not None and label.digest == fingerprint else None

    def append(self, labels: Iterable[Label]) -> None:
        labels = list(labels)
        if not labels:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            for label in labels:
                fh.write(json.dumps(asdict(label), ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        for label in labels:
            self.labels[label.key] = label


def read_lines(path: Path) -> list[dict[str, Any]]:
    """Every complete JSON line; a last line cut short by a kill is removed from the file,
    so the next append starts on a fresh line."""
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
            rows.append(json.loads(line))
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
