"""OpenAIBackend against a real aiohttp chat-completions server on 127.0.0.1.

Transport retries are the openai client's; the server sends a short Retry-After with
its errors so they stay fast (the client's own backoff starts at about 0.4 s).
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback

import pytest
from grm_fakes import GOOD_OUTPUT, Response, answer_of, failure

from cpe.config import GRMConfig, OpenAIBackendConfig
from cpe.reward import (
    GRMError,
    GRMScorer,
    build_grm,
    format_grm_output,
    grm_regex_for,
)
from cpe.reward.base import GRMBackend, Reply
from cpe.reward.openai_backend import OpenAIBackend

KEY_ENV = "CPE_TEST_GRM_KEY"
KEY = "sk-test-SECRET-1234567890"


def backend_for(server, guided_regex=None, **kwargs) -> OpenAIBackend:
    options = {"api_key_env": KEY_ENV, "timeout_s": 2.0, "max_retries": 2}
    options.update(kwargs)
    endpoint = OpenAIBackendConfig(base_url=server.base_url, model="judge", **options)
    return OpenAIBackend(endpoint, guided_regex=guided_regex)


def config_for(server, **kwargs) -> GRMConfig:
    openai = OpenAIBackendConfig(
        base_url=server.base_url, model="m", api_key_env=KEY_ENV, concurrency=2, max_retries=2
    )
    options = {"backend": "openai", "guided_decoding": False, "backoff_s": 0.0, "openai": openai}
    options.update(kwargs)
    return GRMConfig(**options)


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)


def test_success_sends_chat_request_with_bearer_key(chat_server, record):
    server = chat_server()
    results = backend_for(server).score([(record, "Keep the room dark.")], temperature=0.0)
    assert results[0].valid and results[0].reward == pytest.approx(0.35 * 3 + 0.40 * 2 + 0.25 * 4)
    assert results[0].text == GOOD_OUTPUT
    body = server.bodies[0]
    assert body["model"] == "judge" and body["temperature"] == 0.0 and body["n"] == 1
    assert (
        body["messages"][0]["role"] == "user"
        and "Keep the room dark." in body["messages"][0]["content"]
    )
    assert "structured_outputs" not in body
    assert server.headers[0]["Authorization"] == f"Bearer {KEY}"


def test_no_authorization_header_without_key(chat_server, record, monkeypatch):
    monkeypatch.delenv(KEY_ENV)
    server = chat_server()
    assert backend_for(server).critique([(record, "a")])[0].valid
    assert "Authorization" not in server.headers[0]


def test_guided_regex_goes_in_structured_outputs(chat_server, record):
    server = chat_server()
    regex = grm_regex_for(512)
    backend_for(server, guided_regex=regex).score([(record, "a")])
    assert server.bodies[0]["structured_outputs"] == {"regex": regex}


def test_two_503_then_success_is_retried(chat_server, record):
    server = chat_server(lambda n, b: failure(503) if n <= 2 else Response())
    results = backend_for(server).score([(record, "a")])
    assert results[0].valid and results[0].reward is not None
    assert server.count == 3


def test_429_honours_retry_after(chat_server, record):
    # The client's own first backoff is at most 0.5 s; waiting longer proves the header won.
    server = chat_server(lambda n, b: failure(429, retry_after="0.6") if n == 1 else Response())
    start = time.monotonic()
    assert backend_for(server).score([(record, "a")])[0].valid
    assert time.monotonic() - start >= 0.6
    assert server.count == 2


def test_always_500_costs_at_most_max_retries_plus_one_requests(chat_server, record):
    server = chat_server(lambda n, b: failure(500))
    scorer = build_grm(config_for(server, retries=2))
    critique = scorer.critique([(record, "a")])[0]
    assert server.count == 3  # max_retries + 1, not (retries + 1) * (max_retries + 1)
    score = scorer.score([(record, "a")])[0]
    assert server.count == 6
    for result in (critique, score):
        assert not result.valid and result.reward is None and not result.retryable
        assert result.attempts == 1
        assert "HTTP 500" in result.error and "after 3 attempts" in result.error
    assert scorer.invalid_count == 2


def test_unparseable_forever_is_reasked_grm_retries_times(chat_server, record):
    server = chat_server(lambda n, b: Response(content="I think it is fine."))
    scorer = GRMScorer(backend_for(server), retries=2, backoff_s=0.0)
    result = scorer.score([(record, "a")])[0]
    assert not result.valid and result.reward is None and result.retryable
    assert result.attempts == 3 and server.count == 3
    assert result.error == "missing <scores> block"
    assert scorer.invalid_count == 1 and scorer.attempts_total == 3


def test_timeout_fails_the_item_after_client_retries(chat_server, record):
    server = chat_server(lambda n, b: Response(delay_s=2.0))
    backend = backend_for(server, timeout_s=0.2, max_retries=1)
    result = backend.score([(record, "a")])[0]
    assert not result.valid and result.reward is None and not result.retryable
    assert "timed out" in result.error and "after 2 attempts" in result.error
    assert server.count == 2


def test_connection_error_is_retried_then_reported(record):
    endpoint = OpenAIBackendConfig(
        base_url="http://127.0.0.1:9/v1", api_key_env=KEY_ENV, max_retries=1
    )
    backend = OpenAIBackend(endpoint)
    result = backend.score([(record, "a")])[0]
    assert not result.valid and not result.retryable
    assert "connection error" in result.error and "after 2 attempts" in result.error


@pytest.mark.parametrize("body", ["not json", "[]", '{"choices": []}', '{"id": "x"}'])
def test_malformed_body_is_invalid_not_retried(chat_server, record, body):
    server = chat_server(lambda n, b: Response(content=None, body=body))
    scorer = GRMScorer(backend_for(server), retries=2, backoff_s=0.0)
    result = scorer.score([(record, "a")])[0]
    assert not result.valid and result.reward is None
    assert "malformed chat-completions response" in result.error
    assert server.count == 1


def test_empty_completion_is_reasked(chat_server, record):
    server = chat_server(lambda n, b: Response(content="  ") if n == 1 else Response())
    result = GRMScorer(backend_for(server), retries=1, backoff_s=0.0).critique([(record, "a")])[0]
    assert result.valid and result.attempts == 2 and server.count == 2


def test_bad_request_fails_only_the_item(chat_server, record):
    server = chat_server(lambda n, b: failure(400, "context too long") if n == 1 else Response())
    first, second = backend_for(server, concurrency=1).score([(record, "a"), (record, "b")])
    assert not first.valid and "HTTP 400" in first.error and "context too long" in first.error
    assert second.valid and server.count == 2  # 400 is not retried


def test_concurrency_limit_is_respected(chat_server, record):
    server = chat_server(lambda n, b: Response(delay_s=0.05))
    results = backend_for(server, concurrency=3).score([(record, f"a{i}") for i in range(12)])
    assert all(r.valid for r in results)
    assert server.max_in_flight == 3


def test_results_keep_item_order(chat_server, record):
    def respond(n, body):
        answer = body["messages"][0]["content"].split("<answer>")[1].split("</answer>")[0].strip()
        return Response(
            content=f"<critique>{answer}</critique>", delay_s=0.01 * (5 - int(answer[1:]))
        )

    server = chat_server(respond)
    results = backend_for(server, concurrency=5).critique([(record, f"a{i}") for i in range(5)])
    assert [r.critique for r in results] == [f"a{i}" for i in range(5)]


def test_generate_each_hands_over_each_reply_as_it_arrives(chat_server, record):
    def respond(n, body):
        answer = answer_of(body)
        return Response(
            content=f"<critique>{answer}</critique>", delay_s=0.0 if answer == "fast" else 0.5
        )

    server = chat_server(respond)
    seen = []

    def on_reply(index, reply):
        seen.append((index, reply.text, server.in_flight))

    items = [(record, "slow"), (record, "fast")]
    backend_for(server, concurrency=2).generate_each(items, 0.0, on_reply)
    # The fast reply is handed over while the slow request is still being served.
    assert seen == [(1, "<critique>fast</critique>", 1), (0, "<critique>slow</critique>", 0)]


def test_generate_each_raises_setup_errors_after_every_request_finished(chat_server, record):
    server = chat_server(lambda n, b: failure(404) if answer_of(b) == "bad" else Response())
    seen = []
    items = [(record, "bad"), (record, "good")]
    with pytest.raises(GRMError, match="HTTP 404"):
        backend_for(server, concurrency=2).generate_each(items, 0.0, lambda i, r: seen.append(i))
    assert seen == [1]


def test_the_default_generate_each_follows_item_order(record):
    class Echo(GRMBackend):
        def generate(self, items, temperature):
            return [Reply(answer) for _, answer in items]

    seen = []
    Echo().generate_each([(record, "a"), (record, "b")], 0.0, lambda i, r: seen.append((i, r.text)))
    assert seen == [(0, "a"), (1, "b")]


def test_sync_facade_works_inside_a_running_loop(chat_server, record):
    server = chat_server()
    backend = backend_for(server)

    async def caller():
        return backend.score([(record, "a")])

    assert asyncio.run(caller())[0].valid


@pytest.mark.parametrize("status", [401, 403, 404])
def test_setup_errors_raise_naming_the_config(chat_server, record, status):
    server = chat_server(lambda n, b: failure(status, "no such model"))
    with pytest.raises(GRMError) as info:
        backend_for(server).score([(record, "a")])
    message = str(info.value)
    assert f"HTTP {status}" in message and "no such model" in message
    assert "grm.openai.base_url" in message and "grm.openai.model" in message
    assert KEY_ENV in message
    assert server.count == 1  # not retried


def test_key_never_leaks_into_errors_logs_or_reprs(chat_server, record, caplog):
    caplog.set_level(logging.DEBUG)
    echo = f"Incorrect API key provided: {KEY}"
    server = chat_server(lambda n, b: failure(500 if n <= 3 else 401, echo))
    backend = backend_for(server)
    result = backend.score([(record, "a")])[0]  # three 500s: retried by the client, then failed
    assert not result.valid and "HTTP 500" in result.error and "***" in result.error
    with pytest.raises(GRMError) as info:
        backend.score([(record, "a")])  # 401: a setup problem, raised
    assert "HTTP 401" in str(info.value) and KEY_ENV in str(info.value)
    texts = [
        result.error,
        repr(result),
        str(info.value),
        repr(info.value),
        "".join(traceback.format_exception(info.value)),
        repr(backend),
        str(vars(backend)),
        caplog.text,
    ]
    assert all(KEY not in text for text in texts)
    assert server.headers[0]["Authorization"] == f"Bearer {KEY}"  # it was really sent


def test_key_cut_by_the_error_excerpt_does_not_leak_its_head(chat_server, record):
    server = chat_server(lambda n, b: failure(400, "x" * 290 + KEY))
    result = backend_for(server).score([(record, "a")])[0]
    assert KEY[:8] not in result.error


def test_build_grm_openai_from_config(chat_server, record):
    server = chat_server()
    cfg = config_for(server, guided_decoding=True, max_new_tokens=300)
    scorer = build_grm(cfg)
    assert scorer.backend.endpoint.max_retries == 2 and scorer.backend.endpoint.concurrency == 2
    critiques = scorer.critique([(record, "a")])
    scores = scorer.score([(record, "a")])
    assert critiques[0].valid and critiques[0].reward is None
    assert scores[0].valid and scores[0].reward is not None
    assert [b["temperature"] for b in server.bodies] == [0.9, 0.0]
    assert server.bodies[1]["max_tokens"] == 300
    assert server.bodies[1]["structured_outputs"] == {"regex": grm_regex_for(300)}


def test_clamp_scores_is_wired_from_config(chat_server, record):
    overshoot = format_grm_output("Great.", [7, 2, -9])
    server = chat_server(lambda n, b: Response(content=overshoot))
    strict = build_grm(config_for(server, retries=0)).score([(record, "a")])[0]
    assert not strict.valid and strict.error == "Helpfulness score '7' is outside [-5, 5]; " + (
        "Naturalness score '-9' is outside [-5, 5]"
    )
    clamped = build_grm(config_for(server, clamp_scores=True)).score([(record, "a")])[0]
    assert clamped.valid and clamped.judgement.scores == (5, 2, -5)
    assert clamped.reward == pytest.approx(0.35 * 5 + 0.40 * 2 + 0.25 * -5)
