"""One reading of a data path, shared by training (data.train_path) and evaluation
(eval.data_path): ``bundled:<split>``, a PersonaFeedback folder in its published layout,
or a records file / HF datasets folder."""

from __future__ import annotations

from pathlib import Path

from cpe.data.bundled import load_bundled
from cpe.data.loaders import load_records
from cpe.data.persona_feedback import PERSONAS_FILE, load_persona_feedback_dir
from cpe.data.records import Record


def is_persona_feedback_dir(path: str) -> bool:
    return (Path(path) / PERSONAS_FILE).is_file()


def load_path(path: str, personas_path: str | None = None, fmt: str | None = None) -> list[Record]:
    if path.startswith("bundled:"):
        return load_bundled(path.split(":", 1)[1])
    if is_persona_feedback_dir(path):
        return load_persona_feedback_dir(path)
    return load_records(path, personas_path=personas_path, fmt=fmt)
