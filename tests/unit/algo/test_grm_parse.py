"""GRM output parsing: a table of well-formed, messy, ambiguous and broken outputs.

Every case names the exact Judgement expected, written out by hand.
"""

import pytest

from cpe.algo import Judgement, final_score, parse_grm_output
from cpe.algo.grm_parse import extract_critique


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


CRIT = "Clear and concise."
OK = f"<critique>{CRIT}</critique>\n"


def J(h, p, n, error=None, critique=CRIT):
    """The expected Judgement: valid exactly when no error is expected."""
    return Judgement(critique, h, p, n, valid=error is None, error=error)


# Real model formatting that must still parse.
TOLERATED = [
    ("well_formed", OK + scores_block(), J(3, -2, 4)),
    (
        "chatter_around_blocks",
        "Sure, here is my review.\n<critique>Good.</critique>\nnotes\n"
        "<scores>Helpfulness: 2\nPersonalization: 1\nNaturalness: 0</scores>\nThanks!",
        J(2, 1, 0, critique="Good."),
    ),
    ("natural_label", OK + scores_block(n_label="Natural"), J(3, -2, 4)),
    ("british_spelling", OK + scores_block(p_label="Personalisation"), J(3, -2, 4)),
    ("unit_fen", OK + scores_block("3分", "-2分", "4分"), J(3, -2, 4)),
    ("unit_points", OK + scores_block("2 points", "3 pts", "1 point"), J(2, 3, 1)),
    ("fullwidth_colon", OK + scores_block(sep="："), J(3, -2, 4)),
    ("plus_sign", OK + scores_block("+3", "+0", "＋2"), J(3, 0, 2)),
    (
        "case_and_spaces",
        OK + "<scores>\n  HELPFULNESS  :   3  \n personalization:-1\n\tnaturalness :2\n</scores>",
        J(3, -1, 2),
    ),
    (
        "markdown_bold",
        OK
        + "<scores>\n**Helpfulness**: 3\n**Personalization:** 2\n- Naturalness: **1**\n</scores>",
        J(3, 2, 1),
    ),
    ("unicode_minus_and_dash", OK + scores_block("−2", "–3", "－1"), J(-2, -3, -1)),
    ("integral_float_ok", OK + scores_block("3.0", "-2", "4"), J(3, -2, 4)),
    ("fullwidth_digits", OK + scores_block("３", "-2", "4"), J(3, -2, 4)),
    ("bounds", OK + scores_block("5", "-5", "0"), J(5, -5, 0)),
    (
        "one_line_scores",
        OK + "<scores>Helpfulness: 2, Personalization: 3, Naturalness: 1</scores>",
        J(2, 3, 1),
    ),
    (
        "labels_with_score_and_initials",
        OK
        + "<scores>\nHelpfulness score: 1\nPersonalization (P): 2\nNaturalness (N) = 3\n</scores>",
        J(1, 2, 3),
    ),
    (
        "comments_after_scores",
        OK + "<scores>\nFinal scores after deductions:\nHelpfulness: 2 (too long)\n"
        "Personalization: 1 — forced analogy\nNaturalness: 0\n</scores>",
        J(2, 1, 0),
    ),
    ("numbers_inside_parentheses", OK + scores_block("2 (raw 4, -2 for length)"), J(2, -2, 4)),
    (
        "uppercase_tags",
        "<CRITIQUE>Fine.</CRITIQUE><Scores>Helpfulness: 1\nPersonalization: 1\nNaturalness: 1</Scores>",
        J(1, 1, 1, critique="Fine."),
    ),
    (
        "critique_mentions_scores_not_read",
        "<critique>Helpfulness: raw 4 -> -1 -> 3. Personalization: 9</critique>\n" + scores_block(),
        J(3, -2, 4, critique="Helpfulness: raw 4 -> -1 -> 3. Personalization: 9"),
    ),
    (
        "critique_mentions_scores_tag_not_read",
        "<critique>Scores follow in <scores>.</critique>\n" + scores_block(),
        J(3, -2, 4, critique="Scores follow in <scores>."),
    ),
    (
        "unclosed_critique",
        "<critique>Too long; trim the intro.\n" + scores_block(),
        J(3, -2, 4, critique="Too long; trim the intro."),
    ),
    (
        "unclosed_scores_truncated",
        OK + "<scores>\nHelpfulness: 1\nPersonalization: 2\nNaturalness: 3",
        J(1, 2, 3),
    ),
]

