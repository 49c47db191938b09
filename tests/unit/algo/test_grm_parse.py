"""GRM output parsing: a table of well-formed, messy and broken outputs."""

import pytest

from cpe.algo import Judgement, final_score, parse_grm_output


def scores_block(
    h="3",
    p="-2",
    n="4",
    h_label="Helpfulness",
    p_label="Personalization",
    n_label="Naturalness",
    sep=": ",
):
    return f"<scores>\n{h_label}{sep}{h}\n{p_label}{sep}{p}\n{n_label}{sep}{n}\n</scores>"


OK = "<critique>Clear and concise.</critique>\n"

# (id, text, expected (H, P, N), valid, expected critique or None to skip, error substring)
CASES = [
    ("well_formed", OK + scores_block(), (3, -2, 4), True, "Clear and concise.", None),
    (
        "chatter_around_blocks",
        "Sure, here is my review.\n<critique>Good.</critique>\nnotes\n"
        "<scores>Helpfulness: 2\nPersonalization: 1\nNaturalness: 0</scores>\nThanks!",
        (2, 1, 0),
        True,
        "Good.",
        None,
    ),
    ("natural_label", OK + scores_block(n_label="Natural"), (3, -2, 4), True, None, None),
    (
        "british_spelling",
        OK + scores_block(p_label="Personalisation"),
        (3, -2, 4),
        True,
        None,
        None,
    ),
    ("unit_fen", OK + scores_block("3分", "-2分", "4分"), (3, -2, 4), True, None, None),
    ("unit_out_of_five", OK + scores_block("4/5", "1/5", "-1/5"), (4, 1, -1), True, None, None),
    ("unit_points", OK + scores_block("2 points", "3 pts", "1 point"), (2, 3, 1), True, None, None),
    ("fullwidth_colon", OK + scores_block(sep="："), (3, -2, 4), True, None, None),
    ("plus_sign", OK + scores_block("+3", "+0", "＋2"), (3, 0, 2), True, None, None),
    (
        "case_and_spaces",
        OK + "<scores>\n  HELPFULNESS  :   3  \n personalization:-1\n\tnaturalness :2\n</scores>",
        (3, -1, 2),
        True,
        None,
        None,
    ),
    (
        "markdown_bold",
        OK
        + "<scores>\n**Helpfulness**: 3\n**Personalization:** 2\n- Naturalness: **1**\n</scores>",
        (3, 2, 1),
        True,
        None,
        None,
    ),
    (
        "unicode_minus_and_dash",
        OK + scores_block("−2", "–3", "－1"),
        (-2, -3, -1),
        True,
        None,
        None,
    ),
    ("out_of_range_clamped", OK + scores_block("7", "-9", "10/10"), (5, -5, 5), True, None, None),
    ("integral_float_ok", OK + scores_block("3.0", "-2", "4"), (3, -2, 4), True, None, None),
    ("fullwidth_digits", OK + scores_block("３", "-2", "4"), (3, -2, 4), True, None, None),
    (
        "one_line_scores",
        OK + "<scores>Helpfulness: 2, Personalization: 3, Naturalness: 1</scores>",
        (2, 3, 1),
        True,
        None,
        None,
    ),
    (
        "labels_with_score_and_initials",
        OK
        + "<scores>\nHelpfulness score: 1\nPersonalization (P): 2\nNaturalness (N) = 3\n</scores>",
        (1, 2, 3),
        True,
        None,
        None,
    ),
    (
        "comments_after_scores",
        OK + "<scores>\nFinal scores after deductions:\nHelpfulness: 2 (too long)\n"
        "Personalization: 1 — forced analogy\nNaturalness: 0\n</scores>",
        (2, 1, 0),
        True,
        None,
        None,
    ),
    (
        "uppercase_tags",
        "<CRITIQUE>Fine.</CRITIQUE><Scores>Helpfulness: 1\nPersonalization: 1\nNaturalness: 1</Scores>",
        (1, 1, 1),
        True,
        "Fine.",
        None,
    ),
    (
        "critique_mentions_scores_not_read",
        "<critique>Helpfulness: raw 4 -> -1 -> 3. Personalization: 9</critique>\n" + scores_block(),
        (3, -2, 4),
        True,
        "Helpfulness: raw 4 -> -1 -> 3. Personalization: 9",
        None,
    ),
    (
        "scores_block_twice_last_wins",
        OK + scores_block("1", "1", "1") + "\nRevised:\n" + scores_block("4", "-1", "2"),
        (4, -1, 2),
        True,
        None,
        None,
    ),
    (
        "missing_critique_tag",
        "  The answer is verbose.\n" + scores_block(),
        (3, -2, 4),
        True,
        "The answer is verbose.\n" + scores_block(),
        None,
    ),
    (
        "unclosed_critique",
        "<critique>Too long; trim the intro.\n" + scores_block(),
        (3, -2, 4),
        True,
        "Too long; trim the intro.",
        None,
    ),
    (
        "unclosed_scores_truncated",
        OK + "<scores>\nHelpfulness: 1\nPersonalization: 2\nNaturalness: 3",
        (1, 2, 3),
        True,
        None,
        None,
    ),
    (
        "missing_dimension",
        OK + "<scores>\nHelpfulness: 3\nPersonalization: 2\n</scores>",
        (3, 2, None),
        False,
        None,
        "missing Naturalness score",
    ),
    ("empty_value", OK + scores_block(n=""), (3, -2, None), False, None, "missing Naturalness"),
    (
        "non_integer",
        OK + scores_block(h="3.5"),
        (None, -2, 4),
        False,
        None,
        "non-integer Helpfulness score '3.5'",
    ),
    (
        "word_score",
        OK + scores_block(p="three"),
        (3, None, 4),
        False,
        None,
        "non-integer Personalization",
    ),
    (
        "not_applicable",
        OK + scores_block(n="N/A"),
        (3, -2, None),
        False,
        None,
        "non-integer Naturalness",
    ),
    (
        "range_is_not_a_score",
        OK + scores_block(p="2-3"),
        (3, None, 4),
        False,
        None,
        "non-integer Personalization score '2-3'",
    ),
    (
        "missing_scores_block",
        "<critique>fine</critique>\nHelpfulness: 3\nPersonalization: 2\nNaturalness: 1",
        (None, None, None),
        False,
        "fine",
        "missing <scores> block",
    ),
    ("empty_output", "", (None, None, None), False, "", "missing <scores> block"),
    (
        "empty_scores_block",
        OK + "<scores></scores>",
        (None, None, None),
        False,
        None,
        "missing Helpfulness score; missing Personalization score; missing Naturalness score",
    ),
]


