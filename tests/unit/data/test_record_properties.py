"""Property: any JSONL file given as data.train_path either loads, or fails with a
DataError naming the file, exactly the faulty lines and each one's field; never a
KeyError, TypeError, UnicodeError or RecursionError from inside the loader."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from unit.data.data_strategies import (
    MAX_PERSONA_DEPTH,
    PROPERTY_SETTINGS,
    SURROGATE_ESCAPE,
    Line,
    any_line,
    blank_lines,
    blank_texts,
    check_report,
    encode,
    nested,
    not_strings,
    personas,
    scalars,
    texts,
    with_raw_value,
    write_lines,
)
from unit.run_folders import existing_run, snapshot

from cpe.compose import load_config
from cpe.data import DataError, load_records
from cpe.train import checked_start

KNOWN_USERS = ("u1", "u2")
RESERVED = {"id", "question", "persona", "user_id", "reference", "chosen", "rejected", "meta"}
RUN_SETTINGS = settings(PROPERTY_SETTINGS, max_examples=15)
not_ids = st.booleans() | st.floats() | st.lists(scalars, max_size=2) | blank_texts
not_personas = st.booleans() | st.integers() | st.floats() | st.lists(scalars, max_size=2)
not_meta = not_personas | st.text(max_size=5)


def _not_a_json_object(text: str) -> bool:
    try:
        return not isinstance(json.loads(text), dict)
    except ValueError:
        return True


@st.composite
def valid_row(draw, index: int) -> dict:
    row = {
        "id": draw(st.sampled_from([f"r{index}", 1000 + index])),
        "question": draw(texts),
        "persona": draw(personas),
    }
    if draw(st.booleans()):
        row["persona"] = json.dumps(row["persona"])  # columnar exports store it as text
    if draw(st.booleans()):
        del row["persona"]
        row["user_id"] = draw(st.sampled_from(KNOWN_USERS))
    for key in ("reference", "chosen", "rejected"):
        if draw(st.booleans()):
            row[key] = draw(st.none() | texts)
    extra = st.text(max_size=8).filter(lambda key: key not in RESERVED)
    row.update(draw(st.dictionaries(extra, scalars, max_size=2)))
    return row


@st.composite
def faulty_row(draw, row: dict, first_id: object) -> Line:
    """``row`` with exactly one field made wrong, labelled with that field."""
    kind = draw(
        st.sampled_from(
            ["drop", "id", "question", "persona", "answer", "meta", "user_id", "duplicate"]
            + ["deep persona", "surrogate", "persona text"]
        )
    )
    row = dict(row)
    if kind == "drop":
        field = draw(st.sampled_from(["id", "question", "persona"]))
        row.pop(field, None)
        if field == "persona" and "user_id" in row:
            field = "user_id"
            row["user_id"] = "nobody"
        return Line(encode(row), field)
    if kind in ("id", "question"):
        row[kind] = draw(not_ids if kind == "id" else not_strings | blank_texts | st.none())
        return Line(encode(row), kind)
    if kind == "persona":
        row.pop("user_id", None)
        row["persona"] = draw(not_personas)
        return Line(encode(row), "persona")
    if kind == "persona text":
        row.pop("user_id", None)
        row["persona"] = draw(st.text(max_size=12).filter(_not_a_json_object))
        return Line(encode(row), "persona")
    if kind == "deep persona":
        row.pop("user_id", None)
        row["persona"] = {"a": nested(MAX_PERSONA_DEPTH)}
        return Line(encode(row), "persona")
    if kind == "answer":
        field = draw(st.sampled_from(["reference", "chosen", "rejected"]))
        row[field] = draw(not_strings)
        return Line(encode(row), field)
    if kind == "meta":
        row["meta"] = draw(not_meta)
        return Line(encode(row), "meta")
    if kind == "user_id":
        row.pop("persona", None)
        row["user_id"] = draw(not_ids | st.just("nobody"))
        return Line(encode(row), "user_id")
    if kind == "duplicate":
        row["id"] = first_id
        return Line(encode(row), "id")
    field = draw(st.sampled_from(["question", "persona"]))
    raw = SURROGATE_ESCAPE if field == "question" else '{"name": ' + SURROGATE_ESCAPE + "}"
    return Line(
        with_raw_value(row, field, raw), "question" if field == "question" else "persona.name"
    )


@st.composite
def records_file(draw) -> list[Line]:
    first = draw(valid_row(0))
    lines = [Line(encode(first))]
    for index in range(1, draw(st.integers(0, 12))):
        row = draw(valid_row(index))
        lines.append(any_line(draw, row, lambda r: faulty_row(r, first["id"])))
    return lines


@PROPERTY_SETTINGS
@given(lines=records_file(), crlf=st.booleans(), bom=st.booleans())
def test_a_records_file_loads_or_names_every_faulty_line_and_field(tmp_path, lines, crlf, bom):
    path = tmp_path / "train.jsonl"
    write_lines(path, lines, crlf=crlf, bom=bom)
    try:
        records = load_records(path, personas_path=_personas(tmp_path))
    except DataError as exc:
        check_report(exc, path, lines)
        return
    assert not any(line.fault for line in lines)
    assert len(records) == sum(1 for line in lines if line.raw.strip())
    for record in records:
        assert record.id.strip() and record.question.strip() and isinstance(record.persona, dict)


@PROPERTY_SETTINGS
@given(lines=st.lists(blank_lines, max_size=4))
def test_a_file_of_blank_lines_holds_no_records(tmp_path, lines):
    path = tmp_path / "train.jsonl"
    write_lines(path, lines)
    try:
        load_records(path)
    except DataError as exc:
        assert str(exc) == f"{path}: no records"
    else:
        raise AssertionError("a file without records loaded")


def _personas(folder: Path) -> Path:
    path = folder / "personas.jsonl"
    if not path.exists():
        rows = [{"user_id": user, "persona": {"name": user}} for user in KNOWN_USERS]
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture(scope="module")
def train_config(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad-data")
    run = existing_run(folder / "run")
    overrides = [
        "data=jsonl",
        f"data.train_path={folder / 'train.jsonl'}",
        f"logging.run_dir={run}",
    ]
    return load_config(["experiment=tiny_cpu", *overrides]), folder


@RUN_SETTINGS
@given(lines=records_file())
def test_bad_data_stops_the_run_with_exit_2_and_leaves_its_folder_alone(
    train_config, capsys, lines
):
    cfg, folder = train_config
    path = folder / "train.jsonl"
    write_lines(path, lines)
    cfg = replace(cfg, data=replace(cfg.data, train_path=str(path)))
    before = snapshot(Path(cfg.logging.run_dir))
    capsys.readouterr()
    try:
        checked_start(cfg)
    except SystemExit as exc:
        assert exc.code == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.endswith("\n")
        if any(line.fault for line in lines):
            assert str(path) in err
    assert snapshot(Path(cfg.logging.run_dir)) == before