# No <critique> tag: the critique is the text without any <scores> block.
NO_CRITIQUE_TAG = [
    (
        "missing_critique_tag",
        "  The answer is verbose.\n" + scores_block(),
        J(3, -2, 4, critique="The answer is verbose."),
    ),
    (
        "missing_critique_tag_unclosed_scores",
        "The answer is verbose.\n<scores>\nHelpfulness: 1\nPersonalization: 2\nNaturalness: 3",
        J(1, 2, 3, critique="The answer is verbose."),
    ),
    (
        "missing_critique_tag_text_after_scores",
        "Too long.\n" + scores_block() + "\nCut the intro.",
        J(3, -2, 4, critique="Too long.\n\nCut the intro."),
    ),
    (
        "missing_critique_tag_only_scores",
        scores_block(),
        J(3, -2, 4, critique=""),
    ),
]

# Out of range, another scale, ambiguous: invalid, never clamped or guessed.
STRICT = [
    (
        "out_of_range_7",
        OK + scores_block(h="7"),
        J(None, -2, 4, "Helpfulness score '7' is outside [-5, 5]"),
    ),
    (
        "out_of_range_100",
        OK + scores_block(p="100"),
        J(3, None, 4, "Personalization score '100' is outside [-5, 5]"),
    ),
    (
        "out_of_range_minus_6",
        OK + scores_block(n="-6"),
        J(3, -2, None, "Naturalness score '-6' is outside [-5, 5]"),
    ),
    (
        "scale_8_of_10",
        OK + scores_block(h="8/10"),
        J(None, -2, 4, "Helpfulness score '8/10' is on another scale"),
    ),
    (
        "scale_3_out_of_10",
        OK + scores_block(p="3 out of 10"),
        J(3, None, 4, "Personalization score '3 out of 10' is on another scale"),
    ),
    (
        "scale_4_of_5",
        OK + scores_block(n="4/5"),
        J(3, -2, None, "Naturalness score '4/5' is on another scale"),
    ),
    (
        "scale_5_of_5",
        OK + scores_block(h="5/5"),
        J(None, -2, 4, "Helpfulness score '5/5' is on another scale"),
    ),
    (
        "scale_bold_with_spaces",
        OK + scores_block(h="**4** / 5"),
        J(None, -2, 4, "Helpfulness score '4** / 5' is on another scale"),  # '**' eaten as markdown
    ),
    (
        "scale_percent",
        OK + scores_block(p="80%"),
        J(3, None, 4, "Personalization score '80%' is on another scale"),
    ),
    (
        "ambiguous_or",
        OK + scores_block(h="3 or 4"),
        J(None, -2, 4, "Helpfulness score '3 or 4' is ambiguous"),
    ),
    (
        "ambiguous_exponent",
        OK + scores_block(h="1e1"),
        J(None, -2, 4, "Helpfulness score '1e1' is ambiguous"),
    ),
    (
        "ambiguous_range",
        OK + scores_block(p="2-3"),
        J(3, None, 4, "Personalization score '2-3' is ambiguous"),
    ),
    (
        "ambiguous_range_words",
        OK + scores_block(p="2 to 3"),
        J(3, None, 4, "Personalization score '2 to 3' is ambiguous"),
    ),
    (
        "ambiguous_raw_to_final",
        OK + scores_block(n="4 -> 3"),
        J(3, -2, None, "Naturalness score '4 -> 3' is ambiguous"),
    ),
    (
        "ambiguous_decimal_comma",
        OK + scores_block(n="3,5"),
        J(3, -2, None, "Naturalness score '3,5' is ambiguous"),
    ),
    (
        "ambiguous_trailing_letters",
        OK + scores_block(h="3x"),
        J(None, -2, 4, "Helpfulness score '3x' is ambiguous"),
    ),
    (
        "non_integer",
        OK + scores_block(h="3.5"),
        J(None, -2, 4, "Helpfulness score '3.5' is not an integer"),
    ),
    (
        "word_score",
        OK + scores_block(p="three"),
        J(3, None, 4, "Personalization score 'three' is not an integer"),
    ),
    (
        "not_applicable",
        OK + scores_block(n="N/A"),
        J(3, -2, None, "Naturalness score 'N/A' is not an integer"),
    ),
    (
        "same_dimension_twice_equal",
        OK
        + "<scores>\nHelpfulness: 3\nPersonalization: -2\nNaturalness: 4\nHelpfulness: 3\n</scores>",
        J(None, -2, 4, "Helpfulness score given 2 times"),
    ),
    (
        "same_dimension_twice_differs",
        OK + "<scores>\nHelpfulness: 1\nPersonalization: -2\nNaturalness: 4\n"
        "Helpfulness (revised): 4\n</scores>",
        J(None, -2, 4, "Helpfulness score given 2 times"),
    ),
    (
        "scores_block_twice",
        OK + scores_block("1", "1", "1") + "\nRevised:\n" + scores_block("4", "-1", "2"),
        J(None, None, None, "2 <scores> blocks"),
    ),
    (
        "several_problems_all_named",
        OK + scores_block("9", "2/5", "3 or 4"),
        J(
            None,
            None,
            None,
            "Helpfulness score '9' is outside [-5, 5]; "
            "Personalization score '2/5' is on another scale; "
            "Naturalness score '3 or 4' is ambiguous",
        ),
    ),
]

