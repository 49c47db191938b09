"""Append-only JSONL caches of an eval folder, so a killed or extended evaluation
redoes nothing that is already on disk.

Each cache is ``<name>.jsonl`` (one row per finished item, flushed and fsynced per
batch) beside ``<name>.meta.json`` (the settings its rows were made with). Reopening
with different settings is an error naming the setting: mixing answers sampled at two
temperatures, or judgments of two judges, would silently corrupt a result. A line cut
off by a kill is dropped on load.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from tqdm import tqdm

T = TypeVar("T")
CHUNK = 16  # items per engine call and per flush: a kill loses at most one chunk


def digest(*texts: str) -> str:
    """A short fingerprint of the texts a row was made from (question, answers)."""
    h = hashlib.sha1()
    for text in texts:
        h.update(text.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()[:16]


class CacheMismatch(ValueError):
    """The folder holds rows made with other settings."""


class JsonlCache:
    def __init__(self, path: Path, meta: dict[str, Any], key_fields: Sequence[str]):
        self.path = path
        self.key_fields = tuple(key_fields)
        path.parent.mkdir(parents=True, exist_ok=True)
        _check_meta(path, meta)
        self._rows: dict[tuple, dict[str, Any]] = {}
        for row in _read_rows(path):
            self._rows[self.key(row)] = row

    def key(self, row: dict[str, Any]) -> tuple:
        return tuple(row[f] for f in self.key_fields)

    def get(self, key: tuple) -> dict[str, Any] | None:
        return self._rows.get(key)

    def fresh(self, key: tuple, fingerprint: str) -> dict[str, Any] | None:
        """The row of ``key`` if it was made from the texts ``fingerprint`` names."""
        row = self._rows.get(key)
        return row if row is not None and row.get("digest") == fingerprint else None

    def fill(
        self,
        todo: Sequence[T],
        make_rows: Callable[[Sequence[T]], Iterable[dict[str, Any]]],
        desc: str,
        unit: str,
        progress: bool = True,
    ) -> None:
        """Makes the rows of ``todo`` chunk by chunk, each chunk appended when done."""
        with tqdm(total=len(todo), desc=desc, unit=unit, disable=not progress) as bar:
            for start in range(0, len(todo), CHUNK):
                chunk = todo[start : start + CHUNK]
                self.add(make_rows(chunk))
                bar.update(len(chunk))

    def __contains__(self, key: tuple) -> bool:
        return key in self._rows

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, rows: Iterable[dict[str, Any]]) -> None:
        rows = list(rows)
        if not rows:
            return
        with self.path.open("a", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        for row in rows:
            self._rows[self.key(row)] = row


def _check_meta(rows_path: Path, meta: dict[str, Any]) -> None:
    path = rows_path.with_suffix(".meta.json")
    if not path.exists():
        path.write_text(json.dumps(meta, indent=1, sort_keys=True))
        return
    saved = json.loads(path.read_text())
    differing = sorted(k for k in set(saved) | set(meta) if saved.get(k) != meta.get(k))
    if differing:
        key = differing[0]
        raise CacheMismatch(
            f"{path.parent} holds results made with {key}={saved.get(key)!r}, not "
            f"{meta.get(key)!r}: use a new eval.output_dir (or delete {rows_path} and {path.name})"
        )


def _read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    data = path.read_bytes()
    cut = data.rfind(b"\n") + 1
    if cut < len(data):  # a kill mid-write left a partial last line: drop it for good
        with path.open("r+b") as fh:
            fh.truncate(cut)
    return [json.loads(line) for line in data[:cut].decode("utf-8").splitlines() if line.strip()]
