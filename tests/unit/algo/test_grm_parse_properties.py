"""Property: parse_grm_output never raises, whatever a GRM writes; it returns a valid
judgement with three scores in [-5, 5], or an invalid one that says why. A
well-formed output round-trips, and breaking one score line makes it invalid."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cpe.algo.grm_parse import DIMENSIONS, SCORE_MAX, SCORE_MIN, Judgement, parse_grm_output

GRM_SETTINGS = settings(
    max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
NAMES = [name for _, name, _ in DIMENSIONS]

# Pieces of real and broken GRM outputs, so random joins reach deep into the parser.
PIECES = st.sampled_from(
    [
        "<critique>", "</critique>", "<scores>", "</scores>", "< scores >", "</ scores>",
        *NAMES, "Personalisation", "helpful", "**", "__", ":", "：", "=", " ", "\n", ",", ";",
        "3", "-2", "+4", "−5", "６", "٣", "10", "8/10", "4.0", "3.5", "3,5", "80%", "分",
        " points", "(H)", " or 4", "e1", "9" * 5000, "-" + "0" * 5000 + "1", "score",
        "<|im_end|>", "\x00", "\ud7ff", "\U0001f600",
    ]
)  # fmt: skip
outputs = st.text() | st.lists(PIECES | st.text(max_size=5), max_size=40).map("".join)
critiques = st.text(alphabet=st.characters(blacklist_characters="<>"), max_size=200)
scores = st.integers(SCORE_MIN, SCORE_MAX)


def well_formed(critique: str, values: tuple[int, int, int], style: int) -> str:
    labels = [f"**{name}**" if style == 1 else name for name in NAMES]
    separator = "：" if style == 2 else ": "
    lines = [f"{label}{separator}{value:+d}" for label, value in zip(labels, values, strict=True)]
    return f"<critique>{critique}</critique>\n<scores>\n" + "\n".join(lines) + "\n</scores>"


def check_judgement(judgement: Judgement) -> None:
    assert isinstance(judgement, Judgement)
    assert all(
        s is None or (type(s) is int and SCORE_MIN <= s <= SCORE_MAX) for s in judgement.scores
    )
    if judgement.valid:
        assert judgement.error is None and None not in judgement.scores
    else:
        assert isinstance(judgement.error, str) and judgement.error


@GRM_SETTINGS
@given(text=outputs, clamp=st.booleans())
def test_any_text_parses_into_a_judgement_without_raising(text, clamp):
    check_judgement(parse_grm_output(text, clamp=clamp))


@GRM_SETTINGS
@given(critique=critiques, values=st.tuples(scores, scores, scores), style=st.integers(0, 2))
def test_a_well_formed_output_round_trips(critique, values, style):
    judgement = parse_grm_output(well_formed(critique, values, style))
    assert judgement == Judgement(critique.strip(), *values, valid=True)


@GRM_SETTINGS
@given(
    critique=critiques,
    values=st.tuples(scores, scores, scores),
    broken=st.integers(0, 2),
    replacement=st.sampled_from(["", "8/10", "3 or 4", "2.5", "high", "99", "-6", "9" * 5000]),
)
def test_one_broken_score_makes_the_judgement_invalid_and_names_it(
    critique, values, broken, replacement
):
    text = well_formed(critique, values, 0)
    name = NAMES[broken]
    text = text.replace(f"{name}: {values[broken]:+d}", f"{name}: {replacement}")
    judgement = parse_grm_output(text)
    check_judgement(judgement)
    assert not judgement.valid and name in judgement.error
    assert judgement.scores[broken] is None
    assert len(judgement.error) < 200


@GRM_SETTINGS
@given(critique=critiques, values=st.tuples(scores, scores, scores), out=st.integers(6, 10**6))
def test_clamping_turns_an_out_of_range_score_into_the_bound(critique, values, out):
    text = well_formed(critique, values, 0).replace(
        f"Helpfulness: {values[0]:+d}", f"Helpfulness: {-out}"
    )
    assert not parse_grm_output(text).valid
    assert parse_grm_output(text, clamp=True).scores == (SCORE_MIN, *values[1:])
