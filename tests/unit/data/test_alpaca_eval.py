from __future__ import annotations

import json

import pytest

from cpe.data import (
    AlpacaItem,
    DataError,
    DataValidationError,
    Record,
    alpaca_records,
    load_alpaca_eval,
    write_alpaca_eval,
)

pytestmark = pytest.mark.unit

ITEMS = [
    {"instruction": "Name a fruit.", "output": "Apple", "generator": "gpt4", "dataset": "helpful"},
    {"instruction": "Say nothing.", "output": "", "generator": "gpt4", "dataset": "koala"},
    {"instruction": "Line one\nline two", "output": "ok", "datasplit": "eval"},
]


def _load_error(path) -> DataError:
    with pytest.raises(DataError) as info:
        load_alpaca_eval(path)
    return info.value


def test_pretty_printed_array_is_one_document(tmp_path):
    path = tmp_path / "alpaca_eval.json"
    text = json.dumps(ITEMS, indent=4)
    assert text.count("\n") > len(ITEMS)  # spans many lines: line-by-line reading would fail
    path.write_text(text, encoding="utf-8")
    assert load_alpaca_eval(path) == [
        AlpacaItem(0, "Name a fruit.", "Apple", "gpt4", "helpful"),
        AlpacaItem(1, "Say nothing.", "", "gpt4", "koala"),
        AlpacaItem(2, "Line one\nline two", "ok", extra={"datasplit": "eval"}),
    ]


def test_json_lines_are_accepted_with_positions_as_indices(tmp_path, write_lines):
    path = write_lines(tmp_path / "outputs.jsonl", [ITEMS[0], "", ITEMS[1]])
    items = load_alpaca_eval(path)
    assert [(item.index, item.instruction) for item in items] == [
        (0, "Name a fruit."),
        (1, "Say nothing."),
    ]


def test_single_object_document_is_one_item(tmp_path):
    path = tmp_path / "one.json"
    path.write_text(json.dumps(ITEMS[0], indent=2), encoding="utf-8")
    assert load_alpaca_eval(path) == [AlpacaItem(0, "Name a fruit.", "Apple", "gpt4", "helpful")]


def test_array_faults_are_reported_once_each_at_the_item_line(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(
        "\n".join(
            [
                "[",  # 1
                '  {"instruction": "ok", "output": "fine"},',  # 2
                '  {"output": "no instruction"},',  # 3
                "  {",  # 4
                '    "instruction": "q",',  # 5
                '    "output": 5',  # 6
                "  },",  # 7
                '  "just a string"',  # 8
                "]",
            ]
        ),
        encoding="utf-8",
    )
    err = _load_error(path)
    assert isinstance(err, DataValidationError)
    assert [(e.path, e.line, e.field) for e in err.errors] == [
        (str(path), 3, "instruction"),
        (str(path), 4, "output"),
        (str(path), 8, None),
    ]
    text = str(err)
    assert f"{path}:3: field 'instruction': missing" in text
    assert f"{path}:4: field 'output': must be a string, got integer" in text
    assert f"{path}:8: item 3: expected a JSON object, got string" in text


def test_syntax_error_ends_the_scan_but_keeps_earlier_faults(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text(
        '[\n  {"instruction": "", "output": "a"},\n  {"instruction": "b", "output": "c"}\n  {"x": 1}\n]',
        encoding="utf-8",
    )
    err = _load_error(path)
    assert [(e.line, e.field) for e in err.errors] == [(2, "instruction"), (4, None)]
    assert "expected ',' or ']' after item 1" in str(err)
    path.write_text('[{"instruction": "a", "output": "b"},]', encoding="utf-8")
    assert "invalid JSON: Expecting value" in str(_load_error(path))
    path.write_text('[{"instruction": "a", "output": "b"}]\n[]', encoding="utf-8")
    assert f"{path}:2: invalid JSON: extra data after the array" in str(_load_error(path))


def test_optional_fields_must_be_strings(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(
        json.dumps([{"instruction": "a", "output": None, "generator": 3, "dataset": ["x"]}]),
        encoding="utf-8",
    )
    assert [(e.field, e.message) for e in _load_error(path).errors] == [
        ("output", "missing"),
        ("generator", "must be a string, got integer"),
        ("dataset", "must be a string, got array"),
    ]


def test_empty_and_missing_files(tmp_path):
    empty = tmp_path / "empty.json"
    empty.write_text(" [ ]\n", encoding="utf-8")
    assert str(_load_error(empty)) == f"{empty}: no items"
    missing = tmp_path / "missing.json"
    assert str(_load_error(missing)) == f"{missing}: file not found"
    latin = tmp_path / "latin.json"
    latin.write_bytes(b'[\n{"instruction": "caf\xe9", "output": ""}]')
    assert str(_load_error(latin)).startswith(f"{latin}:2: not UTF-8 text")


def test_write_then_load_round_trips(tmp_path):
    source = tmp_path / "in.json"
    source.write_text(json.dumps(ITEMS), encoding="utf-8")
    items = load_alpaca_eval(source)
    out = tmp_path / "results" / "model_outputs.json"
    write_alpaca_eval(out, items)
    assert json.loads(out.read_text(encoding="utf-8")) == ITEMS
    assert load_alpaca_eval(out) == items
    assert not list(out.parent.glob("*.partial"))


def test_items_become_records_without_persona():
    items = [
        AlpacaItem(0, "Name a fruit.", "Apple", "gpt4", "helpful"),
        AlpacaItem(7, "Say nothing.", ""),
    ]
    assert alpaca_records(items) == [
        Record(
            "0",
            {},
            "Name a fruit.",
            reference="Apple",
            meta={"generator": "gpt4", "dataset": "helpful"},
        ),
        Record("7", {}, "Say nothing.", reference=""),
    ]
