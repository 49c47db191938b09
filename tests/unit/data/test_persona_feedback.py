from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cpe.data import DataError, DataValidationError, Record, load_persona_feedback

ALICE = {"name": "Alice", "likes": ["jazz"]}
BOB = {"name": "Bob", "likes": ["hiking"]}


@pytest.fixture
def profiles_mapping(tmp_path):
    path = tmp_path / "profiles.json"
    path.write_text(json.dumps({"alice": ALICE, "bob": BOB}, indent=2), encoding="utf-8")
    return path


def _row(user_id="alice", question="What should I read?", **extra):
    return {"user_id": user_id, "question": question, "chosen": "Good", "reject": "Bad", **extra}


def _load_error(*args, **kwargs) -> DataError:
    with pytest.raises(DataError) as info:
        load_persona_feedback(*args, **kwargs)
    return info.value


def test_rows_become_records_with_stable_ids(tmp_path, write_lines, profiles_mapping):
    path = write_lines(
        tmp_path / "test.jsonl",
        [_row(difficulty="hard"), "", _row("bob", "Where to hike?", id="given-id")],
    )
    records = load_persona_feedback(path, profiles_mapping)
    assert records == [
        Record(
            "test-1",
            ALICE,
            "What should I read?",
            chosen="Good",
            rejected="Bad",
            meta={"difficulty": "hard", "user_id": "alice"},
        ),
        Record(
            "given-id",
            BOB,
            "Where to hike?",
            chosen="Good",
            rejected="Bad",
            meta={"user_id": "bob"},
        ),
    ]
    assert [r.id for r in load_persona_feedback(path, profiles_mapping)] == ["test-1", "given-id"]


def test_split_names_the_generated_ids(tmp_path, write_lines, profiles_mapping):
    path = write_lines(tmp_path / "data.jsonl", [_row(), _row("bob")])
    records = load_persona_feedback(path, profiles_mapping, split="hard")
    assert [r.id for r in records] == ["hard-1", "hard-2"]


@pytest.mark.parametrize("key", ["profile", "persona"])
def test_profile_rows_under_profile_or_persona(tmp_path, write_lines, key):
    profiles = write_lines(
        tmp_path / "profiles.jsonl", [{"user_id": "alice", key: ALICE}, {"user_id": 5, key: BOB}]
    )
    path = write_lines(tmp_path / "test.jsonl", [_row(), _row(5)])
    records = load_persona_feedback(path, profiles)
    assert [r.persona for r in records] == [ALICE, BOB]
    assert records[1].meta["user_id"] == "5"


def test_parquet_rows_use_row_numbers_for_ids(tmp_path, profiles_mapping):
    path = tmp_path / "val.parquet"
    pq.write_table(pa.Table.from_pylist([_row(), _row("bob")]), path)
    assert [r.id for r in load_persona_feedback(path, profiles_mapping)] == ["val-1", "val-2"]


def test_every_invalid_row_is_reported(tmp_path, write_lines, profiles_mapping):
    path = write_lines(
        tmp_path / "test.jsonl",
        [
            _row(id="x"),  # 1
            {"user_id": "alice", "question": "q", "chosen": "c"},  # 2
            _row("carol"),  # 3
            _row(question=""),  # 4
            _row(id="x"),  # 5
            _row(user_id=None),  # 6
            "not json",  # 7
            _row(id="test-1"),  # 8: fine, row 1 has an explicit id so "test-1" is free
            _row(chosen=["a"]),  # 9
        ],
    )
    err = _load_error(path, profiles_mapping)
    text = str(err)
    assert isinstance(err, DataValidationError)
    assert len(err.errors) == 7
    assert f"{path}:2: field 'reject': missing" in text
    assert f"{path}:3: field 'user_id': unknown user_id 'carol' (not in profiles.json)" in text
    assert f"{path}:4: field 'question': must not be empty" in text
    assert f"{path}:5: field 'id': duplicate id 'x' (first seen on line 1)" in text
    assert f"{path}:6: field 'user_id': missing" in text
    assert f"{path}:7: invalid JSON" in text
    assert f"{path}:9: field 'chosen': must be a string, got array" in text
    assert f"{path}:8:" not in text


def test_generated_id_clashing_with_an_explicit_one_is_a_duplicate(
    tmp_path, write_lines, profiles_mapping
):
    path = write_lines(tmp_path / "test.jsonl", [_row(id="test-2"), _row()])
    assert "field 'id': duplicate id 'test-2' (first seen on line 1)" in str(
        _load_error(path, profiles_mapping)
    )


def test_bad_profiles_mapping_names_the_user(tmp_path, write_lines):
    profiles = tmp_path / "profiles.json"
    profiles.write_text(json.dumps({"alice": ALICE, "bob": ["hiking"]}), encoding="utf-8")
    path = write_lines(tmp_path / "test.jsonl", [_row()])
    text = str(_load_error(path, profiles))
    assert (
        f"{profiles}: field 'persona': for user_id 'bob': must be a JSON object, got array" in text
    )


def test_bad_profile_rows_are_reported_with_lines(tmp_path, write_lines):
    profiles = write_lines(
        tmp_path / "profiles.jsonl",
        [{"user_id": "alice", "profile": ALICE}, {"user_id": "bob", "profile": [1]}],
    )
    path = write_lines(tmp_path / "test.jsonl", [_row()])
    text = str(_load_error(path, profiles))
    assert f"{profiles}:2: field 'profile': must be a JSON object, got array" in text


def test_missing_files_name_their_paths(tmp_path, write_lines, profiles_mapping):
    missing = tmp_path / "missing.jsonl"
    assert str(_load_error(missing, profiles_mapping)) == f"{missing}: file not found"
    path = write_lines(tmp_path / "test.jsonl", [_row()])
    assert str(_load_error(path, missing)) == f"{missing}: file not found"


def test_empty_profiles_are_an_error(tmp_path, write_lines):
    path = write_lines(tmp_path / "test.jsonl", [_row()])
    mapping = tmp_path / "profiles.json"
    mapping.write_text("{}", encoding="utf-8")
    assert str(_load_error(path, mapping)) == f"{mapping}: no personas"
    lines = tmp_path / "profiles.jsonl"
    lines.write_text("", encoding="utf-8")
    assert str(_load_error(path, lines)) == f"{lines}: no personas"
