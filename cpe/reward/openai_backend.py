"""A GRM behind any OpenAI-compatible ``/v1/chat/completions`` endpoint, on the ``openai`` client.

Requests run concurrently, at most ``concurrency`` in flight. Transport retries are the
client's own: 408/409/429/5xx, timeouts and connection errors are retried up to
``max_retries`` times with backoff, honouring Retry-After. An item still failing after
that becomes ``Reply(error=...)``: invalid, and not re-asked by the scorer. 401/403/404
mean the setup is wrong, not the item, so they raise :class:`GRMError`.

The client's ``timeout_s`` bounds each connect, read and write, not a whole response: an
endpoint that trickles its reply a few bytes at a time would hold the item (and the
training step) for as long as it keeps sending. So each item also has a deadline,
:func:`item_deadline_s`: every attempt's timeout, the client's backoff between them and
a margin, so that against a silent endpoint the client's own timeouts fire first.

The API key is read from the environment variable named by ``api_key_env`` for each
batch and handed only to that batch's client; this object never holds it. Error texts
are built here from the status and body with the key scrubbed, and the client's own
exceptions (whose texts may echo the body) are not chained, so the key never reaches
logs, exceptions or reprs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any, TypeVar

import openai

from cpe.config import OpenAIBackendConfig
from cpe.prompts import DEFAULT, PromptSet, grm_messages
from cpe.reward.base import GRMBackend, GRMError, Item, Reply

log = logging.getLogger(__name__)
T = TypeVar("T")

# The openai client's backoff between transport retries: 0.5 s doubling, at most 8 s.
_FIRST_BACKOFF_S, _MAX_BACKOFF_S = 0.5, 8.0

SETUP_ERRORS = (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError)
_BODY_CHARS = 300
# The client refuses an empty key; a keyless endpoint gets this placeholder and each
# request then omits the Authorization header.
_NO_KEY = "no-key"


class OpenAIBackend(GRMBackend):
    def __init__(
        self,
        endpoint: OpenAIBackendConfig,
        prompts: PromptSet = DEFAULT,
        max_new_tokens: int = 1024,
        guided_regex: str | None = None,
    ):
        """``endpoint``: the ``grm.openai`` node (URL, model, key variable, concurrency,
        timeout, transport retries)."""
        if endpoint.concurrency < 1:
            raise ValueError(f"grm.openai.concurrency must be >= 1, got {endpoint.concurrency}")
        if endpoint.max_retries < 0:
            raise ValueError(f"grm.openai.max_retries must be >= 0, got {endpoint.max_retries}")
        self.endpoint = replace(endpoint, base_url=endpoint.base_url.rstrip("/"))
        self.prompts = prompts
        self.max_new_tokens = max_new_tokens
        self.guided_regex = guided_regex
        if not self._key():
            log.info(
                "GRM endpoint %s: env var %r is unset; sending no Authorization",
                self.endpoint.base_url,
                self.endpoint.api_key_env,
            )

    def generate(self, items: Sequence[Item], temperature: float) -> list[Reply]:
        """Sync facade over :meth:`agenerate`, usable with or without a running loop."""
        return _run(self.agenerate(items, temperature))

    def generate_each(
        self, items: Sequence[Item], temperature: float, on_reply: Callable[[int, Reply], None]
    ) -> None:
        """``on_reply(index, reply)`` as each request completes (on the thread running
        the batch's event loop), not after the whole batch."""
        _run(self.agenerate_each(items, temperature, on_reply))

    async def agenerate(self, items: Sequence[Item], temperature: float) -> list[Reply]:
        replies: list[Reply | None] = [None] * len(items)

        def keep(index: int, reply: Reply) -> None:
            replies[index] = reply

        await self.agenerate_each(items, temperature, keep)
        return [r for r in replies if r is not None]

    async def agenerate_each(
        self, items: Sequence[Item], temperature: float, on_reply: Callable[[int, Reply], None]
    ) -> None:
        key = self._key()
        limit = asyncio.Semaphore(self.endpoint.concurrency)

        async def ask(client: openai.AsyncOpenAI, index: int, item: Item) -> None:
            options = self.request_options(item, temperature)
            on_reply(index, await self._request(client, limit, options, key))

        # One client per batch: its connection pool belongs to this batch's event loop.
        async with self._client(key) as client:
            tasks = [ask(client, i, item) for i, item in enumerate(items)]
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        # Let every request finish before raising, so no task outlives the client.
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    def request_options(self, item: Item, temperature: float) -> dict[str, Any]:
        """Keyword arguments of ``chat.completions.create`` for one item (a subclass
        with other items, such as the pairwise judge, overrides this one method)."""
        record, answer = item
        options: dict[str, Any] = {
            "model": self.endpoint.model,
            "messages": grm_messages(record, answer, self.prompts),
            "temperature": temperature,
            "max_tokens": self.max_new_tokens,
            "n": 1,
        }
        if self.guided_regex:
            # vLLM's guided decoding field, not part of the OpenAI schema.
            options["extra_body"] = {"structured_outputs": {"regex": self.guided_regex}}
        return options

    def _client(self, key: str) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            base_url=self.endpoint.base_url,
            api_key=key or _NO_KEY,
            timeout=self.endpoint.timeout_s,
            max_retries=self.endpoint.max_retries,
        )

    async def _request(
        self,
        client: openai.AsyncOpenAI,
        limit: asyncio.Semaphore,
        options: dict[str, Any],
        key: str,
    ) -> Reply:
        headers = {} if key else {"Authorization": openai.omit}
        e = self.endpoint
        deadline = item_deadline_s(e.timeout_s, e.max_retries)
        try:
            async with limit:
                request = client.chat.completions.create(**options, extra_headers=headers)
                completion = await asyncio.wait_for(request, deadline)
        except TimeoutError:
            return Reply(
                error=f"timed out: reply still incomplete after {deadline:g}s (the deadline "
                f"for {e.max_retries + 1} attempt(s) of {e.timeout_s:g}s)"
            )
        except SETUP_ERRORS as exc:
            raise GRMError(
                f"{self._status_text(exc, key)} (check grm.openai.base_url={e.base_url!r}, "
                f"grm.openai.model={e.model!r} and the key in ${e.api_key_env})"
            ) from None
        except openai.APIStatusError as exc:
            return Reply(error=self._status_text(exc, key) + _attempts(exc))
        except openai.APITimeoutError as exc:
            return Reply(error=f"timed out after {self.endpoint.timeout_s}s{_attempts(exc)}")
        except openai.APIConnectionError as exc:
            # Named by type only: the cause's text may carry request details.
            cause = type(exc.__cause__).__name__ if exc.__cause__ else "unknown"
            return Reply(
                error=f"connection error ({cause}) to {self.endpoint.base_url}{_attempts(exc)}"
            )
        except json.JSONDecodeError as exc:
            # A body labelled JSON that is not (cut short, empty): the client parses it
            # outside its retry loop and raises, which would fail the whole batch.
            return Reply(error=f"malformed chat-completions response: {_excerpt(exc.doc, key)!r}")
        return _content(completion, key)

    def _status_text(self, exc: openai.APIStatusError, key: str) -> str:
        try:
            body = exc.response.text
        except Exception:  # body not read: the status alone still says what failed
            body = ""
        return f"HTTP {exc.status_code} from {self.endpoint.base_url}: {_excerpt(body, key)}"

    def _key(self) -> str:
        return os.environ.get(self.endpoint.api_key_env, "") if self.endpoint.api_key_env else ""

    def __repr__(self) -> str:
        # The endpoint holds only the NAME of the key's variable, never the key.
        return f"OpenAIBackend({self.endpoint!r})"


