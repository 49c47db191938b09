"""Property: whatever bytes a data file holds, every loader either returns its items or
raises DataError with a message naming the file; never any other exception."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st
from unit.data.data_strategies import PROPERTY_SETTINGS

from cpe.data import (
    DataError,
    DataValidationError,
    load_alpaca_eval,
    load_persona_mem,
    load_personas,
    load_records,
)
from cpe.data.personas import LINE_NUMBERED

# JSON's own characters, escapes and keywords, so most examples get past the first byte.
JSONISH = st.text(
    alphabet=' {}[]":,\n\r\t\\u0123456789abcdefd8+-.eElnrstu\ufeff\u00e9', max_size=80
)
KEYS = st.sampled_from(
    ["id", "question", "persona", "user_id", "instruction", "output", "profile", "role", "content"]
)
FRAGMENTS = st.lists(
    JSONISH | KEYS.map(json.dumps) | st.sampled_from(['"\\ud800"', "[" * 3000, "9" * 4400]),
    max_size=12,
).map("".join)
CONTENTS = st.binary(max_size=200) | FRAGMENTS.map(lambda text: text.encode("utf-8"))

LOADERS = {
    "records": (lambda path: load_records(path), "train.jsonl"),
    "keyed personas": (lambda path: load_personas(path), "personas.jsonl"),
    "persona mapping": (lambda path: load_personas(path), "personas.json"),
    "numbered personas": (lambda path: load_personas(path, layout=LINE_NUMBERED), "all.jsonl"),
    "alpaca array": (lambda path: load_alpaca_eval(path), "outputs.json"),
}


@PROPERTY_SETTINGS
@given(loader=st.sampled_from(sorted(LOADERS)), content=CONTENTS)
def test_every_loader_reads_any_bytes_or_names_the_file(tmp_path, loader, content):
    load, name = LOADERS[loader]
    path = tmp_path / name
    path.write_bytes(content)
    try:
        load(path)
    except DataError as exc:
        _check_names_the_file(exc, path)


CSV_CELLS = st.text(alphabet="abc(),'\"[]\n 0123456789\\ud", max_size=20)
HEADER = "question_id,question,all_options,correct_answer,shared_context_id,"
HEADER += "end_index_in_shared_context,question_type"


@PROPERTY_SETTINGS
@given(
    rows=st.lists(st.lists(CSV_CELLS, min_size=6, max_size=8), max_size=4),
    contexts=CONTENTS,
    header=st.booleans(),
)
def test_persona_mem_reads_any_csv_and_contexts_or_names_the_file(tmp_path, rows, contexts, header):
    questions = tmp_path / "questions.csv"
    lines = ([HEADER] if header else []) + [",".join(map(json.dumps, row)) for row in rows]
    questions.write_text("\n".join(lines) + "\n", encoding="utf-8")
    context_path = tmp_path / "contexts.jsonl"
    context_path.write_bytes(contexts)
    try:
        load_persona_mem(questions, context_path)
    except DataError as exc:
        text = str(exc)
        text.encode("utf-8")
        assert str(questions) in text or str(context_path) in text, text


def _check_names_the_file(exc: DataError, path) -> None:
    text = str(exc)
    text.encode("utf-8")  # printable to a UTF-8 terminal
    assert str(path) in text, text
    errors = exc.errors if isinstance(exc, DataValidationError) else [exc]
    for error in errors:
        assert error.path == str(path)
        assert "\n" not in str(error), str(error)
