from __future__ import annotations

import pytest

from cpe.data.records import Record
from cpe.prompts import (
    DEFAULT,
    DIMENSIONS,
    edit_messages,
    format_persona,
    grm_messages,
    judge_messages,
    policy_messages,
    policy_user_content,
)

QUESTION = "How can I sleep better after a night shift?"
FACTS = ("night-shift nurse", "34", "curious, practical", "ISTJ", "vegetarian", "cilantro")


def _roles(messages):
    return [m["role"] for m in messages]


def test_format_persona_flattens_nested_values(record):
    text = format_persona(record.persona)
    lines = text.splitlines()
    assert "- Name: Dana Whitfield" in lines
    assert "- Age: 34" in lines
    assert "- Personality / traits: curious, practical" in lines
    assert "- Personality / MBTI: ISTJ" in lines
    assert "- Preferences / food / diet: vegetarian" in lines
    assert "- Preferences / food / dislikes: cilantro" in lines
    assert "- Family: relation: daughter, age: 5; relation: son, age: 8" in lines
    assert "- Smoker: no" in lines
    assert not any("Pets" in line for line in lines)  # empty values are skipped
    assert text == format_persona(dict(record.persona))  # deterministic


def test_format_persona_edge_cases():
    assert format_persona({}) == "(no profile information)"
    assert format_persona(None) == "(no profile information)"
    assert format_persona("  free text  ") == "free text"
    assert format_persona({"first_name": "A", "bio": "line one\n  line two"}) == (
        "- First name: A\n- Bio: line one line two"
    )


def test_policy_messages(record):
    messages = policy_messages(record)
    assert _roles(messages) == ["system", "user"]
    system, user = (m["content"] for m in messages)
    assert "name" in system and "concise" in system.lower()
    assert len(system.split()) < 120  # brief: the policy is a small model
    assert QUESTION in user and "  How" not in user
    for fact in FACTS:
        assert fact in user
    assert user == user.strip()
    assert user == policy_user_content(record)


@pytest.mark.parametrize("suffix, word", [("brief", "briefly"), ("detailed", "detail")])
def test_policy_suffix_variants(record, suffix, word):
    plain = policy_user_content(record)
    user = policy_messages(record, suffix=suffix)[-1]["content"]
    assert user.startswith(plain)
    assert word in user[len(plain) :].lower()


def test_policy_unknown_suffix(record):
    with pytest.raises(ValueError, match="brief"):
        policy_messages(record, suffix="terse")


def test_grm_messages(record):
    messages = grm_messages(record, "Keep the room dark and cool.\n")
    assert _roles(messages) == ["user"]
    content = messages[0]["content"]
    assert QUESTION in content and "Keep the room dark and cool." in content
    for fact in FACTS:
        assert fact in content


def test_grm_rubric_encodes_the_spec(record):
    content = grm_messages(record, "ANSWER")[0]["content"]
    for name in DIMENSIONS:
        assert f"{name}: <integer from -5 to 5>" in content
    assert "-5 to 5" in content
    assert "300-400 tokens" in content
    assert "every 100 tokens beyond" in content and "not complex" in content
    assert "In summary" in content and "by name" in content
    assert "2 or 3 concrete suggestions" in content
    # the exact output format closes the prompt: critique block, then scores block
    tail = content[content.index("# Output format") :]
    assert tail.index("<critique>") < tail.index("</critique>") < tail.index("<scores>")
    assert content.endswith("</scores>")
    # the length check comes first, and the answer sits before the format spec
    assert content.index("Length") < content.index("## Helpfulness")
    assert content.index("ANSWER") < content.index("# Output format")


def test_edit_embeds_policy_user_turn_verbatim(record):
    original = "Try melatonin."
    critique = "Helpfulness: too short; mention blackout curtains."
    messages = edit_messages(record, original, critique)
    assert _roles(messages) == ["user"]
    content = messages[0]["content"]
    user_turn = policy_messages(record)[-1]["content"]
    assert user_turn in content
    assert content.count(QUESTION) == 1
    assert original in content and critique in content
    assert content.index(user_turn) < content.index(original) < content.index(critique)
    assert "final answer only" in content


def test_judge_messages(record):
    messages = judge_messages(record, "ANSWER-ONE", "ANSWER-TWO")
    assert _roles(messages) == ["user"]
    content = messages[0]["content"]
    assert QUESTION in content and "vegetarian" in content
    assert content.index("ANSWER-ONE") < content.index("ANSWER-TWO")
    for name in DIMENSIONS:
        assert name in content
    assert "Prefer the answer" in content and "must not choose" in content
    assert "shorter" in content
    assert content.rstrip().endswith("Write nothing else.")
    assert "single letter: A" in content


def test_record_without_persona_renders():
    record = Record(id="x", persona={}, question="What is 2+2?")
    assert "(no profile information)" in policy_messages(record)[-1]["content"]
    assert DEFAULT.path("grm").is_file()
