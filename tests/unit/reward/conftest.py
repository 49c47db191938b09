"""Shared fixtures: a record, a real tiny tokenizer, and a loopback chat-completions server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from grm_fakes import ChatServer, Response

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


@pytest.fixture
def chat_server() -> Iterator[Callable[..., ChatServer]]:
    """Factory: ``chat_server(respond)`` starts a server, stopped after the test."""
    servers: list[ChatServer] = []

    def start(respond: Callable[[int, dict[str, Any]], Response] = lambda n, b: Response()):
        server = ChatServer(respond).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
