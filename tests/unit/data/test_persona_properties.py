"""Property: any persona file (data.personas_path, PersonaFeedback's all_personas.jsonl)
either loads, or fails with a DataError naming the file, the faulty lines or user ids
and the field; never an exception from inside the loader."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st
from unit.data.data_strategies import (
    MAX_PERSONA_DEPTH,
    PROPERTY_SETTINGS,
    SURROGATE_ESCAPE,
    WHOLE_LINE,
    Line,
    any_line,
    blank_lines,
    blank_texts,
    check_report,
    encode,
    nested,
    personas,
    scalars,
    unreadable_line,
    with_raw_value,
    write_lines,
)

from cpe.data import DataError, DataValidationError, load_personas
from cpe.data.personas import LINE_NUMBERED

not_ids = st.booleans() | st.floats() | st.lists(scalars, max_size=2) | blank_texts
not_personas = st.booleans() | st.integers() | st.floats() | st.lists(scalars, max_size=2)


@st.composite
def keyed_row(draw, index: int) -> dict:
    key = draw(st.sampled_from(["persona", "profile"]))
    return {"user_id": draw(st.sampled_from([f"u{index}", index])), key: draw(personas)}


@st.composite
def faulty_keyed_row(draw, row: dict) -> Line:
    key = "persona" if "persona" in row else "profile"
    kind = draw(st.sampled_from(["no id", "bad id", "duplicate", "no persona", "bad persona"]))
    kind = draw(st.sampled_from([kind, "deep", "surrogate"]))
    row = dict(row)
    if kind == "no id":
        del row["user_id"]
        return Line(encode(row), "user_id")
    if kind == "bad id":
        row["user_id"] = draw(not_ids)
        return Line(encode(row), "user_id")
    if kind == "duplicate":
        row["user_id"] = "u0"
        return Line(encode(row), "user_id")
    if kind == "no persona":
        del row[key]
        return Line(encode(row), "persona")
    if kind == "bad persona":
        row[key] = draw(not_personas)
        return Line(encode(row), key)
    if kind == "deep":
        row[key] = {"a": nested(MAX_PERSONA_DEPTH)}
        return Line(encode(row), key)
    return Line(with_raw_value(row, key, '{"name": ' + SURROGATE_ESCAPE + "}"), f"{key}.name")


@st.composite
def keyed_file(draw) -> list[Line]:
    lines = [Line(encode({"user_id": "u0", "persona": {"name": "first"}}))]
    for index in range(1, draw(st.integers(0, 10))):
        lines.append(any_line(draw, draw(keyed_row(index)), faulty_keyed_row))
    return lines


@PROPERTY_SETTINGS
@given(lines=keyed_file(), crlf=st.booleans())
def test_a_keyed_persona_file_loads_or_names_every_faulty_line(tmp_path, lines, crlf):
    path = tmp_path / "personas.jsonl"
    write_lines(path, lines, crlf=crlf)
    try:
        table = load_personas(path)
    except DataError as exc:
        check_report(exc, path, lines)
        return
    assert not any(line.fault for line in lines)
    assert len(table) == sum(1 for line in lines if line.raw.strip())


@PROPERTY_SETTINGS
@given(
    mapping=st.dictionaries(
        st.text(max_size=6).filter(lambda user: user != "user_id"),
        personas | not_personas | st.just("SURROGATE"),
        max_size=6,
    )
)
def test_a_persona_mapping_loads_or_names_every_faulty_user(tmp_path, mapping):
    path = tmp_path / "personas.json"
    text = json.dumps(mapping).replace('"SURROGATE"', '{"name": ' + SURROGATE_ESCAPE + "}")
    path.write_text(text)
    bad = {
        user for user, value in mapping.items() if not isinstance(value, dict) or not user.strip()
    }
    try:
        table = load_personas(path)
    except DataValidationError as exc:
        text = str(exc)
        text.encode("utf-8")
        assert str(path) in text and len(exc.errors) == len(bad), text
        assert all(
            error.field in ("user_id", "persona") or "name" in error.field for error in exc.errors
        )
        return
    except DataError as exc:
        assert str(exc) == f"{path}: no personas" and not mapping
        return
    assert not bad and len(table) == len(mapping)


@st.composite
def numbered_file(draw) -> list[Line]:
    lines = []
    for _ in range(draw(st.integers(1, 10))):
        persona = draw(personas.filter(lambda persona: persona and "user_id" not in persona))
        kind = draw(
            st.sampled_from(["valid", "valid", "empty", "user_id", "deep", "blank", "line"])
        )
        if kind == "valid":
            lines.append(Line(encode(persona)))
        elif kind == "empty":
            lines.append(Line(b"{}", WHOLE_LINE))
        elif kind == "user_id":
            lines.append(Line(encode({**persona, "user_id": 1}), "user_id"))
        elif kind == "deep":
            lines.append(Line(encode({"a": nested(MAX_PERSONA_DEPTH)}), "persona"))
        elif kind == "blank":
            lines.append(draw(blank_lines))
        else:
            lines.append(draw(unreadable_line(persona)))
    # A blank line before the last persona would shift every later user_id.
    last = max((n for n, line in enumerate(lines) if line.raw.strip()), default=-1)
    return [
        Line(line.raw, WHOLE_LINE) if not line.raw.strip() and n < last else line
        for n, line in enumerate(lines)
    ]


@PROPERTY_SETTINGS
@given(lines=numbered_file())
def test_a_line_numbered_persona_file_loads_or_names_every_faulty_line(tmp_path, lines):
    path = tmp_path / "all_personas.jsonl"
    write_lines(path, lines)
    try:
        table = load_personas(path, layout=LINE_NUMBERED)
    except DataError as exc:
        check_report(exc, path, lines)
        return
    assert not any(line.fault for line in lines)
    assert set(table.by_user) == {str(n) for n, line in enumerate(lines, 1) if line.raw.strip()}
