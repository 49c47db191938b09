"""Fixtures shared by unit-test folders: a loopback chat-completions server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from unit.reward.grm_fakes import ChatServer, Response


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
