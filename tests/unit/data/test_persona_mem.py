from __future__ import annotations

import csv

import pytest

from cpe.data import (
    DataError,
    DataValidationError,
    PersonaMemItem,
    accuracy_by_type,
    load_persona_mem,
    persona_mem,
    read_answer_letter,
)

pytestmark = pytest.mark.unit

SYSTEM = {"role": "system", "content": "Current user persona: likes jazz."}
USER_1 = {"role": "user", "content": "I started learning the saxophone."}
BOT_1 = {"role": "assistant", "content": "Great choice!"}
USER_2 = {"role": "user", "content": "Actually I switched to piano."}
CONTEXT_A = [SYSTEM, USER_1, BOT_1, USER_2]
CONTEXT_B = [SYSTEM, {"role": "user", "content": "I love hiking."}]

COLUMNS = [
    "persona_id",
    "question_id",
    "question_type",
    "topic",
    "question",
    "correct_answer",
    "all_options",
    "shared_context_id",
    "end_index_in_shared_context",
]
OPTIONS = ["(a) Saxophone", "(b) Piano", "(c) Drums"]


def _question(question_id="q1", **changes):
    row = {
        "persona_id": "7",
        "question_id": question_id,
        "question_type": "recall_latest_preference",
        "topic": "music",
        "question": "Which instrument do I play now?",
        "correct_answer": "(b)",
        "all_options": str(OPTIONS),
        "shared_context_id": "ctx-a",
        "end_index_in_shared_context": "4",
    }
    row.update(changes)
    return row


def _write_csv(path, rows, columns=COLUMNS):
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture
def contexts(tmp_path, write_lines):
    return write_lines(
        tmp_path / "shared_contexts_32k.jsonl", [{"ctx-a": CONTEXT_A}, {"ctx-b": CONTEXT_B}]
    )


def _load_error(*args) -> DataError:
    with pytest.raises(DataError) as info:
        load_persona_mem(*args)
    return info.value


def test_published_layout_loads_with_context_prefixes(tmp_path, contexts):
    questions = _write_csv(
        tmp_path / "questions_32k.csv",
        [
            _question(),
            _question(
                "q2",
                question="What was my first instrument?\n(think back)",
                question_type="recall_fact",
                correct_answer="(A)",
                end_index_in_shared_context="2",
            ),
            _question(
                "q3",
                all_options="[\"(a) You like hiking.\", '(b) You don\\'t.']",
                correct_answer=" (a) ",
                shared_context_id="ctx-b",
                end_index_in_shared_context="0",
            ),
        ],
    )
    items = load_persona_mem(questions, contexts)
    assert items[0] == PersonaMemItem(
        id="q1",
        messages=CONTEXT_A,
        question="Which instrument do I play now?",
        options=OPTIONS,
        correct="b",
        question_type="recall_latest_preference",
        meta={
            "persona_id": "7",
            "topic": "music",
            "shared_context_id": "ctx-a",
            "end_index_in_shared_context": "4",
        },
    )
    assert items[1].messages == [SYSTEM, USER_1]  # end index 2 is exclusive
    assert items[1].question == "What was my first instrument?\n(think back)"
    assert items[1].correct == "a"
    assert items[2].options == ["(a) You like hiking.", "(b) You don't."]
    assert items[2].messages == []
    assert items[2].correct == "a"


def test_end_index_convention_is_exclusive_by_default():
    assert persona_mem.END_INDEX_INCLUSIVE is False


def test_row_numbers_and_the_alternative_question_column(tmp_path, contexts):
    columns = [c if c != "question" else "user_question_or_message" for c in COLUMNS]
    columns.remove("question_id")
    rows = [
        {**_question(), "user_question_or_message": "First?"},
        {**_question(), "user_question_or_message": "Second?"},
    ]
    items = load_persona_mem(_write_csv(tmp_path / "q.csv", rows, columns), contexts)
    assert [(item.id, item.question) for item in items] == [("1", "First?"), ("2", "Second?")]
    assert "user_question_or_message" not in items[0].meta


def test_each_fault_is_one_error_with_its_line_and_field(tmp_path, contexts):
    questions = _write_csv(
        tmp_path / "questions.csv",
        [
            _question("q1"),  # line 2
            _question("q2", question="spans\ntwo lines", shared_context_id="ctx-zzz"),  # 3-4
            _question("q3", end_index_in_shared_context="5"),  # line 5: ctx-a has 4 messages
            _question("q4", correct_answer="(d)"),  # line 6
            _question("q5", all_options="['(a) open"),  # line 7
            _question("q1"),  # line 8
        ],
    )
    err = _load_error(questions, contexts)
    assert isinstance(err, DataValidationError)
    assert [(e.path, e.line, e.field) for e in err.errors] == [
        (str(questions), 3, "shared_context_id"),
        (str(questions), 5, "end_index_in_shared_context"),
        (str(questions), 6, "correct_answer"),
        (str(questions), 7, "all_options"),
        (str(questions), 8, "question_id"),
    ]
    text = str(err)
    assert "unknown shared_context_id 'ctx-zzz' (not in shared_contexts_32k.jsonl)" in text
    assert "5 is out of range: context 'ctx-a' has 4 messages" in text
    assert "'(d)' is not among the option letters (a, b, c)" in text
    assert "not a Python literal list of strings" in text
    assert "duplicate question_id 'q1' (first seen on line 2)" in text


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("all_options", "'(a) x'", "must be a non-empty list of strings"),
        ("all_options", "[1, 2]", "option 1 is not a string"),
        ("all_options", "['(a) x', 'y']", "option 2 does not start with a letter like '(a)'"),
        ("all_options", "['(a) x', '(a) y']", "repeated option letters: a, a"),
        ("all_options", "__import__('os')", "not a Python literal list of strings"),
        ("correct_answer", "b or c", "must be an option letter like '(a)'"),
        ("end_index_in_shared_context", "1.5", "must be a whole number >= 0"),
        ("end_index_in_shared_context", "-1", "must be a whole number >= 0"),
        ("question", "  ", "must not be empty"),
        ("question_type", "", "must not be empty"),
        ("shared_context_id", "", "must not be empty"),
    ],
)
def test_single_field_faults(tmp_path, contexts, field, value, message):
    questions = _write_csv(tmp_path / "q.csv", [_question(**{field: value})])
    err = _load_error(questions, contexts)
    assert len(err.errors) == 1
    assert (err.errors[0].line, err.errors[0].field) == (2, field)
    assert message in err.errors[0].message


