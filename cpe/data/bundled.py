"""The small persona/question data set shipped inside the package."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from cpe.data.loaders import load_records
from cpe.data.records import Record

SPLITS = ("train", "eval")


def bundled_dir() -> Path:
    """The ``cpe/data/bundled`` folder: personas.jsonl, train.jsonl, eval.jsonl."""
    # Path() needs a real folder; the package is installed unzipped (regular or editable).
    return Path(str(resources.files("cpe.data").joinpath("bundled")))


def load_bundled(split: str) -> list[Record]:
    """Records of the bundled ``train`` or ``eval`` split, personas resolved."""
    if split not in SPLITS:
        raise ValueError(f"unknown bundled split {split!r}; expected one of {', '.join(SPLITS)}")
    folder = bundled_dir()
    return load_records(folder / f"{split}.jsonl", personas_path=folder / "personas.jsonl")
