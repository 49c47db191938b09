"""Helpers that write small data files for the loader tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def _write_lines(path: Path, lines: list[object]) -> Path:
    """Writes one line per item: dicts and lists as JSON, strings verbatim."""
    text = "\n".join(item if isinstance(item, str) else json.dumps(item) for item in lines)
    path.write_text(text + "\n", encoding="utf-8")
    return path


@pytest.fixture
def write_lines():
    return _write_lines


@pytest.fixture
def personas_file(tmp_path: Path) -> Path:
    return _write_lines(
        tmp_path / "personas.jsonl",
        [
            {"user_id": "u1", "persona": {"age": 34, "interests": ["chess"]}},
            {"user_id": "u2", "persona": {"age": 61, "style": "brief answers"}},
        ],
    )
