from __future__ import annotations

import json
from pathlib import Path

import pytest

import cpe.data
from cpe.data import bundled_dir, load_bundled


def test_bundled_dir_is_inside_the_package():
    folder = bundled_dir()
    assert folder.parent.resolve() == Path(cpe.data.__file__).parent.resolve()
    for name in ("personas.jsonl", "train.jsonl", "eval.jsonl"):
        assert (folder / name).is_file(), f"{name} is missing from {folder}"


@pytest.fixture(scope="module")
def splits():
    return {split: load_bundled(split) for split in ("train", "eval")}


def test_split_sizes(splits):
    assert len(splits["train"]) >= 250
    assert len(splits["eval"]) >= 50


def test_splits_share_no_ids(splits):
    train_ids = {record.id for record in splits["train"]}
    eval_ids = {record.id for record in splits["eval"]}
    assert not train_ids & eval_ids


def test_records_reference_many_personas(splits):
    records = splits["train"] + splits["eval"]
    user_ids = {record.meta["user_id"] for record in records}
    assert len(user_ids) >= 40
    assert all(record.persona for record in records)
    assert all(record.question.strip() for record in records)


def test_every_persona_in_the_file_is_well_formed():
    lines = (bundled_dir() / "personas.jsonl").read_text(encoding="utf-8").splitlines()
    personas = [json.loads(line) for line in lines if line.strip()]
    assert len(personas) >= 40
    assert all(isinstance(row["persona"], dict) and row["persona"] for row in personas)


def test_unknown_split_is_rejected():
    with pytest.raises(ValueError, match="unknown bundled split 'test'"):
        load_bundled("test")
