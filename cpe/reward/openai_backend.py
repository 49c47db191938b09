"""A GRM behind any OpenAI-compatible ``/v1/chat/completions`` endpoint.

Requests run concurrently (at most ``concurrency`` in flight) on aiohttp; each has a
``timeout_s`` limit and is retried with exponential backoff on 429, 5xx, timeouts and
connection errors. 401/403/404 mean the setup is wrong, not the item, so they raise.

The API key is read from the environment variable named by ``api_key_env`` and kept
in a :class:`_Secret`; it is sent only as ``Authorization: Bearer``, and every error
text is scrubbed of it, so it never reaches logs, exceptions or reprs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import aiohttp

from cpe.prompts import DEFAULT, PromptSet, grm_messages
from cpe.reward.base import GRMBackend, GRMError, Item, Reply

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 409, 429})
FATAL_STATUSES = frozenset({401, 403, 404})
MAX_RETRY_AFTER_S = 60.0
_BODY_CHARS = 300


class _Secret:
    """A string that never shows itself in repr/str/format."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "_Secret('***')"

    __str__ = __repr__


class _Retryable(Exception):
    def __init__(self, message: str, delay: float | None = None):
        super().__init__(message)
        self.delay = delay


class OpenAIBackend(GRMBackend):
    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000/v1",
        model: str = "grm",
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 8,
        timeout_s: float = 120.0,
        prompts: PromptSet = DEFAULT,
        max_new_tokens: int = 1024,
        guided_regex: str | None = None,
        retries: int = 2,
        backoff_s: float = 0.5,
    ):
        if concurrency < 1:
            raise ValueError(f"grm.openai.concurrency must be >= 1, got {concurrency}")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key_env = api_key_env
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.prompts = prompts
        self.max_new_tokens = max_new_tokens
        self.guided_regex = guided_regex
        self.retries = retries
        self.backoff_s = backoff_s
        key = os.environ.get(api_key_env, "") if api_key_env else ""
        self._key = _Secret(key) if key else None
        if self._key is None:
            log.info(
                "GRM endpoint %s: env var %r is unset; sending no Authorization",
                self.url,
                api_key_env,
            )
        self.requests_total = 0
        self.retries_total = 0

    @classmethod
    def from_config(cls, cfg: Any, **kwargs: Any) -> OpenAIBackend:
        """From a ``grm.openai`` node (:class:`cpe.config.OpenAIBackendConfig`)."""
        fields = ("base_url", "model", "api_key_env", "concurrency", "timeout_s")
        return cls(**{f: getattr(cfg, f) for f in fields}, **kwargs)

    def generate(self, items: Sequence[Item], temperature: float) -> list[Reply]:
        """Sync facade over :meth:`agenerate`, usable with or without a running loop."""
        coro = self.agenerate(items, temperature)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(coro)
        # Called from inside an event loop (an async actor): run on a private one.
        with ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(asyncio.run, coro).result()

    async def agenerate(self, items: Sequence[Item], temperature: float) -> list[Reply]:
        limit = asyncio.Semaphore(self.concurrency)
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            tasks = [
                self._request(session, limit, self.payload(r, a, temperature)) for r, a in items
            ]
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        # Let every request finish before raising, so no task outlives the session.
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return list(outcomes)

    def payload(self, record: Any, answer: str, temperature: float) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": grm_messages(record, answer, self.prompts),
            "temperature": temperature,
            "max_tokens": self.max_new_tokens,
            "n": 1,
        }
        if self.guided_regex:
            body["structured_outputs"] = {"regex": self.guided_regex}  # vLLM extra body field
        return body

    async def _request(
        self, session: aiohttp.ClientSession, limit: asyncio.Semaphore, body: dict[str, Any]
    ) -> Reply:
        error = "no attempt made"
        for attempt in range(self.retries + 1):
            try:
                async with limit:
                    self.requests_total += 1
                    return await self._post(session, body)
            except _Retryable as exc:
                error = self._redact(str(exc))
                delay = exc.delay if exc.delay is not None else self.backoff_s * 2**attempt
            if attempt < self.retries:
                self.retries_total += 1
                log.debug("GRM request failed (%s); retry %d in %.2fs", error, attempt + 1, delay)
                await asyncio.sleep(delay)
        return Reply(error=f"{error} (after {self.retries + 1} attempts)")

    async def _post(self, session: aiohttp.ClientSession, body: dict[str, Any]) -> Reply:
        try:
            async with session.post(self.url, json=body, headers=self._headers()) as response:
                status = response.status
                text = await response.text()
                retry_after = response.headers.get("Retry-After")
        except TimeoutError:
            raise _Retryable(f"timed out after {self.timeout_s}s") from None
        except aiohttp.ClientError as exc:
            # The exception text is rebuilt from its type only: aiohttp errors may carry
            # request info (headers included).
            raise _Retryable(f"connection error ({type(exc).__name__})") from None
        return self._reply(status, text, retry_after)

    def _reply(self, status: int, text: str, retry_after: str | None) -> Reply:
        if status == 200:
            return _content(text)
        detail = f"HTTP {status} from {self.url}: {self._redact(text[:_BODY_CHARS])}"
        if status in RETRY_STATUSES or status >= 500:
            raise _Retryable(detail, _retry_after(retry_after))
        if status in FATAL_STATUSES:
            raise GRMError(
                f"{detail} (check grm.openai.base_url, .model and the key in ${self.api_key_env})"
            )
        return Reply(error=detail)

    def _headers(self) -> dict[str, str]:
        if self._key is None:
            return {}
        return {"Authorization": f"Bearer {self._key.reveal()}"}

    def _redact(self, text: str) -> str:
        return text.replace(self._key.reveal(), "***") if self._key else text

    def __repr__(self) -> str:
        return (
            f"OpenAIBackend(url={self.url!r}, model={self.model!r}, "
            f"api_key_env={self.api_key_env!r}, concurrency={self.concurrency})"
        )


def _retry_after(value: str | None) -> float | None:
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER_S) if value else None
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def _content(text: str) -> Reply:
    try:
        content = json.loads(text)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        return Reply(error=f"malformed chat-completions response: {text[:_BODY_CHARS]!r}")
    if not isinstance(content, str) or not content.strip():
        return Reply(error="empty completion")
    return Reply(content)
