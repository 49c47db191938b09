from __future__ import annotations

import json
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cpe.data import (
    DataError,
    DataValidationError,
    Record,
    load_persona_feedback,
    load_persona_feedback_dir,
    load_personas,
)

pytestmark = pytest.mark.unit

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


# --- the published layout: persona/all_personas.jsonl + data/{general,spedific}/<tier>.jsonl


PERSONA_1 = {"Name": "Ann", "Demographics": {"Age": 30}, "Preference": ["tea"]}
PERSONA_2 = {"Name": "Ben", "Personality": "calm", "Bias": "none"}
PERSONA_3 = {"Name": "Cy", "Demographics": {"Age": 70}}


def _pf_row(user_id=1, question="Q?", chosen="Good", reject="Bad", **extra):
    return {"user_id": user_id, "question": question, "chosen": chosen, "reject": reject, **extra}


@pytest.fixture
def pf_root(tmp_path, write_lines):
    root = tmp_path / "PersonaFeedback"
    (root / "persona").mkdir(parents=True)
    write_lines(root / "persona" / "all_personas.jsonl", [PERSONA_1, PERSONA_2, PERSONA_3])
    for folder in ("general", "spedific"):
        (root / "data" / folder).mkdir(parents=True)
    data = root / "data"
    write_lines(data / "general" / "hard.jsonl", [_pf_row(3, "Retire where?")])
    write_lines(
        data / "general" / "easy.jsonl",
        [_pf_row(1, "Tea or coffee?", "Tea", "Coffee"), _pf_row(2, "Relax how?", topic="t")],
    )
    write_lines(data / "spedific" / "medium.jsonl", [_pf_row("2", "Books?")])
    write_lines(data / "spedific" / "easy.jsonl", [_pf_row(1, "Snack?")])
    return root


def _dir_error(*args, **kwargs) -> DataError:
    with pytest.raises(DataError) as info:
        load_persona_feedback_dir(*args, **kwargs)
    return info.value


def test_published_layout_loads_with_ids_unique_across_folders_and_tiers(pf_root):
    records = load_persona_feedback_dir(pf_root)
    assert [r.id for r in records] == [
        "general/easy-1",
        "general/easy-2",
        "general/hard-1",
        "spedific/easy-1",
        "spedific/medium-1",
    ]
    assert records[0] == Record(
        "general/easy-1",
        PERSONA_1,
        "Tea or coffee?",
        reference="Tea",
        chosen="Tea",
        rejected="Coffee",
        meta={"folder": "general", "tier": "easy", "user_id": "1"},
    )
    assert records[1].persona == PERSONA_2
    assert records[1].meta == {"topic": "t", "folder": "general", "tier": "easy", "user_id": "2"}
    assert records[2].persona == PERSONA_3
    assert records[4].persona == PERSONA_2  # user_id given as the string "2"
    assert records[4].meta["user_id"] == "2"


def test_published_layout_filters_folders_and_tiers(pf_root):
    records = load_persona_feedback_dir(pf_root, folders=("spedific",), tiers=("medium", "easy"))
    assert [r.id for r in records] == ["spedific/medium-1", "spedific/easy-1"]
    assert [r.id for r in load_persona_feedback_dir(pf_root, tiers="easy")] == [
        "general/easy-1",
        "general/easy-2",
        "spedific/easy-1",
    ]


def test_published_layout_reports_one_error_per_bad_row_across_files(pf_root, write_lines):
    data = pf_root / "data"
    easy = write_lines(data / "general" / "easy.jsonl", [_pf_row(1), _pf_row(9)])
    hard = write_lines(data / "general" / "hard.jsonl", [_pf_row(), _pf_row(), _pf_row(2, "")])
    medium = write_lines(
        data / "spedific" / "medium.jsonl", [{"user_id": 1, "question": "Q", "chosen": "c"}]
    )
    err = _dir_error(pf_root)
    assert isinstance(err, DataValidationError)
    assert len(err.errors) == 3
    text = str(err)
    assert (
        f"{easy}:2: field 'user_id': unknown user_id '9' (all_personas.jsonl has no persona on line 9)"
        in text
    )
    assert f"{hard}:3: field 'question': must not be empty" in text
    assert f"{medium}:1: field 'reject': missing" in text


def test_line_numbered_personas_report_each_bad_line(pf_root, write_lines):
    personas = write_lines(
        pf_root / "persona" / "all_personas.jsonl",
        [PERSONA_1, ["not", "an", "object"], {}, "", {"user_id": 5, "Name": "Dee"}, PERSONA_2],
    )
    err = _dir_error(pf_root)
    assert [(e.path, e.line, e.field) for e in err.errors] == [
        (str(personas), 2, None),
        (str(personas), 3, None),
        (str(personas), 4, None),
        (str(personas), 5, "user_id"),
    ]
    text = str(err)
    assert f"{personas}:2: expected a JSON object, got array" in text
    assert f"{personas}:3: empty persona object" in text
    assert f"{personas}:4: blank line" in text


def test_line_numbered_personas_allow_trailing_blank_lines(tmp_path, write_lines):
    path = write_lines(tmp_path / "all_personas.jsonl", [PERSONA_1, PERSONA_2, "", ""])
    table = load_personas(path, layout="line_numbered")
    assert table.by_user == {"1": PERSONA_1, "2": PERSONA_2}
    with pytest.raises(ValueError, match="unknown persona layout"):
        load_personas(path, layout="numbered")


def test_published_layout_missing_parts_name_the_root(pf_root):
    shutil.rmtree(pf_root / "data" / "spedific")
    (pf_root / "data" / "specific").mkdir()
    err = _dir_error(pf_root)
    assert str(err) == (
        f"1 data error in {pf_root}:\n"
        f"  {pf_root}: missing folder data/spedific (there is data/specific)"
    )
    (pf_root / "persona" / "all_personas.jsonl").unlink()
    err = _dir_error(pf_root, folders=("general", "specific"), tiers=("easy", "medium"))
    assert [e.message for e in err.errors] == [
        "missing persona/all_personas.jsonl",
        "missing tier file data/general/medium.jsonl (tiers there: easy, hard)",
        "missing tier file data/specific/easy.jsonl (tiers there: none)",
        "missing tier file data/specific/medium.jsonl (tiers there: none)",
    ]
    assert {e.path for e in err.errors} == {str(pf_root)}


def test_published_layout_folder_without_tier_files(pf_root):
    for path in (pf_root / "data" / "spedific").iterdir():
        path.unlink()
    assert str(_dir_error(pf_root)).endswith(f"{pf_root}: no tier files (*.jsonl) in data/spedific")
    missing = pf_root / "nowhere"
    assert str(_dir_error(missing)) == (
        f"{missing}: not a folder (expected the PersonaFeedback layout)"
    )


def test_published_layout_empty_tier_file_is_reported_with_the_rest(pf_root, write_lines):
    empty = pf_root / "data" / "general" / "hard.jsonl"
    empty.write_text("", encoding="utf-8")
    easy = write_lines(pf_root / "data" / "spedific" / "easy.jsonl", [_pf_row(4)])
    err = _dir_error(pf_root)
    assert [(e.path, e.line) for e in err.errors] == [(str(empty), None), (str(easy), 1)]
