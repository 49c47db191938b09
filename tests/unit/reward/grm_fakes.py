"""Test doubles for the GRM clients: a loopback chat-completions server and a fake engine."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from cpe.reward.format import format_grm_output

GOOD_OUTPUT = format_grm_output("Shorter, please; mention the night shift.", [3, 2, 4])


@dataclass
class Response:
    status: int = 200
    content: str | None = GOOD_OUTPUT  # the assistant message; None: use `body`
    body: str | None = None
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


def failure(status: int, body: str = "busy", retry_after: str | None = "0.01") -> Response:
    """An error response; a short Retry-After keeps the client's retries fast."""
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return Response(status=status, content=None, body=body, headers=headers)


def chat_body(content: str) -> str:
    return json.dumps(
        {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}
    )


class ChatServer:
    """An OpenAI-style ``/v1/chat/completions`` server on 127.0.0.1, in its own thread.

    ``respond(n, body)`` gets the 1-based request number and the JSON body and returns
    a :class:`Response`. Records bodies, headers, arrival times (``time.monotonic``) and
    the peak number of requests in flight.
    """

    def __init__(self, respond: Callable[[int, dict[str, Any]], Response]):
        self.respond = respond
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.times: list[float] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def count(self) -> int:
        return len(self.bodies)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        with self._lock:
            self.bodies.append(body)
            self.headers.append(dict(request.headers))
            self.times.append(time.monotonic())
            number = len(self.bodies)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            reply = self.respond(number, body)
            if reply.delay_s:
                await asyncio.sleep(reply.delay_s)
            text = reply.body if reply.content is None else chat_body(reply.content)
            return web.Response(status=reply.status, text=text or "", headers=reply.headers)
        finally:
            with self._lock:
                self.in_flight -= 1

    async def _start(self, sock: socket.socket) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._handle)
        # Cancel handlers whose client gave up (timeouts), so shutdown is immediate.
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()

    def start(self) -> ChatServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(sock), self._loop).result(timeout=5)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()


HANG, RESET, CUT, TRICKLE = "hang", "reset", "cut", "trickle"
TRICKLE_BYTES, TRICKLE_EVERY_S = 2, 0.1


class RawServer:
    """A TCP server on 127.0.0.1 for faults an HTTP framework will not produce.

    ``act(n)`` gets the 1-based request number, once the request has fully arrived, and
    returns what to do with that connection: ``HANG`` (say nothing and hold the socket
    until the client gives up), ``RESET`` (abort it: the client sees a TCP reset),
    ``CUT`` (send the head of a 200 response and half its body, then close), ``TRICKLE``
    (a good 200 response, ``TRICKLE_BYTES`` every ``TRICKLE_EVERY_S``), or the text of a
    chat completion to answer with. Records request heads and arrival times.
    """

    def __init__(self, act: Callable[[int], str]):
        self.act = act
        self.heads: list[str] = []
        self.times: list[float] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.1)
        self.port = self._sock.getsockname()[1]
        self._threads = [threading.Thread(target=self._accept, daemon=True)]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def count(self) -> int:
        return len(self.heads)

    def start(self) -> RawServer:
        self._threads[0].start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in list(self._threads):
            thread.join(timeout=5)
        self._sock.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        # One request per connection: every reply closes it.
        with conn:
            head = _read_request(conn)
            if head is None:
                return
            with self._lock:
                self.heads.append(head)
                self.times.append(time.monotonic())
                number = len(self.heads)
            self._answer(conn, self.act(number))

    def _answer(self, conn: socket.socket, action: str) -> None:
        if action == HANG:
            self._stop.wait()
        elif action == RESET:
            # SO_LINGER 0: close() sends RST instead of FIN.
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif action == CUT:
            whole = _http_ok(chat_body(GOOD_OUTPUT))
            conn.sendall(whole[: len(whole) - 40])  # Content-Length promises 40 more bytes
        elif action == TRICKLE:
            self._trickle(conn, _http_ok(chat_body(GOOD_OUTPUT)))
        else:
            conn.sendall(_http_ok(chat_body(action)))

    def _trickle(self, conn: socket.socket, data: bytes) -> None:
        for start in range(0, len(data), TRICKLE_BYTES):
            if self._stop.wait(TRICKLE_EVERY_S):
                return
            try:
                conn.sendall(data[start : start + TRICKLE_BYTES])
            except OSError:  # the client gave up
                return


def _read_request(conn: socket.socket) -> str | None:
    """The request head once head and body have arrived (None if the client left)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    text = head.decode("latin-1")
    length = next(
        (
            int(line.split(":", 1)[1])
            for line in text.split("\r\n")
            if line.lower().startswith("content-length:")
        ),
        0,
    )
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        body += chunk
    return text


def _http_ok(body: str) -> bytes:
    data = body.encode()
    head = (
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + data


class FakeEngine:
    """Stands in for the vLLM engine pool: records calls, returns canned Generations.

    ``outputs`` is a list of texts used in turn (the last one repeats) or a function
    ``(prompt_ids, spec) -> text``.
    """

    def __init__(self, outputs: list[str] | Callable[[list[int], Any], str] = (GOOD_OUTPUT,)):
        self.outputs = outputs
        self.calls: list[tuple[list[list[int]], Any]] = []
        self._served = 0

    def _text(self, ids: list[int], spec: Any) -> str:
        if callable(self.outputs):
            return self.outputs(ids, spec)
        text = self.outputs[min(self._served, len(self.outputs) - 1)]
        self._served += 1
        return text

    def generate(self, prompt_ids, spec):
        from cpe.types import Generation

        self.calls.append((prompt_ids, spec))
        return [
            [
                Generation(
                    prompt_ids=ids, token_ids=[1], text=self._text(ids, spec), finish_reason="stop"
                )
            ]
            for ids in prompt_ids
        ]


def answer_of(body: dict[str, Any]) -> str:
    """The answer a GRM request asks about: lets a fake answer per item, whatever order
    concurrent requests arrive in."""
    return body["messages"][0]["content"].split("<answer>")[1].split("</answer>")[0].strip()
