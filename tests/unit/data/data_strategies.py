"""Hypothesis strategies for JSONL data files: valid rows, and rows with one thing
wrong, each line labelled with the fault it must be reported for."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from cpe.data import DataError, DataValidationError
from cpe.data.fields import MAX_PERSONA_DEPTH

# Bounded so the property tests of a folder run in seconds; no example database, so a
# run leaves nothing behind in the working tree.
PROPERTY_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

WHOLE_LINE = "<line>"  # the fault of a line that cannot be read as a row at all

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**30), 10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
texts = st.text(min_size=1, max_size=40).filter(str.strip) | st.just("long " * 5000)
blank_texts = st.sampled_from(["", " ", "\t", "\n  \n", "\u3000"])
not_strings = (
    st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.lists(scalars, max_size=2)
    | st.dictionaries(st.text(max_size=4), scalars, max_size=2)
)
personas = st.dictionaries(st.text(max_size=10), json_values, max_size=4)
# A JSON escape that decodes to an unpaired surrogate: valid JSON, not valid text.
SURROGATE_ESCAPE = '"tail \\ud800"'


@dataclass(frozen=True)
class Line:
    raw: bytes
    fault: str | None = None  # None: the line is valid; else a field name or WHOLE_LINE


def encode(row: object) -> bytes:
    return json.dumps(row).encode("utf-8")


def nested(levels: int) -> object:
    value: object = "x"
    for _ in range(levels):
        value = [value]
    return value


def with_raw_value(row: dict, field: str, raw_json: str) -> bytes:
    """The row's line with ``field`` set to a JSON text json.dumps would never write."""
    marker = "\x00marker\x00"
    text = json.dumps({**row, field: marker})
    return text.replace(json.dumps(marker), raw_json).encode("utf-8")


@st.composite
def unreadable_line(draw, row: dict) -> Line:
    """The row's line cut short, given a byte that is never UTF-8, or not an object."""
    raw = encode(row)
    kind = draw(st.sampled_from(["cut", "bytes", "not object", "huge int", "too deep"]))
    if kind == "cut":
        return Line(raw[: draw(st.integers(1, len(raw) - 1))], WHOLE_LINE)
    if kind == "bytes":
        at = draw(st.integers(0, len(raw)))
        bad = draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x80"]))
        return Line(raw[:at] + bad + raw[at:], WHOLE_LINE)
    if kind == "not object":
        return Line(encode(draw(st.lists(scalars, max_size=2) | scalars)), WHOLE_LINE)
    if kind == "huge int":
        return Line(with_raw_value(row, "id", "7" * 5000), WHOLE_LINE)
    return Line(with_raw_value(row, "question", "[" * 5000 + "]" * 5000), WHOLE_LINE)


blank_lines = st.sampled_from([b"", b"   ", b"\t", b"\r"]).map(Line)


def any_line(draw, row: dict, faulty: Callable[[dict], st.SearchStrategy[Line]]) -> Line:
    """A line after the first of a file: ``row`` as it is (twice as likely), with one
    faulty field (``faulty(row)``), unreadable, or blank."""
    kind = draw(st.sampled_from(["valid", "valid", "field", "line", "blank"]))
    if kind == "valid":
        return Line(encode(row))
    if kind == "field":
        return draw(faulty(row))
    return draw(unreadable_line(row) if kind == "line" else blank_lines)


def write_lines(path: Path, lines: list[Line], crlf: bool = False, bom: bool = False) -> None:
    end = b"\r\n" if crlf else b"\n"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + end.join(line.raw for line in lines) + end)


def check_report(exc: DataError, path: Path, lines: list[Line]) -> None:
    """The error names ``path``, exactly the faulty lines, and each line's field."""
    text = str(exc)
    text.encode("utf-8")  # printable to a UTF-8 terminal
    faults = {n: line.fault for n, line in enumerate(lines, start=1) if line.fault}
    if not faults:
        # Only blank lines: one error for the file, which holds nothing.
        assert not isinstance(exc, DataValidationError) and exc.path == str(path)
        assert all(line.fault is None and not line.raw.strip() for line in lines)
        return
    assert isinstance(exc, DataValidationError), text
    assert str(path) in text
    reported = {(error.line, error.field or WHOLE_LINE) for error in exc.errors}
    assert {line for line, _ in reported} == set(faults), text
    for line, field in reported:
        assert field == faults[line], (line, field, faults[line], text)
    for error in exc.errors:
        assert error.path == str(path)
        assert "\n" not in str(error)
        assert f"{path}:{error.line}: " in text or len(exc.errors) > 20


__all__ = [
    "MAX_PERSONA_DEPTH",
    "PROPERTY_SETTINGS",
    "SURROGATE_ESCAPE",
    "WHOLE_LINE",
    "Line",
    "blank_lines",
    "blank_texts",
    "check_report",
    "encode",
    "json_values",
    "nested",
    "not_strings",
    "personas",
    "scalars",
    "texts",
    "unreadable_line",
    "with_raw_value",
    "write_lines",
]
