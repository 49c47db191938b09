from __future__ import annotations

import pytest

from cpe.data.records import Record


@pytest.fixture
def record() -> Record:
    return Record(
        id="p-1",
        persona={
            "name": "Dana Whitfield",
            "age": 34,
            "occupation": "night-shift nurse",
            "personality": {"traits": ["curious", "practical"], "MBTI": "ISTJ"},
            "preferences": {"food": {"diet": "vegetarian", "dislikes": ["cilantro"]}},
            "family": [{"relation": "daughter", "age": 5}, {"relation": "son", "age": 8}],
            "pets": [],
            "smoker": False,
        },
        question="  How can I sleep better after a night shift?  ",
    )
