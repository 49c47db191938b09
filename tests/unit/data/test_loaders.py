from __future__ import annotations

import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cpe.data import DataError, DataValidationError, Record, load_records

PERSONA = {"age": 34, "interests": ["chess"]}


def _load_error(*args, **kwargs) -> DataError:
    with pytest.raises(DataError) as info:
        load_records(*args, **kwargs)
    return info.value


# --- JSONL -------------------------------------------------------------------


def test_jsonl_good_file_resolves_personas_and_keeps_extras(tmp_path, write_lines, personas_file):
    path = write_lines(
        tmp_path / "train.jsonl",
        [
            {"id": "a", "user_id": "u1", "question": "Plan my week?", "category": "planning"},
            {"id": 7, "persona": {"age": 20}, "question": "Best pasta?", "reference": "Carbonara"},
            "",
            {"id": "c", "user_id": "u2", "question": "Q?", "meta": {"source": "x"}, "topic": "t"},
        ],
    )
    records = load_records(path, personas_path=personas_file)

    assert [r.id for r in records] == ["a", "7", "c"]
    assert records[0].persona == PERSONA
    assert records[0].meta == {"category": "planning", "user_id": "u1"}
    assert records[1].persona == {"age": 20}
    assert records[1].reference == "Carbonara"
    assert records[1].meta == {}
    assert records[2].meta == {"source": "x", "topic": "t", "user_id": "u2"}


def test_jsonl_round_trips_record_to_json(tmp_path, write_lines):
    original = [
        Record("r1", PERSONA, "Q1?", reference="ref", chosen="yes", rejected="no"),
        Record("r2", {"tone": "formal"}, "Q2?", meta={"category": "travel", "user_id": "u9"}),
    ]
    path = write_lines(tmp_path / "records.json", [r.to_json() for r in original])
    assert load_records(path) == original


def test_jsonl_reports_every_error_with_path_line_and_field(tmp_path, write_lines, personas_file):
    path = write_lines(
        tmp_path / "bad.jsonl",
        [
            {"id": "a", "user_id": "u1", "question": "fine"},  # 1
            {"id": "b", "user_id": "u1", "question": ""},  # 2
            '{"id": "c", "question": ',  # 3
            {"id": "d", "persona": ["not", "an", "object"], "question": "q"},  # 4
            {"id": "a", "user_id": "u2", "question": "dup"},  # 5
            {"id": "f", "user_id": "u404", "question": "q"},  # 6
            [1, 2],  # 7
            {"id": "h", "question": "no persona"},  # 8
            {"id": "i", "user_id": "u1", "question": "q", "chosen": 3},  # 9
            {"id": "j", "user_id": "u1", "question": "   \t"},  # 10
        ],
    )
    err = _load_error(path, personas_path=personas_file)
    text = str(err)

    assert isinstance(err, DataValidationError)
    assert len(err.errors) == 9
    assert f"9 data errors in {path}:" in text
    assert f"{path}:2: field 'question': must not be empty" in text
    assert f"{path}:3: invalid JSON" in text
    assert f"{path}:4: field 'persona': must be a JSON object, got array" in text
    assert f"{path}:5: field 'id': duplicate id 'a' (first seen on line 1)" in text
    assert f"{path}:6: field 'user_id': unknown user_id 'u404'" in text
    assert f"{path}:7: expected a JSON object, got array" in text
    assert f"{path}:8: field 'persona': missing" in text
    assert f"{path}:9: field 'chosen': must be a string, got integer" in text
    assert f"{path}:10: field 'question':" in text
    assert f"{path}:1:" not in text


def test_user_id_without_personas_file_is_an_error(tmp_path, write_lines):
    path = write_lines(tmp_path / "d.jsonl", [{"id": "a", "user_id": "u1", "question": "q"}])
    assert f"{path}:1: field 'user_id': cannot resolve user_id 'u1'" in str(_load_error(path))


def test_bad_id_types_are_reported(tmp_path, write_lines):
    path = write_lines(
        tmp_path / "d.jsonl",
        [
            {"persona": PERSONA, "question": "q"},
            {"id": True, "persona": PERSONA, "question": "q"},
            {"id": " ", "persona": PERSONA, "question": "q"},
        ],
    )
    text = str(_load_error(path))
    assert f"{path}:1: field 'id': missing" in text
    assert f"{path}:2: field 'id': must be a string or integer, got boolean" in text
    assert f"{path}:3: field 'id': must not be empty" in text


