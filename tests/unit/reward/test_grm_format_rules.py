"""The guided regex, the output writer, and the built-in rule functions."""

from __future__ import annotations

import re

import pytest

from cpe.algo import parse_grm_output
from cpe.reward import build_grm_regex, critique_char_budget, format_grm_output, grm_regex_for
from cpe.reward.rules import keyword_reward, length_reward

WELL_FORMED = (
    "<critique>Length: about 350 tokens -> fine.\nHelpfulness: raw 3 -> final 3\n"
    "Suggestions:\n1. Cut the intro.</critique>\n"
    "<scores>\nHelpfulness: 3\nPersonalization: -2\nNaturalness: 0\n</scores>"
)


def test_regex_accepts_a_well_formed_output():
    assert re.fullmatch(grm_regex_for(1024), WELL_FORMED)
    assert re.fullmatch(grm_regex_for(1024), format_grm_output("Be brief.", [5, -5, 0]))


@pytest.mark.parametrize(
    "broken",
    [
        WELL_FORMED.replace("Personalization: -2", "Personalization: 7"),  # out of range
        WELL_FORMED.replace("Naturalness: 0\n", ""),  # missing dimension
        WELL_FORMED.replace("Helpfulness: 3\nP", "Helpfulness: 2.5\nP"),  # not an integer
        WELL_FORMED + "\nThanks!",  # text after </scores>
        WELL_FORMED.replace("<critique>Length", "<critique><b>Length"),  # '<' inside critique
        WELL_FORMED.replace(
            "<critique>Length: about 350 tokens -> fine.\nHelpfulness: raw 3 -> final 3\n"
            "Suggestions:\n1. Cut the intro.",
            "<critique>",
        ),  # empty critique
        "<scores>\nHelpfulness: 3\nPersonalization: 2\nNaturalness: 0\n</scores>",  # no critique
    ],
)
def test_regex_rejects_broken_outputs(broken):
    assert re.fullmatch(grm_regex_for(1024), broken) is None


def test_regex_bounds_the_critique_length():
    regex = build_grm_regex(10)
    assert re.fullmatch(regex, format_grm_output("x" * 8, [1, 1, 1]))  # 8 + two newlines
    assert re.fullmatch(regex, format_grm_output("x" * 9, [1, 1, 1])) is None


def test_char_budget_keeps_a_guided_output_within_max_tokens():
    budget = critique_char_budget(200)
    longest = format_grm_output("x" * (budget - 2), [-5, -5, -5])
    assert re.fullmatch(grm_regex_for(200), longest)
    assert len(longest) + 1 <= 200  # one char per token at worst, plus EOS
    with pytest.raises(ValueError, match="max_new_tokens"):
        critique_char_budget(50)


def test_format_round_trips_through_the_parser():
    judgement = parse_grm_output(format_grm_output("Say less.", [4, -1, 2]))
    assert judgement.valid and judgement.scores == (4, -1, 2) and judgement.critique == "Say less."
    with pytest.raises(ValueError):
        format_grm_output("x", [1, 2])


@pytest.mark.parametrize(
    ("answer", "score"), [("no match", -5), ("The cat", -3), ("the " * 5, 5), ("the the the", 1)]
)
def test_keyword_reward_counts_the_default_word(answer, score):
    judgement = parse_grm_output(keyword_reward({}, "q", answer))
    assert judgement.valid and judgement.scores == (score, score, score)
    assert re.fullmatch(grm_regex_for(1024), keyword_reward({}, "q", answer))


def test_keyword_reward_reads_the_env_var_and_critiques(monkeypatch):
    monkeypatch.setenv("CPE_RULE_KEYWORD", "jazz")
    text = keyword_reward({}, "q", "I like jazz. Jazzy is not jazz.")
    judgement = parse_grm_output(text)
    assert judgement.scores == (-1, -1, -1)
    assert (
        judgement.critique == 'Use the word "jazz" more: it appears 2 time(s); aim for at least 5.'
    )


@pytest.mark.parametrize(
    ("chars", "score", "hint"),
    [
        (40, 5, "Good"),
        (50, 2, "shorter"),
        (20, 0, "longer"),
        (0, -5, "longer"),
        (200, -5, "shorter"),
    ],
)
def test_length_reward_peaks_at_the_target(chars, score, hint):
    judgement = parse_grm_output(length_reward({}, "q", "x" * chars))
    assert judgement.valid and judgement.scores == (score, score, score)
    assert hint in judgement.critique


def test_length_reward_env_var(monkeypatch):
    monkeypatch.setenv("CPE_RULE_TARGET_CHARS", "5")
    assert parse_grm_output(length_reward({}, "q", "hello")).scores == (5, 5, 5)
    monkeypatch.setenv("CPE_RULE_TARGET_CHARS", "five")
    with pytest.raises(ValueError, match="CPE_RULE_TARGET_CHARS"):
        length_reward({}, "q", "hello")
