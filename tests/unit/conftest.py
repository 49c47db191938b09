"""Fixtures shared by unit-test folders: a loopback chat-completions server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from unit.reward.grm_fakes import ChatServer, RawServer, Response


def _servers(kind: type, default: Any) -> Iterator[Callable[..., Any]]:
    """Factory of ``kind`` servers started on a behaviour, all stopped after the test."""
    servers: list[Any] = []

    def start(behaviour: Any = default):
        server = kind(behaviour).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def chat_server() -> Iterator[Callable[..., ChatServer]]:
    """Factory: ``chat_server(respond)`` starts a chat-completions server."""
    yield from _servers(ChatServer, lambda n, b: Response())


@pytest.fixture
def raw_server() -> Iterator[Callable[..., RawServer]]:
    """Factory: ``raw_server(act)`` starts a plain TCP server that misbehaves as told."""
    yield from _servers(RawServer, None)