def item_deadline_s(timeout_s: float, max_retries: int) -> float:
    """The longest one item may take: ``max_retries + 1`` attempts of ``timeout_s``, the
    client's backoff between them, and a margin of one more ``timeout_s`` and 2 s
    (connecting and the client's own work between attempts take time too, more so on a
    busy host). A longer Retry-After than that backoff eats into the same budget."""
    backoff = sum(min(_FIRST_BACKOFF_S * 2**k, _MAX_BACKOFF_S) for k in range(max_retries))
    return timeout_s * (max_retries + 2) + backoff + 2.0


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to the end, with or without a running loop in this thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # Called from inside an event loop (an async actor): run on a private one.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _excerpt(text: str, key: str) -> str:
    # Scrub before cutting, so a key straddling the cut cannot leak its head.
    return (text.replace(key, "***") if key else text)[:_BODY_CHARS]


def _attempts(exc: openai.APIError) -> str:
    """' (after N attempts)', from the retry count the client stamps on each request."""
    request = getattr(exc, "request", None)
    retries = request.headers.get("x-stainless-retry-count", "") if request is not None else ""
    return f" (after {int(retries) + 1} attempts)" if retries.isdigit() else ""


def _content(completion: Any, key: str) -> Reply:
    # A non-JSON body comes back from the client as a plain string.
    try:
        choice = completion.choices[0]
        content = choice.message.content
    except (AttributeError, IndexError, TypeError):
        excerpt = _excerpt(str(completion), key)
        return Reply(error=f"malformed chat-completions response: {excerpt!r}")
    if not isinstance(content, str) or not content.strip():
        return Reply(
            error=f"empty completion (finish_reason={choice.finish_reason})", retryable=True
        )
    return Reply(content, top_logprobs=_first_top_logprobs(choice))


def _first_top_logprobs(choice: Any) -> tuple[tuple[str, float], ...] | None:
    """The alternatives of the first output token, when the request asked for them."""
    try:
        first = choice.logprobs.content[0]
        return tuple((alt.token, float(alt.logprob)) for alt in first.top_logprobs)
    except (AttributeError, IndexError, TypeError):
        return None
