"""Shared fixtures: a record and a real tiny tokenizer (the loopback chat-completions
server ``chat_server`` is tests/unit/conftest.py's)."""

from __future__ import annotations

import pytest

from cpe.data.records import Record


@pytest.fixture
def record() -> Record:
    return Record(
        id="r-1",
        persona={"occupation": "night-shift nurse", "interests": ["gardening", "jazz"]},
        question="How can I sleep better after a night shift?",
    )


@pytest.fixture(scope="session")
def tokenizer():
    from cpe.models.tiny import train_tokenizer

    return train_tokenizer()
