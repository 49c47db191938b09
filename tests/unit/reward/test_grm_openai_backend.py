"""OpenAIBackend against a real aiohttp chat-completions server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging

import pytest
from grm_fakes import GOOD_OUTPUT, Response

from cpe.config import GRMConfig, OpenAIBackendConfig
from cpe.reward import GRMError, GRMScorer, OpenAIBackend, build_grm, grm_regex_for

KEY_ENV = "CPE_TEST_GRM_KEY"
KEY = "sk-test-SECRET-1234567890"


def backend_for(server, **kwargs) -> OpenAIBackend:
    options = {"api_key_env": KEY_ENV, "timeout_s": 2.0, "retries": 2, "backoff_s": 0.01}
    options.update(kwargs)
    return OpenAIBackend(base_url=server.base_url, model="judge", **options)


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
    backend_for(server).critique([(record, "a")])
    assert "Authorization" not in server.headers[0]


def test_guided_regex_goes_in_structured_outputs(chat_server, record):
    server = chat_server()
    regex = grm_regex_for(512)
    backend_for(server, guided_regex=regex).score([(record, "a")])
    assert server.bodies[0]["structured_outputs"] == {"regex": regex}


def test_two_503_then_success_is_retried(chat_server, record):
    server = chat_server(
        lambda n, b: Response(status=503, content=None, body="busy") if n <= 2 else Response()
    )
    backend = backend_for(server)
    results = backend.score([(record, "a")])
    assert results[0].valid and results[0].reward is not None
    assert server.count == 3
    assert backend.requests_total == 3 and backend.retries_total == 2


def test_429_honours_retry_after(chat_server, record):
    server = chat_server(
        lambda n, b: (
            Response(429, None, "slow down", headers={"Retry-After": "0"}) if n == 1 else Response()
        )
    )
    backend = backend_for(server, backoff_s=30.0)  # would time the test out if not honoured
    assert backend.score([(record, "a")])[0].valid
    assert server.count == 2


def test_unparseable_forever_is_invalid_after_retries(chat_server, record):
    server = chat_server(lambda n, b: Response(content="I think it is fine."))
    backend = backend_for(server)
    scorer = GRMScorer(backend, retries=2, backoff_s=0.0)
    result = scorer.score([(record, "a")])[0]
    assert not result.valid and result.reward is None
    assert result.attempts == 3 and server.count == 3
    assert "scores" in result.error
    assert scorer.invalid_count == 1 and scorer.attempts_total == 3


def test_timeout_fails_the_item_after_retries(chat_server, record):
    server = chat_server(lambda n, b: Response(delay_s=2.0))
    backend = backend_for(server, timeout_s=0.2, retries=1)
    result = backend.score([(record, "a")])[0]
    assert not result.valid and result.reward is None
    assert "timed out" in result.error and "2 attempts" in result.error
    assert server.count == 2


def test_connection_error_is_retried_then_reported(record):
    backend = OpenAIBackend(
        base_url="http://127.0.0.1:9/v1", api_key_env=KEY_ENV, retries=1, backoff_s=0.0
    )
    result = backend.score([(record, "a")])[0]
    assert not result.valid and "connection error" in result.error
    assert backend.requests_total == 2


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


def test_sync_facade_works_inside_a_running_loop(chat_server, record):
    server = chat_server()
    backend = backend_for(server)

    async def caller():
        return backend.score([(record, "a")])

    assert asyncio.run(caller())[0].valid


def test_key_never_leaks_into_errors_logs_or_reprs(chat_server, record, caplog):
    caplog.set_level(logging.DEBUG)
    echo = f"Incorrect API key provided: {KEY}"
    server = chat_server(
        lambda n, b: Response(status=500 if n <= 3 else 401, content=None, body=echo)
    )
    backend = backend_for(server)
    result = backend.score([(record, "a")])[0]  # three 500s: retried, then failed
    assert not result.valid and "HTTP 500" in result.error
    with pytest.raises(GRMError) as info:
        backend.score([(record, "a")])  # 401: a setup problem, raised
    assert "HTTP 401" in str(info.value) and KEY_ENV in str(info.value)
    texts = [
        result.error,
        repr(result),
        str(info.value),
        repr(info.value),
        repr(backend),
        str(vars(backend)),
        caplog.text,
    ]
    assert all(KEY not in text for text in texts)
    assert server.headers[0]["Authorization"] == f"Bearer {KEY}"  # it was really sent


def test_build_grm_openai_from_config(chat_server, record):
    server = chat_server()
    cfg = GRMConfig(
        backend="openai",
        guided_decoding=True,
        max_new_tokens=300,
        backoff_s=0.0,
        openai=OpenAIBackendConfig(
            base_url=server.base_url, model="m", api_key_env=KEY_ENV, concurrency=2
        ),
    )
    scorer = build_grm(cfg)
    critiques = scorer.critique([(record, "a")])
    scores = scorer.score([(record, "a")])
    assert critiques[0].valid and critiques[0].reward is None
    assert scores[0].valid and scores[0].reward is not None
    assert [b["temperature"] for b in server.bodies] == [0.9, 0.0]
    assert server.bodies[1]["max_tokens"] == 300
    assert server.bodies[1]["structured_outputs"] == {"regex": grm_regex_for(300)}