def test_empty_file_has_no_records(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n  \n", encoding="utf-8")
    err = _load_error(path)
    assert not isinstance(err, DataValidationError)
    assert str(err) == f"{path}: no records"


def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nope.jsonl"
    assert str(_load_error(path)) == f"{path}: file not found"


def test_missing_personas_file_names_its_path(tmp_path, write_lines):
    path = write_lines(tmp_path / "d.jsonl", [{"id": "a", "user_id": "u1", "question": "q"}])
    personas = tmp_path / "gone.jsonl"
    assert str(_load_error(path, personas_path=personas)) == f"{personas}: file not found"


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_unreadable_file_names_the_path(tmp_path, write_lines):
    path = write_lines(tmp_path / "locked.jsonl", [{"id": "a", "persona": {}, "question": "q"}])
    path.chmod(0)
    try:
        assert str(_load_error(path)).startswith(f"{path}: cannot read file")
    finally:
        path.chmod(0o600)


def test_permission_error_names_the_path(tmp_path, write_lines, monkeypatch):
    path = write_lines(tmp_path / "locked.jsonl", [{"id": "a", "persona": {}, "question": "q"}])

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(type(path), "open", refuse)
    assert str(_load_error(path)) == f"{path}: cannot read file: Permission denied"


def test_folder_read_as_jsonl_names_the_path(tmp_path):
    path = tmp_path / "folder.jsonl"
    path.mkdir()
    assert str(_load_error(path, fmt="jsonl")).startswith(f"{path}: cannot read file")


def test_non_utf8_file_names_path_and_line(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"id": "a", "persona": {}, "question": "q"}\n{"question": "caf\xe9"}\n')
    assert str(_load_error(path)).startswith(f"1 data error in {path}:\n  {path}:2: not UTF-8 text")


def test_unknown_suffix_needs_fmt(tmp_path, write_lines):
    path = write_lines(tmp_path / "data.txt", [{"id": "a", "persona": PERSONA, "question": "q"}])
    assert "pass fmt=" in str(_load_error(path))
    assert load_records(path, fmt="jsonl")[0].id == "a"
    with pytest.raises(ValueError, match="unknown data format 'csv'"):
        load_records(path, fmt="csv")


# --- personas file -------------------------------------------------------------


def test_personas_file_reports_every_error(tmp_path, write_lines):
    data = write_lines(tmp_path / "d.jsonl", [{"id": "a", "user_id": "u1", "question": "q"}])
    personas = write_lines(
        tmp_path / "personas.jsonl",
        [
            {"user_id": "u1", "persona": PERSONA},
            {"user_id": "u2", "persona": "plain text"},
            {"user_id": "u1", "persona": PERSONA},
            "{oops",
            {"persona": PERSONA},
            {"user_id": "u6"},
        ],
    )
    err = _load_error(data, personas_path=personas)
    text = str(err)
    assert len(err.errors) == 5
    assert f"{personas}:2: field 'persona': must be a JSON object, got a string" in text
    assert f"{personas}:3: field 'user_id': duplicate user_id 'u1' (first seen on line 1)" in text
    assert f"{personas}:4: invalid JSON" in text
    assert f"{personas}:5: field 'user_id': missing" in text
    assert f"{personas}:6: field 'persona': missing" in text


def test_personas_as_json_mapping(tmp_path, write_lines):
    data = write_lines(tmp_path / "d.jsonl", [{"id": "a", "user_id": "u1", "question": "q"}])
    personas = tmp_path / "personas.json"
    personas.write_text(json.dumps({"u1": PERSONA}, indent=2), encoding="utf-8")
    assert load_records(data, personas_path=personas)[0].persona == PERSONA


# --- parquet -------------------------------------------------------------------


def test_parquet_round_trip_with_dict_and_json_string_personas(tmp_path):
    path = tmp_path / "train.parquet"
    table = pa.Table.from_pylist(
        [
            {"id": 1, "persona": json.dumps(PERSONA), "question": "q1", "category": "food"},
            {"id": 2, "persona": json.dumps({"age": 5}), "question": "q2", "category": None},
        ]
    )
    pq.write_table(table, path)
    records = load_records(path)
    assert records == [
        Record("1", PERSONA, "q1", meta={"category": "food"}),
        Record("2", {"age": 5}, "q2"),
    ]

    struct_path = tmp_path / "struct.parquet"
    pq.write_table(
        pa.Table.from_pylist([{"id": "s", "persona": PERSONA, "question": "q"}]), struct_path
    )
    assert load_records(struct_path) == [Record("s", PERSONA, "q")]


def test_parquet_reports_row_numbers(tmp_path, personas_file):
    path = tmp_path / "bad.parquet"
    rows = [
        {"id": "a", "persona": json.dumps(PERSONA), "question": "q", "user_id": None},
        {"id": "b", "persona": "[1, 2]", "question": "q", "user_id": None},
        {"id": "a", "persona": None, "question": "", "user_id": "u1"},
        {"id": "d", "persona": "{not json", "question": "q", "user_id": None},
    ]
    pq.write_table(pa.Table.from_pylist(rows), path)
    err = _load_error(path, personas_path=personas_file)
    text = str(err)
    assert len(err.errors) == 4
    assert f"{path}:2: field 'persona': must be a JSON object, got a string holding array" in text
    assert f"{path}:3: field 'id': duplicate id 'a' (first seen on row 1)" in text
    assert f"{path}:3: field 'question':" in text
    assert (
        f"{path}:4: field 'persona': must be a JSON object, got a string that is not valid JSON"
        in text
    )


def test_corrupt_parquet_names_the_path(tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"this is not parquet")
    err = _load_error(path)
    assert str(err).startswith(f"{path}: cannot read parquet file")


def test_empty_parquet_has_no_records(tmp_path):
    path = tmp_path / "empty.parquet"
    schema = pa.schema([("id", pa.string()), ("question", pa.string())])
    pq.write_table(schema.empty_table(), path)
    assert str(_load_error(path)) == f"{path}: no records"
