"""Fixtures for the evaluation unit tests: records and a real tiny tokenizer."""

from __future__ import annotations

import pytest

from cpe.data.records import Record


@pytest.fixture
def records() -> list[Record]:
    return [
        Record(id=f"r{i}", persona={"Name": f"User{i} X", "job": "night-shift nurse"}, question=q)
        for i, q in enumerate(["How do I sleep?", "What should I cook?", "Best shoes?"])
    ]


@pytest.fixture(scope="session")
def tokenizer():
    from cpe.models.tiny import train_tokenizer

    return train_tokenizer()