def test_header_and_field_count_faults(tmp_path, contexts):
    columns = [c for c in COLUMNS if c not in ("question", "question_type")]
    questions = _write_csv(tmp_path / "q.csv", [_question()], columns)
    err = _load_error(questions, contexts)
    assert [(e.line, e.field, e.message) for e in err.errors] == [
        (1, "question or user_question_or_message", "missing column"),
        (1, "question_type", "missing column"),
    ]
    questions.write_text(",".join(COLUMNS) + "\n\n7,q1,t\n", encoding="utf-8")
    err = _load_error(questions, contexts)
    assert [(e.line, e.message) for e in err.errors] == [(3, "3 fields, but the header has 9")]
    questions.write_text("", encoding="utf-8")
    assert str(_load_error(questions, contexts)) == f"{questions}: no questions"


def test_context_faults_are_reported_with_question_faults(tmp_path, write_lines):
    contexts = write_lines(
        tmp_path / "contexts.jsonl",
        [
            {"ctx-a": CONTEXT_A},  # 1
            {"ctx-b": [SYSTEM, {"content": "no role"}, {"role": "user", "content": None}]},  # 2
            {"ctx-c": "not a list"},  # 3
            {"ctx-a": CONTEXT_B},  # 4
            "[1]",  # 5
            {},  # 6
        ],
    )
    questions = _write_csv(
        tmp_path / "q.csv",
        [_question(shared_context_id="ctx-b"), _question("q2", correct_answer="(z)")],
    )
    err = _load_error(questions, contexts)
    assert [(e.path, e.line, e.field) for e in err.errors] == [
        (str(contexts), 2, "ctx-b"),
        (str(contexts), 2, "ctx-b"),
        (str(contexts), 3, "ctx-c"),
        (str(contexts), 4, "shared_context_id"),
        (str(contexts), 5, None),
        (str(contexts), 6, None),
        (str(questions), 3, "correct_answer"),  # the ctx-b question adds no second error
    ]
    text = str(err)
    assert "field 'ctx-b': message 1: 'role' must be a non-empty string, got null" in text
    assert "field 'ctx-b': message 2: 'content' must be a string, got null" in text
    assert "field 'ctx-c': must be a list of messages, got string" in text


def test_missing_files(tmp_path, contexts):
    missing = tmp_path / "missing.csv"
    assert str(_load_error(missing, contexts)) == f"{missing}: file not found"
    questions = _write_csv(tmp_path / "q.csv", [_question()])
    assert str(_load_error(questions, missing)) == f"{missing}: file not found"


@pytest.mark.parametrize(
    ("text", "letter"),
    [
        ("Looking at the options, the answer is (b).", "b"),
        ("(a) is tempting, but the answer is (c). Unlike (d), it fits.", "c"),
        ("I weighed (a) against (b) and settle on (d)", "d"),
        ("Reasoning...\nAnswer: B", "b"),
        ("Final answer: c.", "c"),
        ("**Answer:** (a)", "a"),
        ("The answer is a good question; I pick (b)", "b"),
        ("Some option(s) apply; overall (c)", "c"),
        ("Thinking (a) ... <final_answer> (b)", "b"),
        ("Discussed (a). <final_answer>d</final_answer>", "d"),
        ("<final_answer>I am not sure</final_answer> but (a) seems best", "a"),
        ("(B)", "b"),
        ("b", "b"),
        ("  (C).  ", "c"),
        ("<final_answer>\n(b)\n</final_answer>", "b"),
        ("I cannot tell.", None),
        ("", None),
    ],
)
def test_read_answer_letter(text, letter):
    assert read_answer_letter(text) == letter


def _item(item_id, question_type, correct="a"):
    return PersonaMemItem(item_id, [], "Q?", ["(a) x", "(b) y"], correct, question_type)


def test_accuracy_by_type_counts_overall_and_per_type():
    items = [
        _item("1", "recall"),
        _item("2", "recall", "b"),
        _item("3", "suggest"),
        _item("4", "suggest"),
    ]
    result = accuracy_by_type(items, {"1": "a", "2": "(B)", "3": "b", "4": None})
    assert result == {
        "overall": {"accuracy": 0.5, "correct": 2, "total": 4, "unanswered": 1},
        "by_type": {
            "recall": {"accuracy": 1.0, "correct": 2, "total": 2, "unanswered": 0},
            "suggest": {"accuracy": 0.0, "correct": 0, "total": 2, "unanswered": 1},
        },
    }
    partial = accuracy_by_type(items, {"1": "a"})["overall"]
    assert partial == {"accuracy": 0.25, "correct": 1, "total": 4, "unanswered": 3}
    assert accuracy_by_type([], {})["overall"]["accuracy"] == 0.0
    with pytest.raises(ValueError, match="unknown item ids: 9"):
        accuracy_by_type(items, {"9": "a"})