@pytest.mark.parametrize(
    "text, scores, valid, critique, error",
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_parse_grm_output(text, scores, valid, critique, error):
    judgement = parse_grm_output(text)
    assert judgement.scores == scores
    assert judgement.valid is valid
    if critique is not None:
        assert judgement.critique == critique
    if error is None:
        assert judgement.error is None
    else:
        assert error in judgement.error


def test_scores_never_silently_zero_when_invalid():
    judgement = parse_grm_output(OK + scores_block(h="?"))
    assert judgement.helpfulness is None and not judgement.valid


def test_final_score_weights():
    # 0.35*3 + 0.40*(-2) + 0.25*4 = 1.05 - 0.80 + 1.00 = 1.25
    assert final_score((3, -2, 4)) == pytest.approx(1.25)
    assert final_score(parse_grm_output(OK + scores_block())) == pytest.approx(1.25)
    assert final_score((3, -2, 4), weights=(1.0, 0.0, 0.0)) == pytest.approx(3.0)
    # -5 everywhere: 0.35*-5 + 0.40*-5 + 0.25*-5 = -5.0
    assert final_score((-5, -5, -5)) == pytest.approx(-5.0)


def test_final_score_refuses_invalid_input():
    with pytest.raises(ValueError, match="invalid judgement: missing <scores> block"):
        final_score(parse_grm_output("no scores here"))
    with pytest.raises(ValueError, match="missing score"):
        final_score((3, None, 4))
    with pytest.raises(ValueError, match="three"):
        final_score((3, 4))


def test_judgement_is_a_plain_dataclass():
    j = Judgement("c", 1, 2, 3, valid=True)
    assert j.scores == (1, 2, 3) and j.error is None
