import pytest

from cpe.eval.measures import addresses_by_name, first_name, mentions_persona_field

pytestmark = pytest.mark.unit

PERSONA = {
    "Name": "Maria Lopez",
    "Demographics": {"occupation": "night-shift nurse at a city hospital", "age": "34"},
    "Preference": ["short practical answers"],
}


def test_a_long_persona_value_quoted_verbatim_counts_short_ones_do_not():
    assert mentions_persona_field("As a Night-shift nurse at a city hospital, try...", PERSONA)
    assert not mentions_persona_field("At 34 you can sleep in the day.", PERSONA)
    # a style preference followed is not a recited profile
    assert not mentions_persona_field("Here are short practical answers: nap.", PERSONA)


def test_addressed_by_first_name_as_a_whole_word():
    assert first_name(PERSONA) == "Maria"
    assert addresses_by_name("Hi Maria, here is a plan.", PERSONA)
    assert not addresses_by_name("Marian would say hello.", PERSONA)
    assert not addresses_by_name("Hello there.", {"occupation": "nurse"})