# Missing pieces.
BROKEN = [
    (
        "missing_dimension",
        OK + "<scores>\nHelpfulness: 3\nPersonalization: 2\n</scores>",
        J(3, 2, None, "missing Naturalness score"),
    ),
    ("empty_value", OK + scores_block(n=""), J(3, -2, None, "missing Naturalness score")),
    (
        "missing_scores_block",
        "<critique>fine</critique>\nHelpfulness: 3\nPersonalization: 2\nNaturalness: 1",
        J(None, None, None, "missing <scores> block", critique="fine"),
    ),
    ("empty_output", "", J(None, None, None, "missing <scores> block", critique="")),
    (
        "empty_scores_block",
        OK + "<scores></scores>",
        J(
            None,
            None,
            None,
            "missing Helpfulness score; missing Personalization score; missing Naturalness score",
        ),
    ),
]

CASES = TOLERATED + NO_CRITIQUE_TAG + STRICT + BROKEN


@pytest.mark.parametrize(
    "text, expected", [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_parse_grm_output(text, expected):
    assert parse_grm_output(text) == expected


# clamp=True (grm.clamp_scores) rescues only out-of-range integers.
CLAMPED = [
    ("clamp_high_and_low", OK + scores_block("7", "-9", "100"), J(5, -5, 5)),
    ("clamp_keeps_in_range", OK + scores_block(), J(3, -2, 4)),
    (
        "clamp_never_rescales",
        OK + scores_block(h="8/10"),
        J(None, -2, 4, "Helpfulness score '8/10' is on another scale"),
    ),
    (
        "clamp_never_guesses",
        OK + scores_block(h="3 or 4"),
        J(None, -2, 4, "Helpfulness score '3 or 4' is ambiguous"),
    ),
    (
        "clamp_keeps_duplicates_invalid",
        OK + "<scores>\nHelpfulness: 9\nHelpfulness: 9\nPersonalization: -2\n"
        "Naturalness: 4\n</scores>",
        J(None, -2, 4, "Helpfulness score given 2 times"),
    ),
]


@pytest.mark.parametrize(
    "text, expected", [case[1:] for case in CLAMPED], ids=[case[0] for case in CLAMPED]
)
def test_parse_grm_output_with_clamp(text, expected):
    assert parse_grm_output(text, clamp=True) == expected


@pytest.mark.parametrize(
    "text, critique",
    [
        ("no tags at all", "no tags at all"),
        ("Fix it.\n<scores>Helpfulness: 1</scores>", "Fix it."),
        ("Fix it.\n<SCORES>\nHelpfulness: 1", "Fix it."),
        ("A <scores>x</scores> B <scores>y</scores> C", "A  B  C"),
    ],
)
def test_critique_without_tag_never_contains_scores(text, critique):
    assert extract_critique(text) == critique


def test_scores_never_silently_zero_when_invalid():
    judgement = parse_grm_output(OK + scores_block(h="?"))
    assert judgement == J(None, -2, 4, "Helpfulness score '?' is not an integer")


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
    with pytest.raises(ValueError, match="outside"):
        final_score(parse_grm_output(OK + scores_block(h="7")))
    with pytest.raises(ValueError, match="missing score"):
        final_score((3, None, 4))
    with pytest.raises(ValueError, match="three"):
        final_score((3, 4))


def test_judgement_is_a_plain_dataclass():
    j = Judgement("c", 1, 2, 3, valid=True)
    assert j.scores == (1, 2, 3) and j.error is None
