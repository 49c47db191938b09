from __future__ import annotations

import pickle

import pytest

from cpe.data import DataError, DataValidationError


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"path": "d.jsonl", "line": 3, "field": "question"}, "d.jsonl:3: field 'question': bad"),
        ({"path": "d.jsonl", "line": 3}, "d.jsonl:3: bad"),
        ({"path": "d.jsonl", "field": "id"}, "d.jsonl: field 'id': bad"),
        ({"path": "d.jsonl"}, "d.jsonl: bad"),
        ({}, "bad"),
    ],
)
def test_data_error_renders_the_parts_it_has(kwargs, expected):
    assert str(DataError("bad", **kwargs)) == expected


def test_validation_error_shows_twenty_errors_and_the_total():
    errors = [DataError(f"problem {n}", path="d.jsonl", line=n) for n in range(1, 26)]
    text = str(DataValidationError(errors))
    lines = text.splitlines()
    assert lines[0] == "25 data errors in d.jsonl:"
    assert lines[1] == "  d.jsonl:1: problem 1"
    assert lines[20] == "  d.jsonl:20: problem 20"
    assert lines[21] == "  ... and 5 more (25 in total)"
    assert "problem 21" not in text


def test_validation_error_over_several_files_names_none_in_its_header():
    err = DataValidationError([DataError("x", path="a"), DataError("y", path="b")])
    assert str(err).splitlines()[0] == "2 data errors:"
    assert err.path is None


def test_errors_survive_pickling():
    single = DataError("bad", path="d.jsonl", line=2, field="id")
    copy = pickle.loads(pickle.dumps(single))
    assert (copy.path, copy.line, copy.field, str(copy)) == ("d.jsonl", 2, "id", str(single))

    many = DataValidationError([single, DataError("worse", path="d.jsonl", line=4)])
    many_copy = pickle.loads(pickle.dumps(many))
    assert str(many_copy) == str(many)
    assert len(many_copy.errors) == 2
